import { join } from 'node:path';
import { existsQuiet } from '../store/fsUtil';
import { DirtyWorktreeError, GitLockError, listFiles } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { uncommittedFiles, unfinishedOperation } from './worktreeState';

/**
 * What a worktree must be before it changes hands or is removed (clean, no unfinished operation),
 * and the switch of a worktree to another branch or commit, safe against another process's locks.
 */

/**
 * A git lock file another process holds, found before a command that would take it only after it
 * has changed files: `git switch` writes the index and the files first and HEAD last, so a held
 * `HEAD.lock` would leave a worktree switched but its HEAD not. Thrown as git would say it, so the
 * caller's retry (and the stale-lock check) treat it like any other held lock.
 */
async function assertNotLocked(lock: string, args: readonly string[], cwd: string): Promise<void> {
  if (!(await existsQuiet(lock))) return;
  throw new GitLockError(args, cwd, -1, `fatal: Unable to create '${lock}': File exists.`, '', lock);
}

/**
 * `git switch` in a worktree whose lock the caller holds, tried again while another process holds
 * its index or HEAD lock (see assertNotLocked).
 */
export async function switchWorktree(
  repo: GitRepo,
  path: string,
  gitDir: string,
  args: readonly string[],
): Promise<void> {
  await repo.retryingLocks(async () => {
    await assertNotLocked(join(gitDir, 'HEAD.lock'), args, path);
    await repo.mutate(args, { cwd: path, lockRetries: false });
  });
}

/** What to do about the uncommitted changes of an agent's worktree that is to change hands. */
export function commitOrStash(agentId: string, path: string): string {
  return `Commit them first (the engine does this with commitAll when ${agentId} finishes), or stash them: git -C "${path}" stash`;
}

/**
 * Refuses, saying why and what to do, unless the worktree is clean and in the middle of nothing:
 * `dirtyFix` says what to do about uncommitted changes.
 */
export async function assertClean(
  repo: GitRepo,
  path: string,
  what: string,
  dirtyFix: string,
  gitDir?: string,
): Promise<void> {
  const operation = await unfinishedOperation(gitDir ?? (await repo.gitDirOf(path)));
  if (operation) {
    throw new DirtyWorktreeError(
      path,
      [],
      `Cannot ${what}: ${path} is in the middle of a ${operation}.`,
      `Finish or abort it (git -C "${path}" ${operation} --abort), then try again.`,
    );
  }
  const files = await uncommittedFiles(repo, path);
  if (files.length > 0) {
    throw new DirtyWorktreeError(
      path,
      files,
      `Cannot ${what}: ${path} has uncommitted changes (${listFiles(files)}).`,
      dirtyFix,
    );
  }
}
