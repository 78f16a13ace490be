import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { GitRepo } from './gitRepo';

/** What a worktree is in the middle of, read from the markers git leaves in its git dir. */
export type UnfinishedOperation = 'merge' | 'rebase' | 'cherry-pick' | 'revert';

const MARKERS: ReadonlyArray<readonly [string, UnfinishedOperation]> = [
  ['MERGE_HEAD', 'merge'],
  ['rebase-merge', 'rebase'],
  ['rebase-apply', 'rebase'],
  ['CHERRY_PICK_HEAD', 'cherry-pick'],
  ['REVERT_HEAD', 'revert'],
];

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The unfinished merge, rebase, cherry-pick or revert in the worktree whose git dir is `gitDir`. */
export async function unfinishedOperation(gitDir: string): Promise<UnfinishedOperation | undefined> {
  for (const [marker, operation] of MARKERS) if (await exists(join(gitDir, marker))) return operation;
  return undefined;
}

/**
 * Paths with uncommitted changes in the worktree at `cwd`: staged, unstaged and untracked (an
 * untracked file would follow the worktree to the next task's branch). Ignored files, the task
 * directory among them, do not count.
 */
export async function uncommittedFiles(repo: GitRepo, cwd: string): Promise<string[]> {
  const out = await repo.read(['status', '--porcelain=v1', '-z', '--untracked-files=all'], { cwd });
  const files: string[] = [];
  const fields = out.split('\0');
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    if (!field || field.length < 4) continue;
    files.push(field.slice(3));
    // A rename or copy is followed by its source path, which is not a separate entry.
    if (field[0] === 'R' || field[0] === 'C') i++;
  }
  return files;
}
