import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { existsQuiet } from '../store/fsUtil';
import { DirtyWorktreeError, GitLockError, listFiles } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { readLooseRef } from './worktreeRegistry';
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

/**
 * Detaches a clean worktree that is on `branch`: the same commit and the same files, so only its
 * HEAD changes. `git switch --detach` would read and rewrite the whole index (3 000 entries in the
 * hand-off benchmark's repository) to change nothing but HEAD; this writes HEAD as git does, through
 * `HEAD.lock` taken exclusively and renamed over it. The commit is the branch's tip read from its
 * loose ref file while HEAD.lock is held (a commit made there meanwhile would have needed that lock
 * too). The caller holds the worktree's lock and has just seen it clean on the branch
 * (assertClean). When another process holds `HEAD.lock`, HEAD is no longer on the branch, or git
 * keeps the branch packed, it is git's own command that runs, with git's retries and errors. The
 * worktree's HEAD reflog gets no line for this move.
 */
export async function detachClean(repo: GitRepo, path: string, gitDir: string, branch: string): Promise<void> {
  const viaGit = () => switchWorktree(repo, path, gitDir, ['switch', '--quiet', '--detach']);
  const lock = join(gitDir, 'HEAD.lock');
  let fh;
  try {
    fh = await open(lock, 'wx');
  } catch {
    return viaGit();
  }
  let written = false;
  try {
    const head = (await readFile(join(gitDir, 'HEAD'), 'utf8')).trim();
    const tip =
      head === `ref: refs/heads/${branch}` ? await readLooseRef(repo.commonDir, `refs/heads/${branch}`) : undefined;
    if (tip) {
      await fh.writeFile(`${tip}\n`);
      await fh.close();
      await rename(lock, join(gitDir, 'HEAD'));
      written = true;
    }
  } finally {
    if (!written) {
      await fh.close().catch(() => undefined);
      await rm(lock, { force: true });
    }
  }
  if (!written) await viaGit();
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
