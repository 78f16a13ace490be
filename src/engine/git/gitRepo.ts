import { realpath } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { PipelineError } from '../errors';
import { createClient, execGit, MissingDirectoryError, type GitClient, type RunResult } from './gitCommand';
import { gitDirFromDotGit, isDirectory } from './gitDirs';
import { GitCommandError, GitLockError } from './gitErrors';
import { emitGitEvent } from './gitMetrics';
import { startGitTraceFromEnv } from './gitTrace';
import { holdsLock, lockKey, withLocks, withLocksThenShared, type LockRequest } from './repoLock';
import { DEFAULT_STALE_LOCK_MS, removeStaleLocks, type LockFinding, type StaleLockOptions } from './staleLocks';
import { lockPath, readRegistry } from './worktreeRegistry';

/**
 * One git repository and every git command the pipeline runs on it (each one run by gitCommand.ts).
 *
 * - Every call gets `GIT_TERMINAL_PROMPT=0` and a timeout (git is killed after `timeoutMs` without
 *   output), read-only calls get `GIT_OPTIONAL_LOCKS=0`. Processes start on worker threads
 *   (gitSpawner.ts), so starting one never blocks the engine's event loop.
 * - Mutating calls run under the layer's locks (repoLock.ts), keyed by the common git dir, so they
 *   are shared by every instance and every worktree of one repository: an operation declares what
 *   it changes (`locked`: the branches it rewrites, the worktrees it changes; `exclusive`: the whole
 *   repository), and a mutating command outside any such operation takes the whole repository.
 * - A command that finds one of git's lock files held by another process is tried again a few times
 *   with back-off, then fails with `GitLockError` (transient). A lock older than `staleLockMs`, with
 *   no git process alive in the repository, is stale: it is removed and the command tried once more.
 * - Arguments go to git as an argv array (spawned without a shell); callers validate ids
 *   and branch names before they become arguments.
 * - A failure becomes a `GitCommandError` (a `PipelineError('git')`) naming the command, the
 *   directory and git's stderr, with a fix when one is known.
 */

export interface GitRepoOptions {
  /** Milliseconds a git command may stay silent before it is killed. Default 60 s. */
  readonly timeoutMs?: number;
  /**
   * How stale git lock files are found and removed during a run (a command that keeps finding one
   * held): its minimum age (default 10 s) and the live-process check. `staleLockMs: Infinity` never
   * removes one.
   */
  readonly staleLocks?: StaleLockOptions;
  /** Called with what was done about a held lock file that looked stale (removed or kept). */
  readonly onStaleLock?: (finding: LockFinding) => void;
}

/** What an operation changes, for `GitRepo.locked` (see repoLock.ts for the lock order). */
export interface LockScope {
  /** The whole repository: the worktree registry (worktree add, remove, prune), shared config. */
  readonly exclusive?: boolean;
  /** Branches whose ref the operation reads, changes and writes back (`main`, `pipeline/TASK-001`). */
  readonly branches?: readonly string[];
  /** Worktrees whose index, HEAD or files the operation changes (paths). */
  readonly worktrees?: readonly string[];
  /** Files of ours in the git dir the operation reads and rewrites (`info/exclude`). */
  readonly files?: readonly string[];
}

export interface RunOptions {
  /** Where to run: the repository root by default, or one of its worktrees. */
  readonly cwd?: string;
  /** Exit codes that are answers rather than failures (`merge-tree` exits 1 on conflicts). */
  readonly okExitCodes?: readonly number[];
  /**
   * Mutating commands only: false runs the command once, for a step of a larger operation that
   * retries as a whole (`retryingLocks`). Default true.
   */
  readonly lockRetries?: boolean;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/**
 * Attempts of a mutating command that finds a git lock file held by another process (an editor's
 * git integration refreshing `index.lock`): 5 attempts, 50 ms doubling, 750 ms in all, then
 * GitLockError for the caller to retry later.
 */
const LOCK_ATTEMPTS = 5;
const LOCK_BACKOFF_MS = 50;

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export class GitRepo {
  private readonly clients = new Map<string, GitClient>();
  /** Where git reads the exclude patterns of every worktree; a fact of the repository, asked once. */
  private excludePath: Promise<string> | undefined;

  private constructor(
    /** The main working tree (the user's checkout). */
    readonly root: string,
    /** The common git dir (`.git` of the main working tree), shared by all worktrees. */
    readonly commonDir: string,
    readonly timeoutMs: number,
    private readonly options: GitRepoOptions,
  ) {}

  /** Opens the repository that contains `dir` (its main working tree or any of its worktrees). */
  static async open(dir: string, options: GitRepoOptions = {}): Promise<GitRepo> {
    startGitTraceFromEnv();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const at = resolve(dir);
    if (!(await isDirectory(at))) {
      throw new PipelineError('git', `Cannot open a git repository at ${at}: the directory does not exist.`, {
        where: at,
        fix: 'Check the path.',
      });
    }
    const args = ['rev-parse', '--path-format=absolute', '--git-common-dir', '--show-toplevel'];
    let out: string;
    try {
      out = (await execGit(createClient(at, true), args, at, timeoutMs, [0])).stdout;
    } catch (e) {
      if (e instanceof GitCommandError && /not a git repository/i.test(e.stderr)) {
        throw new PipelineError('git', `${at} is not inside a git repository.`, {
          where: at,
          fix: 'Run the pipeline inside a git repository (or run `git init` first).',
        });
      }
      throw e;
    }
    const [commonDirRaw, toplevel] = out.split('\n');
    if (!commonDirRaw || !toplevel) {
      throw new PipelineError('git', `${at} is not inside a working tree (a bare repository?).`, {
        where: at,
        fix: 'Run the pipeline in a repository with a working tree.',
      });
    }
    const commonDir = await realpath(commonDirRaw);
    // The usual layout keeps `.git` in the main working tree; a separate git dir falls back to the
    // top level of wherever we were opened.
    const root = basename(commonDir) === '.git' ? dirname(commonDir) : toplevel;
    return new GitRepo(root, commonDir, timeoutMs, options);
  }

  /** Runs a read-only git command (no optional locks) and returns its stdout. */
  async read(args: readonly string[], options: RunOptions = {}): Promise<string> {
    return (await this.readResult(args, options)).stdout;
  }

  async readResult(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const cwd = options.cwd ?? this.root;
    return execGit(this.client(cwd, true), args, cwd, this.timeoutMs, options.okExitCodes ?? [0]);
  }

  /** Runs a git command that changes the repository, holding the repository's lock. */
  async mutate(args: readonly string[], options: RunOptions = {}): Promise<string> {
    return (await this.mutateResult(args, options)).stdout;
  }

  /**
   * Inside an operation that holds this repository's locks (`locked`, `exclusive`), the command runs
   * under them: the operation declared what it changes. Outside any, it takes the whole repository.
   */
  async mutateResult(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const cwd = options.cwd ?? this.root;
    const once = () => execGit(this.client(cwd, false), args, cwd, this.timeoutMs, options.okExitCodes ?? [0]);
    const run = () => (options.lockRetries === false ? once() : this.retryingLocks(once));
    return holdsLock(this.repositoryKey) ? run() : this.exclusive(run);
  }

  /**
   * Runs `attempt` (one git command, or a step that git refuses as a whole when a lock is held) and
   * tries again while it fails with GitLockError. Our own commands never collide (the layer's locks
   * see to that), so a held lock belongs to another process (an editor's git integration, the user, a
   * crashed command) and is usually released within milliseconds. git takes its locks before it
   * changes anything, so trying again is safe. After the last attempt, a lock that is stale is
   * removed and the step tried once more; otherwise the GitLockError goes to the caller.
   */
  async retryingLocks<T>(attempt: () => Promise<T>): Promise<T> {
    let removedStale = false;
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (e) {
        if (!(e instanceof GitLockError)) throw e;
        emitGitEvent({ type: 'lock-busy', lockFile: e.lockFile, attempt: n });
        if (n < LOCK_ATTEMPTS) {
          await sleep(LOCK_BACKOFF_MS * 2 ** (n - 1));
          continue;
        }
        if (removedStale || !(await this.removeIfStale(e.lockFile))) throw e;
        removedStale = true;
      }
    }
  }

  /** Removes `lock` when it is stale (old, no git process alive in the repository); true when removed. */
  private async removeIfStale(lock: string): Promise<boolean> {
    const stale = this.options.staleLocks ?? {};
    if ((stale.staleLockMs ?? DEFAULT_STALE_LOCK_MS) === Infinity) return false;
    const dirs = [this.root, this.commonDir, ...(await readRegistry(this.root, this.commonDir)).map((w) => w.path)];
    const [finding] = await removeStaleLocks([lock], [...new Set(dirs)], { exceptOwnChildren: true, ...stale });
    if (finding) this.options.onStaleLock?.(finding);
    return finding?.action === 'removed';
  }

  /** The key of this repository's top lock (repoLock.ts). */
  get repositoryKey(): string {
    return lockKey(this.commonDir, 'repository');
  }

  /**
   * Holds the whole repository for a sequence of commands (check, then change): no other operation
   * of the layer on this repository runs meanwhile. For the worktree registry, shared config and
   * the start-up repair. Re-entrant within the call chain.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return withLocks([{ key: this.repositoryKey, mode: 'exclusive' }], fn);
  }

  /**
   * Holds what one operation changes (the repository shared, or exclusive with `scope.exclusive`,
   * then the refs of `scope.branches`, the worktrees of `scope.worktrees`, the files of
   * `scope.files`) for a sequence of commands, so operations on other branches and worktrees run at
   * the same time. Re-entrant; nested calls may only add locks that come later in the lock order.
   */
  async locked<T>(scope: LockScope, fn: () => Promise<T>): Promise<T> {
    return withLocks(await this.lockRequests(scope), fn);
  }

  /**
   * Runs `first` holding the whole repository and the locks of `scope`, then `then` with the
   * repository held shared only and the locks of `scope` still held (repoLock.ts,
   * withLocksThenShared): for registering worktrees, then filling them side by side.
   */
  async lockedThenShared<T, U>(
    scope: Omit<LockScope, 'exclusive'>,
    first: () => Promise<T>,
    then: (value: T) => Promise<U>,
  ): Promise<U> {
    const requests = (await this.lockRequests(scope)).slice(1);
    return withLocksThenShared(requests, this.repositoryKey, first, then);
  }

  private async lockRequests(scope: LockScope): Promise<LockRequest[]> {
    const requests: LockRequest[] = [{ key: this.repositoryKey, mode: scope.exclusive ? 'exclusive' : 'shared' }];
    for (const b of scope.branches ?? []) {
      requests.push({ key: lockKey(this.commonDir, 'ref', `refs/heads/${b}`), mode: 'exclusive' });
    }
    for (const w of scope.worktrees ?? []) {
      requests.push({ key: lockKey(this.commonDir, 'worktree', await lockPath(w)), mode: 'exclusive' });
    }
    for (const f of scope.files ?? []) requests.push({ key: lockKey(this.commonDir, 'file', f), mode: 'exclusive' });
    return requests;
  }

  /** True when the current call chain holds the lock of the worktree at `path` (or the whole repository). */
  async holdsWorktree(path: string): Promise<boolean> {
    return (
      holdsLock(this.repositoryKey, 'exclusive') ||
      holdsLock(lockKey(this.commonDir, 'worktree', await lockPath(path)), 'exclusive')
    );
  }

  /** The commit a ref points at, or undefined when it does not exist. */
  async headOf(ref: string, cwd?: string): Promise<string | undefined> {
    if (ref.startsWith('-'))
      throw new PipelineError('invalid-id', `Invalid git ref ${JSON.stringify(ref)}.`, { where: 'ref' });
    const r = await this.readResult(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], {
      cwd,
      okExitCodes: [0, 1],
    });
    const sha = r.stdout.trim();
    return r.exitCode === 0 && sha ? sha : undefined;
  }

  /** The branch checked out in `cwd` (the root by default), or undefined when HEAD is detached. */
  async currentBranch(cwd?: string): Promise<string | undefined> {
    const r = await this.readResult(['symbolic-ref', '--quiet', '--short', 'HEAD'], { cwd, okExitCodes: [0, 1] });
    const name = r.stdout.trim();
    return r.exitCode === 0 && name ? name : undefined;
  }

  /** The commit of a local branch, or undefined when the branch does not exist. */
  async branchHead(branch: string): Promise<string | undefined> {
    return this.headOf(`refs/heads/${branch}`);
  }

  /**
   * The per-worktree git dir of `cwd` (`.git/worktrees/<name>` for a linked worktree). Read from the
   * worktree's `.git` file when `cwd` is the top of a worktree (as git does; no process started),
   * otherwise asked of git.
   */
  async gitDirOf(cwd: string): Promise<string> {
    return (
      (await gitDirFromDotGit(resolve(cwd))) ??
      (await this.read(['rev-parse', '--path-format=absolute', '--git-dir'], { cwd })).trim()
    );
  }

  /**
   * The exclude file git reads for every worktree of this repository (`info/exclude` in the common
   * git dir with git 2.39), as `git rev-parse --git-path info/exclude` names it. It cannot change
   * while the repository exists, so git is asked once per GitRepo; a failed answer is not kept.
   */
  async excludeFile(cwd?: string): Promise<string> {
    if (!this.excludePath) {
      const asked = this.read(['rev-parse', '--path-format=absolute', '--git-path', 'info/exclude'], { cwd }).then(
        (out) => out.trim(),
      );
      this.excludePath = asked;
      asked.catch(() => {
        if (this.excludePath === asked) this.excludePath = undefined;
      });
    }
    return this.excludePath;
  }

  private client(cwd: string, readOnly: boolean): GitClient {
    const key = `${readOnly ? 'r' : 'w'}:${cwd}`;
    let client = this.clients.get(key);
    if (!client) {
      try {
        client = createClient(cwd, readOnly);
      } catch (e) {
        if (e instanceof MissingDirectoryError) {
          throw new PipelineError('git', `Cannot run git in ${cwd}: ${e.message}`, {
            where: cwd,
            fix: 'The directory is missing: run the pipeline again to repair worktrees.',
          });
        }
        throw e;
      }
      this.clients.set(key, client);
    }
    return client;
  }
}

/** True when `dir` is inside a git working tree. Never throws for a missing directory. */
export async function isRepo(dir: string): Promise<boolean> {
  const at = resolve(dir);
  if (!(await isDirectory(at))) return false;
  const r = await execGit(
    createClient(at, true),
    ['rev-parse', '--is-inside-work-tree'],
    at,
    DEFAULT_TIMEOUT_MS,
    [0, 128],
  );
  return r.exitCode === 0 && r.stdout.trim() === 'true';
}
