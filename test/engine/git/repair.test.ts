import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { gitProcessesIn } from '../../../src/engine/git/gitProcesses';
import { recordMove } from '../../../src/engine/git/pendingMove';
import { repairRepository } from '../../../src/engine/git/repair';
import { commitFiles, commitOnBranch, fixturePerFile, git, gitCode } from './gitFixture';

const f = fixturePerFile();

async function oldLock(path: string): Promise<void> {
  await writeFile(path, '');
  const past = new Date(Date.now() - 60_000);
  await utimes(path, past, past);
}

void test('a clean repository: nothing to report', async () => {
  const report = await repairRepository(f.worktrees);
  assert.deepEqual(report, {
    locks: [],
    recreated: [],
    pruned: [],
    created: [],
    unfinished: [],
    strays: [],
    moves: [],
  });
});

void test('worktree directories deleted by hand: agent worktrees come back on their branch, others are pruned', async () => {
  const co = await f.worktrees.checkoutTask('implementer', 'TASK-001', 'main');
  const work = await commitFiles(co.path, { 'impl.txt': 'impl\n' }, 'implementation');
  const detached = await f.worktrees.ensureWorktree('reviewer');
  const userWt = join(f.base, 'user-wt');
  await git(f.dir, 'worktree', 'add', '--quiet', '--detach', userWt);
  await rm(co.path, { recursive: true, force: true });
  await rm(detached.path, { recursive: true, force: true });
  await rm(userWt, { recursive: true, force: true });

  const report = await repairRepository(f.worktrees, { agents: ['implementer', 'reviewer', 'newcomer'] });
  assert.deepEqual(report.recreated.map((r) => [r.agentId, r.ref]).sort(), [
    ['implementer', 'pipeline/TASK-001'],
    ['reviewer', detached.head],
  ]);
  assert.deepEqual(report.pruned, [userWt]);
  assert.deepEqual(report.created, ['newcomer']);
  assert.equal(await git(co.path, 'rev-parse', 'HEAD'), work);
  assert.equal(await git(co.path, 'status', '--porcelain'), '');
  await access(join(co.path, 'impl.txt'));
  const list = await git(f.dir, 'worktree', 'list', '--porcelain');
  assert.ok(!list.includes('prunable'), list);
  assert.ok(!list.includes(userWt), list);

  // ensureWorktree repairs a vanished worktree by itself too.
  await rm(co.path, { recursive: true, force: true });
  const back = await f.worktrees.ensureWorktree('implementer');
  assert.deepEqual([back.created, back.branch, back.head], [true, 'pipeline/TASK-001', work]);
});

void test('a stale index.lock is removed when no git process works in the repository; a fresh or busy one is kept', async () => {
  const mainLock = join(f.repo.commonDir, 'index.lock');
  const agentLock = join(await f.repo.gitDirOf(f.worktrees.pathOf('implementer')), 'index.lock');
  await oldLock(mainLock);
  await oldLock(agentLock);
  const report = await repairRepository(f.worktrees);
  assert.deepEqual(
    report.locks.map((l) => [l.path, l.action]).sort(),
    [
      [agentLock, 'removed'],
      [mainLock, 'removed'],
    ].sort(),
  );
  await assert.rejects(access(mainLock));
  await f.repo.mutate(['add', '--', 'a.txt']);

  // Too young: a git command may be about to write it.
  await writeFile(mainLock, '');
  const young = await repairRepository(f.worktrees);
  assert.deepEqual(
    young.locks.map((l) => l.action),
    ['kept'],
  );
  assert.match(young.locks[0]?.reason ?? '', /old/);

  // Old, but a git process is running in the repository: kept.
  await oldLock(mainLock);
  const busy = spawn('git', ['cat-file', '--batch'], { cwd: f.dir, stdio: ['pipe', 'ignore', 'ignore'] });
  try {
    await new Promise((r) => setTimeout(r, 100));
    const seen = await gitProcessesIn([f.dir]);
    assert.ok(
      seen?.some((p) => p.pid === busy.pid),
      JSON.stringify(seen),
    );
    const report2 = await repairRepository(f.worktrees);
    assert.deepEqual(
      report2.locks.map((l) => l.action),
      ['kept'],
    );
    assert.match(report2.locks[0]?.reason ?? '', /git process is running/);
  } finally {
    busy.stdin.end();
    await new Promise((r) => busy.once('exit', r));
  }
  // Without /proc nothing can be checked: kept.
  const blind = await repairRepository(f.worktrees, { gitProcesses: () => Promise.resolve(undefined) });
  assert.deepEqual(
    blind.locks.map((l) => l.action),
    ['kept'],
  );
  const done = await repairRepository(f.worktrees);
  assert.deepEqual(
    done.locks.map((l) => l.action),
    ['removed'],
  );
});

void test('an unfinished merge is aborted in an agent worktree, only reported in the main working tree', async () => {
  const wt = f.worktrees.pathOf('implementer');
  await git(f.dir, 'branch', 'clash', 'main');
  await git(f.dir, 'switch', '--quiet', 'clash');
  await commitFiles(f.dir, { 'a.txt': 'clash\n' }, 'clash edits a');
  await git(f.dir, 'switch', '--quiet', 'main');
  await commitFiles(wt, { 'a.txt': 'agent\n' }, 'agent edits a');
  assert.equal(await gitCode(wt, 'merge', '--no-edit', 'clash'), 1);
  await commitFiles(f.dir, { 'a.txt': 'user\n' }, 'user edits a');
  assert.equal(await gitCode(f.dir, 'merge', '--no-edit', 'clash'), 1);

  // The layer refuses to switch a worktree in the middle of a merge.
  await assert.rejects(f.worktrees.checkoutTask('implementer', 'TASK-002', 'main'), /in the middle of a merge/);
  await assert.rejects(
    f.worktrees.commitAll('implementer', 'would commit conflict markers'),
    /in the middle of a merge/,
  );

  const report = await repairRepository(f.worktrees);
  assert.deepEqual(
    report.unfinished.map((u) => [u.path, u.agentId, u.operation, u.action]),
    [
      [f.dir, undefined, 'merge', 'reported'],
      [wt, 'implementer', 'merge', 'aborted'],
    ],
  );
  assert.equal(await gitCode(wt, 'rev-parse', '-q', '--verify', 'MERGE_HEAD'), 1);
  assert.equal(await git(wt, 'status', '--porcelain'), '');
  assert.equal(await gitCode(f.dir, 'rev-parse', '-q', '--verify', 'MERGE_HEAD'), 0);
  await git(f.dir, 'merge', '--abort');
});

void test('strays in the worktree root are reported and left alone', async () => {
  const stray = join(f.worktrees.root, 'not-a-worktree');
  await writeFile(stray, 'x');
  const report = await repairRepository(f.worktrees);
  assert.deepEqual(report.strays, [stray]);
  await access(stray);
  await rm(stray);
});

void test('every stale git lock is found, not only index.lock: a ref, packed-refs, a worktree HEAD, config', async () => {
  const wt = f.worktrees.pathOf('implementer');
  const gitDir = await f.repo.gitDirOf(wt);
  const locks = [
    join(f.repo.commonDir, 'refs', 'heads', 'main.lock'),
    join(f.repo.commonDir, 'packed-refs.lock'),
    join(f.repo.commonDir, 'config.lock'),
    join(gitDir, 'HEAD.lock'),
  ].sort();
  for (const l of locks) await oldLock(l);
  // One that a git process may own (young) is kept; the old ones are removed.
  const young = join(f.repo.commonDir, 'HEAD.lock');
  await writeFile(young, '');
  const report = await repairRepository(f.worktrees);
  assert.deepEqual(
    report.locks.map((l) => [l.path, l.action]),
    [...locks.map((l) => [l, 'removed']), [young, 'kept']].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
  );
  for (const l of locks) await assert.rejects(access(l));
  await rm(young);
  // The repository works again: main can move, the worktree can switch.
  await commitFiles(f.dir, { 'after-repair.txt': 'x\n' }, 'after repair');
  await f.worktrees.checkoutTask('implementer', 'TASK-020', 'main');
  assert.equal(await git(wt, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-020');
});

void test('a merge into the checked-out main cut short between its files and its ref: the files are put back', async () => {
  // As if the engine died after the files of the main working tree moved and before main did.
  const old = await git(f.dir, 'rev-parse', 'main');
  await git(f.dir, 'branch', 'pipeline/TASK-030', 'main');
  const next = await commitOnBranch(f.dir, 'pipeline/TASK-030', { 'cut-short.txt': 'x\n' }, 'TASK-030 work');
  await recordMove(f.repo.commonDir, { ref: 'refs/heads/main', oldSha: old, newSha: next });
  await git(f.dir, 'read-tree', '-m', '-u', old, next);
  assert.equal(await git(f.dir, 'status', '--porcelain'), 'A  cut-short.txt', 'the checkout looks half merged');

  const report = await repairRepository(f.worktrees);
  assert.deepEqual(report.moves, [{ path: f.dir, ref: 'refs/heads/main', action: 'rolled-back' }]);
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');
  assert.equal(await git(f.dir, 'rev-parse', 'main'), old);
  await assert.rejects(access(join(f.dir, 'cut-short.txt')));
  assert.deepEqual((await repairRepository(f.worktrees)).moves, [], 'the record is gone');

  // Died after the ref moved, before the record was removed: nothing to undo.
  await recordMove(f.repo.commonDir, { ref: 'refs/heads/main', oldSha: old, newSha: old });
  assert.deepEqual((await repairRepository(f.worktrees)).moves, [
    { path: f.dir, ref: 'refs/heads/main', action: 'completed' },
  ]);
  await git(f.dir, 'branch', '-D', 'pipeline/TASK-030');
});

void test('a young lock in an agent worktree nobody works in is removed at once; with a process working there, it waits for its age', async () => {
  const wt = (await f.worktrees.ensureWorktree('idle-agent')).path;
  const lock = join(await f.repo.gitDirOf(wt), 'index.lock');
  const mainLock = join(f.repo.commonDir, 'index.lock');
  // What an agent killed inside `git add` leaves: a lock a moment old.
  await writeFile(lock, '');
  // The main working tree's young lock keeps its age rule: a person's tools work there.
  await writeFile(mainLock, '');
  const report = await repairRepository(f.worktrees);
  assert.deepEqual(
    report.locks.map((l) => [l.path, l.action]).sort(),
    [
      [lock, 'removed'],
      [mainLock, 'kept'],
    ].sort(),
    JSON.stringify(report.locks),
  );
  assert.match(report.locks.find((l) => l.path === lock)?.reason ?? '', /no process works in .*idle-agent/);
  await rm(mainLock);

  // An agent (any process) working in the worktree may be about to take the lock: kept while young.
  await writeFile(lock, '');
  const agent = spawn('sleep', ['600'], { cwd: wt, stdio: 'ignore' });
  try {
    const kept = await repairRepository(f.worktrees);
    assert.deepEqual(
      kept.locks.map((l) => [l.path, l.action]),
      [[lock, 'kept']],
    );
  } finally {
    agent.kill('SIGKILL');
    await new Promise((r) => agent.once('exit', r));
  }
  // Gone: the lock goes with the next look, however young.
  const after = await repairRepository(f.worktrees);
  assert.deepEqual(
    after.locks.map((l) => [l.path, l.action]),
    [[lock, 'removed']],
  );
  await f.worktrees.removeWorktree('idle-agent');
});
