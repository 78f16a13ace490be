import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TASK_DIR } from '../agents/taskFile';
import type { GitRepo } from './gitRepo';

/** The lock name of the exclude file (repoLock.ts, level `file`). */
const EXCLUDE_LOCK = 'info/exclude';

/**
 * Keeps the task directory out of commits through git's exclude file, not the repository's
 * .gitignore (which is the user's and is committed). git 2.39 reads `info/exclude` from the common
 * git dir only, not from a linked worktree's own git dir, so the pattern goes where
 * `git rev-parse --git-path info/exclude` says git will read it (which covers every worktree;
 * asked once per repository). The file itself is read every time: someone may have edited it.
 */
export async function excludeTaskDir(repo: GitRepo, path: string): Promise<void> {
  const file = await repo.excludeFile(path);
  const pattern = `/${TASK_DIR}/`;
  // Nearly always the pattern is there already: read without the lock, which every commit and
  // checkout of every agent would otherwise queue on. Appends only add lines, so a pattern seen is
  // a pattern kept; only a missing one needs the lock (and a second look under it).
  if (hasPattern(await readFile(file, 'utf8').catch(() => ''), pattern)) return;
  // Read, then append: two operations for different agents must not both append.
  await repo.locked({ files: [EXCLUDE_LOCK] }, async () => {
    let content = '';
    try {
      content = await readFile(file, 'utf8');
    } catch {
      await mkdir(dirname(file), { recursive: true });
    }
    if (hasPattern(content, pattern)) return;
    await appendFile(
      file,
      `${content && !content.endsWith('\n') ? '\n' : ''}# Agent Pipeline task files (never committed)\n${pattern}\n`,
    );
  });
}

function hasPattern(content: string, pattern: string): boolean {
  return content.split(/\r?\n/).includes(pattern);
}
