import assert from 'node:assert/strict';
import { access, chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { lockKey, LockOrderError, withLocks, withLocksThenShared } from '../../../src/engine/git/repoLock';
import { fixture, fixturePerFile, git, write } from './gitFixture';

/**
 * Worktrees made side by side (Worktrees.ensureWorktrees): each is registered under the repository's
 * exclusive lock, then its files are checked out under its own worktree lock with the repository held
 * shared only (repoLock.ts, withLocksThenShared). These tests prove the finer locking: the lock
 * primitive on its own, then on git, with a post-checkout hook that holds each checkout open until the
 * test lets go, so what may and may not run meanwhile is seen without depending on timing.
 */

const REPO = '/repos/then-shared/.git';
const repository = lockKey(REPO, 'repository');
const worktree = (path: string) => lockKey(REPO, 'worktree', path);

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Resolves once `cond` holds, checking after each turn of the event loop (or every 20 ms for files). */
async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 0): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => (ms ? setTimeout(r, ms) : setImmediate(r)));
  }
}

/** Tracks whether a promise has settled, for asserting that an operation is still waiting. */
function tracked<T>(p: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const promise = p.finally(() => (done = true));
  return { promise, settled: () => done };
}

void test('withLocksThenShared: exclusive first; then shared with its other locks kept, so only other worktrees come in', async () => {
  const registering = gate();
  const filling = gate();
  const phases: string[] = [];
  const shared = (name: string, key: string) =>
    tracked(
      withLocks(
        [
          { key: repository, mode: 'shared' },
          { key, mode: 'exclusive' },
        ],
        () => {
          phases.push(name);
          return Promise.resolve();
        },
      ),
    );
  let inThen = false;
  const op = withLocksThenShared(
    [{ key: worktree('/wt/new'), mode: 'exclusive' }],
    repository,
    async () => {
      phases.push('registered');
      await registering.promise;
      return 7;
    },
    async (value) => {
      inThen = true;
      assert.equal(value, 7);
      await filling.promise;
      phases.push('filled');
      return value * 2;
    },
  );
  await until(() => phases.includes('registered'), 'the first part runs');
  // While the repository is held exclusive, an operation on another worktree waits.
  const other = shared('other worktree', worktree('/wt/other'));
  const same = shared('same worktree', worktree('/wt/new'));
  const exclusive = tracked(
    withLocks([{ key: repository, mode: 'exclusive' }], () => {
      phases.push('exclusive');
      return Promise.resolve();
    }),
  );
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(phases, ['registered']);
  registering.open();
  // Downgraded: the other worktree's operation runs while `then` still holds its worktree.
  await other.promise;
  assert.ok(inThen);
  assert.deepEqual(phases, ['registered', 'other worktree']);
  // The same worktree and a later exclusive request wait for the end.
  assert.equal(same.settled(), false);
  assert.equal(exclusive.settled(), false);
  filling.open();
  assert.equal(await op, 14);
  await Promise.all([same.promise, exclusive.promise]);
  assert.deepEqual(phases.slice(0, 3), ['registered', 'other worktree', 'filled']);
  assert.deepEqual(new Set(phases.slice(3)), new Set(['same worktree', 'exclusive']));
});

void test('withLocksThenShared inside an exclusive hold runs both parts under it; inside a shared hold it is refused', async () => {
  const order: string[] = [];
  await withLocks([{ key: repository, mode: 'exclusive' }], async () => {
    const r = await withLocksThenShared(
      [{ key: worktree('/wt/x'), mode: 'exclusive' }],
      repository,
      () => Promise.resolve(order.push('first')),
      (n) => Promise.resolve(order.push(`then ${n}`)),
    );
    assert.equal(r, 2);
  });
  assert.deepEqual(order, ['first', 'then 1']);
  await withLocks([{ key: repository, mode: 'shared' }], async () => {
    await assert.rejects(
      withLocksThenShared(
        [],
        repository,
        () => Promise.resolve(),
        () => Promise.resolve(),
      ),
      LockOrderError,
    );
  });
});

const f = fixturePerFile();

/**
 * A post-checkout hook that, when git reports a new worktree (the null commit as the previous HEAD),
 * notes that it started and waits until `release` exists; other checkouts pass through.
 */
async function holdingHook(
  commonDir: string,
  state: string,
): Promise<{ started: () => Promise<string[]>; release: () => Promise<void> }> {
  await mkdir(state, { recursive: true });
  const hook = join(commonDir, 'hooks', 'post-checkout');
  await mkdir(join(commonDir, 'hooks'), { recursive: true });
  await writeFile(
    hook,
    `#!/bin/sh
case "$1" in *[!0]*) exit 0 ;; esac
touch "${state}/started-$(basename "$PWD")"
while [ ! -f "${state}/release" ]; do sleep 0.02; done
`,
  );
  await chmod(hook, 0o755);
  return {
    started: async () => (await readdir(state)).filter((n) => n.startsWith('started-')).map((n) => n.slice(8)),
    release: async () => {
      await writeFile(join(state, 'release'), '');
    },
  };
}

void test('16 worktrees are filled side by side, with the repository shared: other worktrees go on, the new ones and the registry wait', async () => {
  // An agent whose worktree exists, working on while the others are made.
  await f.worktrees.ensureWorktree('busy');
  await f.worktrees.checkoutTask('busy', 'TASK-900', 'main');
  const hook = await holdingHook(f.repo.commonDir, join(f.base, 'hook-state'));
  try {
    const agents = Array.from({ length: 16 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
    const making = tracked(f.worktrees.ensureWorktrees(agents));
    // At least two checkouts are under way at once (every hook waits): they run side by side.
    await until(async () => (await hook.started()).length >= 2, 'two checkouts are under way', 20);
    // Meanwhile another agent's worktree commits and its task branch moves: the repository is not
    // held exclusive.
    await write(f.worktrees.pathOf('busy'), 'busy.txt', 'work\n');
    assert.ok(await f.worktrees.commitAll('busy', 'busy work', 'pipeline/TASK-900'));
    // A worktree still being made is not handed out half filled: an operation on it waits…
    const first = f.worktrees.pathOf(agents[0]!);
    const onNew = tracked(f.repo.locked({ worktrees: [first] }, () => f.worktrees.uncommitted(agents[0]!)));
    // …and so does a change to the registry (another worktree to add).
    const late = tracked(f.worktrees.ensureWorktree('late'));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(making.settled(), false);
    assert.equal(onNew.settled(), false, 'an operation on a worktree being made waited');
    assert.equal(late.settled(), false, 'adding a worktree waited for the registry');
    await hook.release();
    const made = await making.promise;
    assert.deepEqual(
      made.map((w) => w.agentId),
      agents,
    );
    assert.ok(made.every((w) => w.created && w.branch === undefined));
    assert.deepEqual(await onNew.promise, [], 'filled and clean when the waiting operation ran');
    assert.equal((await late.promise).created, true);
    const main = await git(f.dir, 'rev-parse', 'main');
    for (const w of made) {
      assert.equal(w.head, main);
      assert.equal(await readFile(join(w.path, 'a.txt'), 'utf8'), 'a1\na2\na3\n');
      assert.equal(await git(w.path, 'status', '--porcelain'), '', `${w.agentId} is clean`);
    }
    assert.deepEqual((await hook.started()).sort(), [...agents, 'late'].sort());
    // Made again: nothing to do. An agent named twice is one worktree.
    assert.ok((await f.worktrees.ensureWorktrees(agents)).every((w) => !w.created));
    const twice = await f.worktrees.ensureWorktrees(['twice', 'twice']);
    assert.deepEqual(
      twice.map((w) => [w.agentId, w.created]),
      [
        ['twice', true],
        ['twice', true],
      ],
    );
  } finally {
    await hook.release();
    await rm(join(f.repo.commonDir, 'hooks', 'post-checkout'), { force: true });
  }
});

void test('one agent that cannot be made does not stop the others: they are made whole, and the call names the one', async () => {
  const fx = await fixture();
  try {
    await write(fx.worktrees.pathOf('squatter'), 'notes.txt', 'mine');
    const agents = ['one', 'squatter', 'two'];
    await assert.rejects(fx.worktrees.ensureWorktrees(agents), /squatter.*exists and is not a worktree/);
    for (const a of ['one', 'two']) {
      await access(join(fx.worktrees.pathOf(a), 'a.txt'));
      assert.equal(await git(fx.worktrees.pathOf(a), 'status', '--porcelain'), '');
    }
    assert.equal(await readFile(join(fx.worktrees.pathOf('squatter'), 'notes.txt'), 'utf8'), 'mine');
    // The next call finds the two made and still refuses the third.
    await rm(fx.worktrees.pathOf('squatter'), { recursive: true });
    const again = await fx.worktrees.ensureWorktrees(agents);
    assert.deepEqual(
      again.map((w) => w.created),
      [false, true, false],
    );
  } finally {
    await fx.cleanup();
  }
});

void test('a failing post-checkout hook fails the call as it fails git worktree add, with the worktree made', async () => {
  const fx = await fixture();
  try {
    const hook = join(fx.repo.commonDir, 'hooks', 'post-checkout');
    await mkdir(join(fx.repo.commonDir, 'hooks'), { recursive: true });
    await writeFile(hook, '#!/bin/sh\necho "hook says no" >&2\nexit 3\n');
    await chmod(hook, 0o755);
    await assert.rejects(fx.worktrees.ensureWorktree('hooked'), /hook says no/);
    await rm(hook);
    const w = await fx.worktrees.ensureWorktree('hooked');
    assert.equal(w.created, false);
    assert.equal(await git(w.path, 'status', '--porcelain'), '');
  } finally {
    await fx.cleanup();
  }
});
