import assert from 'node:assert/strict';
import { test } from 'node:test';
import { heldLocks, holdsLock, lockKey, LockOrderError, withLocks } from '../../../src/engine/git/repoLock';

/**
 * The git layer's in-process locks (repoLock.ts), without git: who may run together, in which order
 * waiters are served, and that a request against the lock order is refused instead of deadlocking.
 */

const REPO = '/repos/lock-test/.git';
const repository = lockKey(REPO, 'repository');
const ref = (name: string) => lockKey(REPO, 'ref', `refs/heads/${name}`);
const worktree = (path: string) => lockKey(REPO, 'worktree', path);

/** A promise and the function that settles it, to hold a lock until the test lets go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Resolves once `cond` holds, checking after each turn of the event loop. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

void test('different worktrees and branches run together; the same worktree queues', async () => {
  const inside = new Set<string>();
  let together = 0;
  const g = gate();
  const op = (name: string, keys: string[]) =>
    withLocks(
      [{ key: repository, mode: 'shared' }, ...keys.map((key) => ({ key, mode: 'exclusive' as const }))],
      async () => {
        inside.add(name);
        together = Math.max(together, inside.size);
        await g.promise;
        inside.delete(name);
      },
    );
  const a = op('a', [worktree('/wt/a')]);
  const b = op('b', [ref('pipeline/T1'), worktree('/wt/b')]);
  const c = op('c', [ref('main'), worktree('/repo')]);
  await until(() => inside.size === 3);
  // A fourth on worktree a waits for the first.
  let aAgain = false;
  const d = withLocks(
    [
      { key: repository, mode: 'shared' },
      { key: worktree('/wt/a'), mode: 'exclusive' },
    ],
    () => {
      aAgain = true;
      assert.ok(!inside.has('a'), 'the first holder of worktree a has finished');
      return Promise.resolve();
    },
  );
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(aAgain, false);
  g.open();
  await Promise.all([a, b, c, d]);
  assert.equal(together, 3);
  assert.equal(aAgain, true);
});

void test('the repository exclusive waits for every shared holder, holds back later ones, and covers every lock', async () => {
  const order: string[] = [];
  const g = gate();
  const first = withLocks([{ key: repository, mode: 'shared' }], async () => {
    order.push('shared-1 in');
    await g.promise;
    order.push('shared-1 out');
  });
  await until(() => order.length === 1);
  const exclusive = withLocks([{ key: repository, mode: 'exclusive' }], async () => {
    order.push('exclusive');
    // Everything of the repository is covered: no wait, no order check.
    await withLocks([{ key: worktree('/wt/z'), mode: 'exclusive' }], async () => {
      await withLocks([{ key: ref('main'), mode: 'exclusive' }], () => Promise.resolve());
      assert.equal(holdsLock(repository, 'exclusive'), true);
    });
  });
  // Asked after the exclusive request: served after it, though it could share with shared-1.
  const second = withLocks([{ key: repository, mode: 'shared' }], () => {
    order.push('shared-2');
    return Promise.resolve();
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ['shared-1 in']);
  g.open();
  await Promise.all([first, exclusive, second]);
  assert.deepEqual(order, ['shared-1 in', 'shared-1 out', 'exclusive', 'shared-2']);
});

void test('FIFO for one lock; re-entrant in a call chain; released when the holder fails', async () => {
  const order: number[] = [];
  await Promise.all(
    [0, 1, 2, 3, 4].map((n) =>
      withLocks([{ key: worktree('/wt/q'), mode: 'exclusive' }], async () => {
        await new Promise((r) => setTimeout(r, 2));
        await withLocks([{ key: worktree('/wt/q'), mode: 'exclusive' }], () => Promise.resolve());
        order.push(n);
      }),
    ),
  );
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  await assert.rejects(
    withLocks([{ key: worktree('/wt/q'), mode: 'exclusive' }], () => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await withLocks([{ key: worktree('/wt/q'), mode: 'exclusive' }], () => Promise.resolve(7)), 7);
  assert.equal(heldLocks().size, 0, 'nothing is held outside a locked section');
});

void test('the lock order: later locks may be added, earlier ones are refused, several are taken sorted', async () => {
  // repository, then ref, then worktree: fine.
  await withLocks([{ key: repository, mode: 'shared' }], () =>
    withLocks([{ key: ref('main'), mode: 'exclusive' }], () =>
      withLocks(
        [
          { key: worktree('/wt/b'), mode: 'exclusive' },
          { key: worktree('/wt/a'), mode: 'exclusive' },
        ],
        () => {
          assert.deepEqual(
            [...heldLocks().keys()],
            [repository, ref('main'), worktree('/wt/a'), worktree('/wt/b')],
            'taken in the lock order',
          );
          return Promise.resolve();
        },
      ),
    ),
  );
  // A worktree, then a ref: refused (another chain could hold the ref and want the worktree).
  await assert.rejects(
    withLocks([{ key: worktree('/wt/a'), mode: 'exclusive' }], () =>
      withLocks([{ key: ref('main'), mode: 'exclusive' }], () => Promise.resolve()),
    ),
    (e: unknown) => e instanceof LockOrderError && /ref:refs\/heads\/main/.test(e.message),
  );
  // Worktree b, then worktree a: refused too.
  await assert.rejects(
    withLocks([{ key: worktree('/wt/b'), mode: 'exclusive' }], () =>
      withLocks([{ key: worktree('/wt/a'), mode: 'exclusive' }], () => Promise.resolve()),
    ),
    LockOrderError,
  );
  // A shared hold is never upgraded in place.
  await assert.rejects(
    withLocks([{ key: repository, mode: 'shared' }], () =>
      withLocks([{ key: repository, mode: 'exclusive' }], () => Promise.resolve()),
    ),
    /Cannot upgrade/,
  );
  // Two chains taking the same two locks in opposite textual order do not deadlock: both are sorted.
  const g = gate();
  const one = withLocks(
    [
      { key: worktree('/wt/x'), mode: 'exclusive' },
      { key: worktree('/wt/y'), mode: 'exclusive' },
    ],
    () => g.promise,
  );
  const two = withLocks(
    [
      { key: worktree('/wt/y'), mode: 'exclusive' },
      { key: worktree('/wt/x'), mode: 'exclusive' },
    ],
    () => Promise.resolve('two'),
  );
  g.open();
  assert.equal((await Promise.all([one, two]))[1], 'two');
});
