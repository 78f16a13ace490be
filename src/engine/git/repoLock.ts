import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { emitGitEvent } from './gitMetrics';

/**
 * The git layer's own locks, inside this process: what may run at the same time on one repository.
 *
 * git locks each ref (`refs/heads/x.lock`) and each worktree's index (`index.lock`) on its own, so
 * operations on different agents' worktrees (a commit, a checkout, a merge of the target into a task
 * branch) can run side by side. What must not overlap is serialised here, so our commands never
 * fail on each other's git locks:
 *
 *   1. `repository` (shared or exclusive): every operation holds it shared; the worktree registry
 *      (`worktree add`, `remove`, `prune`, re-creating a vanished worktree), shared config and the
 *      start-up repair hold it exclusive. 8 concurrent `git worktree add` on one repository failed
 *      half the time (engineering.md).
 *   2. `ref:<refs/heads/…>` (exclusive): a branch the pipeline reads, changes and writes back (the
 *      target branch during a merge, a task branch while it is checked out, created or brought up to
 *      date). git's compare-and-swap would catch a race, this avoids the retry.
 *   3. `worktree:<path>` (exclusive): one working tree, its index and its HEAD. Every command that
 *      changes a worktree (commit, switch, add, the update of a checked-out target branch) holds it.
 *   4. `file:<name>` (exclusive): a file of ours in the git dir (`info/exclude`); no git command runs
 *      under it.
 *
 * The lock order is that list, then the name within a level (paths and refs sorted as strings). A
 * call chain may take more locks while it holds some, but only locks that come after every lock it
 * holds; asking for one that comes before throws `LockOrderError` (a bug in this layer, caught by the
 * tests) instead of risking a deadlock. Several locks asked for together are taken in order. Locks
 * are re-entrant within one async call chain (tracked with AsyncLocalStorage); holding `repository`
 * exclusive covers every other lock of that repository, since every other holder also holds
 * `repository` shared. A shared hold cannot be upgraded: an operation that may need the registry asks
 * for `repository` exclusive from the start (or plans again, see Worktrees).
 *
 * Each lock is fair: waiters are served first come, first served, and a waiting exclusive request
 * holds back later shared ones, so the registry is never starved. Under one worktree's lock the code
 * of this layer runs one git command at a time; one operation may work on two worktrees at once, each
 * under its own lock (taken by each branch of the work separately, each in order).
 */

export type LockMode = 'shared' | 'exclusive';

export type LockLevel = 'repository' | 'ref' | 'worktree' | 'file';

const LEVEL_ORDER: Readonly<Record<LockLevel, number>> = { repository: 1, ref: 2, worktree: 3, file: 4 };

export interface LockRequest {
  readonly key: string;
  readonly mode: LockMode;
}

/** A lock of one repository (its common git dir), of one level, with a name inside that level. */
export function lockKey(repository: string, level: LockLevel, name = ''): string {
  return `${repository}\u0000${LEVEL_ORDER[level]}:${level}\u0000${name}`;
}

/** The readable part of a key, for metrics and messages: `worktree:/path`, `ref:refs/heads/main`. */
export function describeKey(key: string): { readonly level: string; readonly name: string } {
  const [, level = '', name = ''] = key.split('\u0000');
  return { level: level.replace(/^\d:/, ''), name };
}

function repositoryOf(key: string): string {
  return key.slice(0, key.indexOf('\u0000'));
}

/** A request for a lock that comes before one already held: it could deadlock, so it is refused. */
export class LockOrderError extends Error {
  override readonly name = 'LockOrderError';
}

interface Waiter {
  readonly mode: LockMode;
  readonly grant: () => void;
}

interface LockState {
  readers: number;
  writer: boolean;
  readonly queue: Waiter[];
}

const states = new Map<string, LockState>();
const held = new AsyncLocalStorage<ReadonlyMap<string, LockMode>>();

function stateOf(key: string): LockState {
  let s = states.get(key);
  if (!s) {
    s = { readers: 0, writer: false, queue: [] };
    states.set(key, s);
  }
  return s;
}

function compatible(s: LockState, mode: LockMode): boolean {
  return mode === 'shared' ? !s.writer : !s.writer && s.readers === 0;
}

/** Grants waiters from the head of the queue while they fit (a run of shared ones, or one exclusive). */
function drain(key: string, s: LockState): void {
  while (s.queue.length > 0 && compatible(s, s.queue[0]!.mode)) {
    const w = s.queue.shift()!;
    if (w.mode === 'shared') s.readers++;
    else s.writer = true;
    w.grant();
  }
  // Idle locks are forgotten, so the map does not grow with every worktree and branch ever locked.
  if (s.readers === 0 && !s.writer && s.queue.length === 0) states.delete(key);
}

function acquire(key: string, mode: LockMode): Promise<void> {
  const s = stateOf(key);
  if (s.queue.length === 0 && compatible(s, mode)) {
    if (mode === 'shared') s.readers++;
    else s.writer = true;
    return Promise.resolve();
  }
  return new Promise<void>((grant) => s.queue.push({ mode, grant }));
}

function release(key: string, mode: LockMode): void {
  const s = states.get(key);
  if (!s) return;
  if (mode === 'shared') s.readers--;
  else s.writer = false;
  drain(key, s);
}

/** The locks the current async call chain holds, by key. */
export function heldLocks(): ReadonlyMap<string, LockMode> {
  return held.getStore() ?? new Map();
}

/** True when the current call chain holds `key` in `mode` (exclusive also answers for shared). */
export function holdsLock(key: string, mode: LockMode = 'shared'): boolean {
  const m = heldLocks().get(key);
  return m === 'exclusive' || (m === 'shared' && mode === 'shared');
}

/**
 * Runs `fn` holding every lock of `requests` (see the lock order above), taking those the call chain
 * does not hold yet in order, waiting for earlier holders of each. Released when `fn` settles.
 */
export async function withLocks<T>(requests: readonly LockRequest[], fn: () => Promise<T>): Promise<T> {
  return lockAndRun(requests, () => fn());
}

/**
 * Runs `first` holding `requests` and the repository lock `repository` exclusive, then turns that
 * exclusive hold into a shared one in the same step (no other exclusive holder gets in between;
 * shared waiters come in, a waiting exclusive one waits for the end) and runs `then` with every
 * other lock still held. For the worktree registry: worktrees are registered under the exclusive
 * hold, then filled, each under its own lock (which the call chain has held since before it was
 * registered, so no other operation sees it half made), side by side with each other and with other
 * agents' operations. When the call chain already holds the repository exclusive, both run under it.
 */
export async function withLocksThenShared<T, U>(
  requests: readonly LockRequest[],
  repository: string,
  first: () => Promise<T>,
  then: (value: T) => Promise<U>,
): Promise<U> {
  const all = [...requests, { key: repository, mode: 'exclusive' as const }];
  if (heldLocks().has(repository)) return withLocks(all, async () => then(await first()));
  return lockAndRun(all, async (downgrade) => {
    const value = await first();
    downgrade(repository);
    return then(value);
  });
}

/**
 * withLocks, with a `downgrade(key)` for `fn` that turns an exclusive lock this call took into a
 * shared one (for withLocksThenShared).
 */
async function lockAndRun<T>(
  requests: readonly LockRequest[],
  fn: (downgrade: (key: string) => void) => Promise<T>,
): Promise<T> {
  const mine = heldLocks();
  // One request per key, the stronger mode winning.
  const wanted = new Map<string, LockMode>();
  for (const r of requests) if (wanted.get(r.key) !== 'exclusive') wanted.set(r.key, r.mode);

  const toTake: LockRequest[] = [];
  for (const [key, mode] of wanted) {
    if (holdsLock(key, mode)) continue;
    // An exclusive hold of the repository covers all of its locks.
    const repoKey = lockKey(repositoryOf(key), 'repository');
    if (key !== repoKey && mine.get(repoKey) === 'exclusive') continue;
    if (mine.has(key)) {
      throw new LockOrderError(`Cannot upgrade the shared lock ${describe(key)} to exclusive while holding it.`);
    }
    toTake.push({ key, mode });
  }
  const noDowngrade = (key: string): void => {
    throw new LockOrderError(`Cannot downgrade ${describe(key)}: this call did not take it exclusive.`);
  };
  if (toTake.length === 0) return fn(noDowngrade);
  toTake.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  let last: string | undefined;
  for (const k of mine.keys()) if (last === undefined || k > last) last = k;
  if (last !== undefined && toTake[0]!.key < last) {
    throw new LockOrderError(
      `Lock order: ${describe(toTake[0]!.key)} was asked for while holding ${describe(last)}, which comes after it.`,
    );
  }

  const taken: LockRequest[] = [];
  const next = new Map(mine);
  const downgrade = (key: string): void => {
    const i = taken.findIndex((r) => r.key === key && r.mode === 'exclusive');
    const s = states.get(key);
    if (i < 0 || !s?.writer) return noDowngrade(key);
    taken[i] = { key, mode: 'shared' };
    next.set(key, 'shared');
    s.writer = false;
    s.readers++;
    drain(key, s);
  };
  try {
    for (const r of toTake) {
      const asked = performance.now();
      await acquire(r.key, r.mode);
      taken.push(r);
      next.set(r.key, r.mode);
      emitGitEvent({ type: 'lock-wait', ...describeKey(r.key), mode: r.mode, ms: performance.now() - asked });
    }
    const start = performance.now();
    try {
      return await held.run(next, () => fn(downgrade));
    } finally {
      const ms = performance.now() - start;
      for (const r of taken) emitGitEvent({ type: 'lock-held', ...describeKey(r.key), mode: r.mode, ms });
    }
  } finally {
    for (const r of taken.reverse()) release(r.key, r.mode);
  }
}

function describe(key: string): string {
  const { level, name } = describeKey(key);
  return name ? `${level}:${name}` : level;
}
