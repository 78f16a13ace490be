import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { gitEnvironment } from '../../../src/engine/git/gitEnv';
import { GitLockError } from '../../../src/engine/git/gitErrors';
import { readySpawnServer, spawnGit } from '../../../src/engine/git/gitSpawner';
import { RefCommitError, updateRefLocked } from '../../../src/engine/git/refTransaction';
import { until } from '../../support/waiting';
import { commitFiles, fixturePerFile, git } from './gitFixture';

/**
 * `git update-ref --stdin` transactions (refTransaction.ts) run on the spawn server once it listens:
 * git is the server's child; a ref moves while its lock is held across the caller's work; a ref that
 * moved meanwhile, a held lock and a failure of the work leave it where it was; and a server that
 * dies mid-transaction aborts it (git's stdin closes), the ref where it was and its lock gone.
 */

let a = '';
let b = '';
const ref = 'refs/heads/moving';
const f = fixturePerFile(undefined, async (fx) => {
  a = await git(fx.dir, 'rev-parse', 'HEAD');
  b = await commitFiles(fx.dir, { 'c.txt': 'c\n' }, 'c');
  const env = gitEnvironment(true);
  await until('the spawn server listening', 30_000, async () => {
    await spawnGit({ args: ['--version'], cwd: fx.dir, env, timeoutMs: 60_000 });
    return readySpawnServer() !== undefined;
  });
});
const lockFile = () => join(f.repo.commonDir, 'refs', 'heads', 'moving.lock');

const reset = () => git(f.dir, 'update-ref', ref, a);
const at = () => git(f.dir, 'rev-parse', ref);

/** The pid of the parent of the `update-ref --stdin` running in `cwd`. */
async function updateRefParent(cwd: string): Promise<number | undefined> {
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmdline = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes('update-ref\0') || !cmdline.includes('--stdin')) continue;
    if ((await readlink(`/proc/${d}/cwd`).catch(() => '')) !== cwd) continue;
    const stat = await readFile(`/proc/${d}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return undefined;
}

void test("moves the ref with its lock held across the work, git the spawn server's child", async (t) => {
  if (process.platform !== 'linux') return t.skip('reads /proc');
  await reset();
  const server = readySpawnServer();
  const outcome = await updateRefLocked(f.dir, ref, b, a, 'test: move', 60_000, async () => {
    assert.ok(existsSync(lockFile()), 'the lock is held while the work runs');
    assert.equal(await at(), a, 'the ref has not moved yet');
    return updateRefParent(f.dir);
  });
  assert.deepEqual(outcome, { kind: 'committed', value: server?.pid });
  assert.equal(await at(), b);
  assert.equal(existsSync(lockFile()), false);
});

void test('a ref no longer where it was expected: moved, the work not run', async () => {
  await reset();
  let ran = false;
  const outcome = await updateRefLocked(f.dir, ref, a, b, 'test: stale', 60_000, () => {
    ran = true;
    return Promise.resolve();
  });
  assert.deepEqual([outcome.kind, ran, await at()], ['moved', false, a]);
});

void test('a lock someone else holds is a GitLockError; the work fails: the ref stays', async () => {
  await reset();
  await writeFile(lockFile(), '');
  try {
    await assert.rejects(
      updateRefLocked(f.dir, ref, b, a, 'test: held', 60_000, () => Promise.resolve()),
      (e: unknown) => e instanceof GitLockError,
    );
  } finally {
    await rm(lockFile(), { force: true });
  }
  await assert.rejects(
    updateRefLocked(f.dir, ref, b, a, 'test: work fails', 60_000, () => Promise.reject(new Error('the work failed'))),
    /the work failed/,
  );
  assert.equal(await at(), a);
  await until('the aborted transaction releasing its lock', 10_000, () => !existsSync(lockFile()));
});

void test('a server that dies mid-transaction aborts it: the commit fails, the ref stays, the lock goes', async (t) => {
  if (process.platform !== 'linux') return t.skip('kills a process');
  await reset();
  const server = readySpawnServer();
  assert.ok(server?.pid !== undefined);
  await assert.rejects(
    updateRefLocked(f.dir, ref, b, a, 'test: server dies', 60_000, async () => {
      process.kill(server.pid!, 'SIGKILL');
      await until('the killed server seen to be gone', 20_000, () => !server.alive);
    }),
    (e: unknown) => e instanceof RefCommitError,
  );
  assert.equal(await at(), a);
  await until('the abandoned git releasing its lock', 10_000, () => !existsSync(lockFile()));
});

void test('a commit whose answer is lost after git committed is a commit: the ref moved, the work stands', async (t) => {
  if (process.platform !== 'linux') return t.skip('a shell hook');
  await reset();
  // git runs the reference-transaction hook once the refs are committed and before it answers
  // "commit: ok": the hook ends git there, as a spawn server dying at that moment would.
  const hook = join(f.repo.commonDir, 'hooks', 'reference-transaction');
  await mkdir(dirname(hook), { recursive: true });
  await writeFile(hook, '#!/bin/sh\nif [ "$1" = committed ]; then kill -9 $PPID; fi\nexit 0\n', { mode: 0o755 });
  try {
    const outcome = await updateRefLocked(f.dir, ref, b, a, 'test: answer lost', 60_000, () => Promise.resolve('work'));
    assert.deepEqual(outcome, { kind: 'committed', value: 'work' });
    assert.equal(await at(), b);
  } finally {
    await rm(hook, { force: true });
  }
});
