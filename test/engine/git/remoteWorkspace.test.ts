import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { getPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RemoteWorkspace } from '../../../src/engine/git/remoteWorkspace';
import { initRepo } from '../../../src/engine/git/initRepo';
import { isPipelineError } from '../../../src/engine/errors';
import { patience } from '../../support/waiting';
import { isGitLockError } from '../../../src/engine/git/gitErrors';

const WORKER = resolve('dist/gitWorker.js');

test('the git worker prepares a worktree, commits, merges, reports errors as PipelineErrors, and is restarted after it dies', async () => {
  assert.ok(existsSync(WORKER), 'build first with `node scripts/build.mjs` (dist/gitWorker.js is missing)');
  const dir = await mkdtemp(join(tmpdir(), 'remote-ws-'));
  const repoDir = join(dir, 'repo');
  const ws = new RemoteWorkspace(WORKER, repoDir, '../worktrees');
  try {
    const repo = await initRepo(repoDir);
    const prepared = await ws.prepare('implementer', 'TASK-001', 'main');
    assert.equal(prepared.worktree, ws.worktreePath('implementer'));
    assert.deepEqual(prepared.conflicts, []);
    await writeFile(join(prepared.worktree, 'feature.txt'), 'feature\n');
    assert.equal(await ws.commitAll('implementer', 'TASK-001 implementation: a feature'), true);
    assert.equal(await ws.commitAll('implementer', 'nothing left'), false);
    const prior = await ws.priorWork('TASK-001', 'main');
    assert.deepEqual(prior.files, ['feature.txt']);
    const merged = await ws.merge('TASK-001', 'main', 'Merge TASK-001');
    assert.ok(merged.merged);
    assert.equal((await repo.read(['show', 'main:feature.txt'])).trim(), 'feature');

    await assert.rejects(
      ws.prepare('implementer', 'TASK-002', 'no-such-branch'),
      (e: unknown) => isPipelineError(e) && e.code === 'git',
    );

    // Killing the worker fails nothing that is not in flight; the next call starts a new one.
    const pid = (ws as unknown as { worker?: { pid?: number } }).worker?.pid;
    assert.ok(pid, 'the worker runs');
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + patience(10_000);
    while ((ws as unknown as { worker?: unknown }).worker && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const again = await ws.prepare('tester', 'TASK-003', 'main');
    assert.equal(again.worktree, ws.worktreePath('tester'));

    // A git lock held elsewhere crosses the process boundary as its own code: the monitor retries it.
    await writeFile(join(again.worktree, 'tested.txt'), 'tested\n');
    assert.equal(await ws.commitAll('tester', 'TASK-003 tests'), true);
    const lock = join(repo.commonDir, 'refs', 'heads', 'main.lock');
    await writeFile(lock, '');
    await assert.rejects(ws.merge('TASK-003', 'main', 'Merge TASK-003'), (e: unknown) => isGitLockError(e));
    await rm(lock);
    assert.ok((await ws.merge('TASK-003', 'main', 'Merge TASK-003')).merged);
  } finally {
    ws.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the git worker runs, with the git it starts, at the niceness it is given below this process', async (t) => {
  if (process.platform === 'win32') return t.skip('niceness');
  assert.ok(existsSync(WORKER), 'build first with `node scripts/build.mjs` (dist/gitWorker.js is missing)');
  const dir = await mkdtemp(join(tmpdir(), 'remote-ws-'));
  const repoDir = join(dir, 'repo');
  const seen = join(dir, 'hook-niceness.txt');
  const ws = new RemoteWorkspace(WORKER, repoDir, '../worktrees', { niceness: 4 });
  try {
    await initRepo(repoDir);
    // A hook is a process git starts: it says the niceness git itself ran at.
    const hook = join(repoDir, '.git', 'hooks', 'post-checkout');
    await writeFile(hook, `#!/bin/sh\nnice > '${seen}'\n`, { mode: 0o755 });
    await ws.prepare('implementer', 'TASK-001', 'main');
    assert.equal(Number((await readFile(seen, 'utf8')).trim()), Math.min(19, getPriority() + 4));
  } finally {
    ws.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
