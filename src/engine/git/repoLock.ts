import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * One mutating git command at a time per repository, across every `GitRepo` instance and every
 * worktree of that repository in this process. Concurrent `git worktree add` on one repository
 * failed half the time without it (engineering.md), and two commits racing on `index.lock` fail too.
 *
 * The key is the repository's common git dir (shared by all its worktrees). The lock is re-entrant
 * within one async call chain (tracked with AsyncLocalStorage), so an operation made of several
 * commands (check, then create, then switch) holds the lock once for the whole sequence and may call
 * other locked helpers without deadlocking. Inside a held lock the commands must run one after the
 * other: the code of this layer never starts two git commands at once.
 */

const tails = new Map<string, Promise<void>>();
const held = new AsyncLocalStorage<ReadonlySet<string>>();

/** True when the current async call chain holds the lock of `key`. */
export function holdsRepoLock(key: string): boolean {
  return held.getStore()?.has(key) ?? false;
}

/** Runs `fn` while holding the lock of `key`; waits for earlier holders first (FIFO). */
export async function withRepoLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const mine = held.getStore();
  if (mine?.has(key)) return fn();

  const previous = tails.get(key) ?? Promise.resolve();
  let release = (): void => undefined;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => done);
  tails.set(key, tail);
  await previous;
  try {
    return await held.run(new Set([...(mine ?? []), key]), fn);
  } finally {
    release();
    // The last holder cleans up so the map does not grow with every repository ever opened.
    if (tails.get(key) === tail) tails.delete(key);
  }
}
