import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { GitRepo } from './gitRepo';

/** One entry of `git worktree list --porcelain`. */
export interface WorktreeEntry {
  readonly path: string;
  /** The commit checked out; empty for a bare entry. */
  readonly head: string;
  /** The branch checked out (`main`, `pipeline/TASK-001`), undefined when detached. */
  readonly branch: string | undefined;
  /** The directory is gone but git still has it registered (`worktree prune` would drop it). */
  readonly prunable: boolean;
  readonly locked: boolean;
  readonly bare: boolean;
  /** The first entry: the user's main working tree. */
  readonly main: boolean;
}

export function parseWorktreeList(porcelainZ: string): WorktreeEntry[] {
  const entries: WorktreeEntry[] = [];
  // With -z, attributes end with NUL and an empty attribute ends an entry.
  let current:
    { path: string; head: string; branch?: string; prunable: boolean; locked: boolean; bare: boolean } | undefined;
  const flush = (): void => {
    if (current) entries.push({ ...current, branch: current.branch, main: entries.length === 0 });
    current = undefined;
  };
  for (const field of porcelainZ.split('\0')) {
    if (field === '') {
      flush();
      continue;
    }
    const space = field.indexOf(' ');
    const key = space < 0 ? field : field.slice(0, space);
    const value = space < 0 ? '' : field.slice(space + 1);
    if (key === 'worktree') {
      flush();
      current = { path: value, head: '', prunable: false, locked: false, bare: false };
    } else if (current) {
      if (key === 'HEAD') current.head = value;
      else if (key === 'branch') current.branch = value.replace(/^refs\/heads\//, '');
      else if (key === 'prunable') current.prunable = true;
      else if (key === 'locked') current.locked = true;
      else if (key === 'bare') current.bare = true;
    }
  }
  flush();
  return entries;
}

/** The worktrees registered in the repository, the main working tree first. */
export async function listWorktrees(repo: GitRepo): Promise<WorktreeEntry[]> {
  return parseWorktreeList(await repo.read(['worktree', 'list', '--porcelain', '-z']));
}

/** A path in a form two spellings of the same directory agree on (symlinks resolved when it exists). */
export async function canonicalPath(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    return resolve(p);
  }
}

/** The registered worktree at `path`, if any. */
export async function findWorktree(
  entries: readonly WorktreeEntry[],
  path: string,
): Promise<WorktreeEntry | undefined> {
  const want = await canonicalPath(path);
  for (const e of entries) if ((await canonicalPath(e.path)) === want) return e;
  return undefined;
}
