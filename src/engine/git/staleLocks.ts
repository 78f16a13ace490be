import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gitProcessesIn, processesWorkingIn, type GitProcess } from './gitProcesses';
import { gitParentPids } from './gitSpawner';

/**
 * Lock files a crashed git process left behind (`index.lock`, `refs/heads/main.lock`,
 * `packed-refs.lock`, `HEAD.lock`, `config.lock`), and when one may be deleted: it is older than a
 * git command takes to start and write it, and no git process is alive in the repository (its main
 * working tree, its git dir or any of its worktrees). Deleting the lock of a live git command
 * corrupts what it is writing; keeping a stale one costs a clear error and a retry. Used by the
 * start-up repair for every lock in the git dir, and during a run for a lock a command found held.
 *
 * A lock in a linked worktree's own git dir (an agent's index) need not wait for its age: when no
 * process at all works in that worktree and no git process in the repository, nobody can hold it
 * (an agent killed inside `git add` leaves one), so the next start, or the next command of the
 * pipeline that meets it, removes it at once. Between runs such a lock stays until then: nothing of
 * the pipeline works in an idle agent's worktree meanwhile.
 */

export interface LockFinding {
  readonly path: string;
  readonly action: 'removed' | 'kept';
  readonly reason: string;
}

export interface StaleLockOptions {
  /** A lock younger than this may belong to a git command that is just starting: kept. Default 10 s. */
  readonly staleLockMs?: number;
  /** Finds live git processes in the given directories (the /proc scan by default). */
  readonly gitProcesses?: (dirs: readonly string[]) => Promise<GitProcess[] | undefined>;
  /** Leave out git processes this process started (during a run: our own commands hold no stale lock). */
  readonly exceptOwnChildren?: boolean;
  /** Finds live processes of any kind working in a worktree (the /proc scan by default). */
  readonly processesWorkingIn?: (dir: string) => Promise<GitProcess[] | undefined>;
}

export const DEFAULT_STALE_LOCK_MS = 10_000;

/**
 * Every `*.lock` file in the common git dir and the git dirs of its worktrees (which live inside it).
 * Not in `objects/`: git writes objects to temporary files and renames them, it has no locks there
 * that a crash could leave in the way of the pipeline's commands.
 */
export async function findLockFiles(commonDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, top: boolean): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (!(top && e.name === 'objects')) await walk(p, false);
      } else if (e.name.endsWith('.lock')) found.push(p);
    }
  };
  await walk(commonDir, true);
  return found.sort();
}

/**
 * Removes each of `locks` that is stale, keeps the others, and says why. `dirs` are where a git
 * process of this repository would work (its cwd or an argument inside one of them). One /proc scan
 * for all the locks, and only when one is old enough to be a candidate.
 */
export async function removeStaleLocks(
  locks: readonly string[],
  dirs: readonly string[],
  options: StaleLockOptions = {},
): Promise<LockFinding[]> {
  const findings: LockFinding[] = [];
  let processes: GitProcess[] | undefined | null = null;
  for (const lock of locks) {
    let age: number;
    try {
      age = Date.now() - (await stat(lock)).mtimeMs;
    } catch {
      continue; // Gone meanwhile: its holder finished.
    }
    if (age < (options.staleLockMs ?? DEFAULT_STALE_LOCK_MS)) {
      // In a linked worktree's own git dir, a young lock nobody can hold is known without its age:
      // no process works in that worktree at all (an agent killed in `git add` left it).
      const orphan = options.staleLockMs === Infinity ? undefined : await orphanedWorktreeLock(lock, dirs, options);
      if (orphan) {
        await rm(lock, { force: true });
        findings.push({ path: lock, action: 'removed', reason: orphan });
        continue;
      }
      findings.push({
        path: lock,
        action: 'kept',
        reason: `it is only ${Math.round(age)} ms old; a git command may be writing it`,
      });
      continue;
    }
    if (processes === null) {
      processes = options.gitProcesses
        ? await options.gitProcesses(dirs)
        : await gitProcessesIn(dirs, options.exceptOwnChildren ? gitParentPids() : undefined);
    }
    if (processes === undefined) {
      findings.push({
        path: lock,
        action: 'kept',
        reason: 'cannot tell whether a git process is running here (no /proc); delete it by hand if none is',
      });
    } else if (processes.length > 0) {
      findings.push({
        path: lock,
        action: 'kept',
        reason: `a git process is running: ${processes.map((p) => p.reason).join('; ')}`,
      });
    } else {
      await rm(lock, { force: true });
      findings.push({
        path: lock,
        action: 'removed',
        reason: `no git process works in the repository; the lock was ${Math.round(age / 1000)} s old`,
      });
    }
  }
  return findings;
}

/**
 * Why `lock` may go although it is young, or undefined when it may not: it lies in the own git dir of
 * a linked worktree (`<common>/worktrees/<name>/`), no process at all works in that worktree (no
 * agent, no shell, no git), and no git process of the repository is alive (`dirs`, as for stale
 * locks). git takes a worktree's locks from a process working in it or naming it, so nobody holds
 * this one. Only where /proc can tell; not for the main working tree, where a person's tools work.
 */
async function orphanedWorktreeLock(
  lock: string,
  dirs: readonly string[],
  options: StaleLockOptions,
): Promise<string | undefined> {
  const m = /^(.*[\\/]worktrees[\\/][^\\/]+)[\\/][^\\/]+\.lock$/.exec(lock);
  if (!m?.[1]) return undefined;
  let worktree: string;
  try {
    // `gitdir` names the worktree's `.git` file.
    worktree = dirname((await readFile(join(m[1], 'gitdir'), 'utf8')).trim());
  } catch {
    return undefined;
  }
  const except = options.exceptOwnChildren ? gitParentPids() : undefined;
  // Our own children count here: an agent runs as one, in its worktree.
  const working = options.processesWorkingIn
    ? await options.processesWorkingIn(worktree)
    : await processesWorkingIn(worktree);
  if (working === undefined || working.length > 0) return undefined;
  const git = options.gitProcesses ? await options.gitProcesses(dirs) : await gitProcessesIn(dirs, except);
  if (git === undefined || git.length > 0) return undefined;
  return `no process works in ${worktree} and no git process in the repository, so nobody holds it`;
}
