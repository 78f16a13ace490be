import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { advanceBranch } from '../../../src/engine/git/branches';
import { DirtyWorktreeError, isGitLockError } from '../../../src/engine/git/gitErrors';
import { gitProcessesIn } from '../../../src/engine/git/gitProcesses';
import { readMove, recordMove } from '../../../src/engine/git/pendingMove';
import { repairRepository } from '../../../src/engine/git/repair';
import { findLockFiles } from '../../../src/engine/git/staleLocks';
import { until } from '../../support/waiting';
import { commitOnBranch, fixturePerFile, git } from './gitFixture';

/**
 * A fast-forward of the checked-out target branch cut short between its files and its ref (the
 * engine killed with -9 while `git read-tree -u` writes the user's working tree): whoever finds
 * the move record (the start-up repair, or the next move of the branch) puts the files back where
 * the ref is, whatever part of them had moved, and a record is never overwritten or dropped while
 * the files are not where the ref is. Real git, and real processes killed with SIGKILL.
 */

// No automatic gc: its detached process would still be writing objects while the fixture is removed.
const f = fixturePerFile(undefined, (fx) => git(fx.dir, 'config', 'gc.auto', '0').then(() => undefined));

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** A task branch one commit ahead of main, adding `files` under `dir/`. */
async function taskAhead(id: string, count: number): Promise<{ branch: string; old: string; next: string }> {
  const branch = `pipeline/${id}`;
  const old = await git(f.dir, 'rev-parse', 'main');
  await git(f.dir, 'branch', branch, 'main');
  const files: Record<string, string> = { 'a.txt': `a1\na2\na3\n${id}\n` };
  for (let i = 0; i < count; i++) files[`${id}/f${i}.txt`] = `${id} ${i}\n`.repeat(40);
  const next = await commitOnBranch(f.dir, branch, files, `${id} work`);
  return { branch, old, next };
}

const status = () => git(f.dir, 'status', '--porcelain', '--untracked-files=all');
const record = () => readMove(f.repo.commonDir);

void test('files half written by a read-tree that died, index not: the repair puts them back (they were left untracked, the record dropped by the next merge)', async () => {
  const { branch, old, next } = await taskAhead('TASK-101', 3);
  // As `read-tree -m -u old next` leaves it when killed after writing some files, before the index:
  // a file of the move on disk, untracked; a changed file at its new content; the index at old.
  await recordMove(f.repo.commonDir, { ref: 'refs/heads/main', oldSha: old, newSha: next });
  await mkdir(join(f.dir, 'TASK-101'));
  await writeFile(
    join(f.dir, 'TASK-101', 'f0.txt'),
    await git(f.dir, 'show', `${next}:TASK-101/f0.txt`).then((s) => `${s}\n`),
  );
  await writeFile(join(f.dir, 'a.txt'), 'a1\na2\na3\nTASK-101\n');
  assert.match(await status(), /\?\? TASK-101\/f0\.txt/);

  const report = await repairRepository(f.worktrees);
  assert.deepEqual(report.moves, [{ path: f.dir, ref: 'refs/heads/main', action: 'rolled-back' }]);
  assert.equal(await status(), '', 'the checkout is as main says');
  assert.equal(await exists(join(f.dir, 'TASK-101')), false, 'the directory the move made is gone');
  assert.equal(await record(), undefined);

  // And the merge goes through afterwards, its files in place.
  assert.equal(await advanceBranch(f.repo, 'main', next, old, 'test'), 'advanced');
  assert.equal(await status(), '');
  assert.equal(await git(f.dir, 'rev-parse', 'main'), next);
  await git(f.dir, 'branch', '-D', branch);
});

void test('a record found by the next move is settled first, never overwritten; a local change in the way refuses the move and keeps it', async () => {
  const first = await taskAhead('TASK-102', 2);
  await recordMove(f.repo.commonDir, { ref: 'refs/heads/main', oldSha: first.old, newSha: first.next });
  await git(f.dir, 'read-tree', '-m', '-u', first.old, first.next);
  // A person edits a file the cut-short move wrote: neither the old nor the new content.
  await writeFile(join(f.dir, 'TASK-102', 'f1.txt'), 'a person was here\n');

  const second = `${first.branch}-b`;
  await git(f.dir, 'branch', second, first.old);
  const next2 = await commitOnBranch(f.dir, second, { 'other.txt': 'other\n' }, 'other work');
  const err = await advanceBranch(f.repo, 'main', next2, first.old, 'test').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof DirtyWorktreeError, String(err));
  assert.deepEqual(err.files, ['TASK-102/f1.txt']);
  assert.match(err.message, /was cut short/);
  assert.match(err.details.fix ?? '', /PIPELINE_MOVE/);
  assert.deepEqual(await record(), { ref: 'refs/heads/main', oldSha: first.old, newSha: first.next }, 'kept as it was');
  assert.equal(await git(f.dir, 'rev-parse', 'main'), first.old);

  // The person puts their change away: the next move rolls the first one back, then moves.
  await writeFile(join(f.dir, 'TASK-102', 'f1.txt'), `${'TASK-102 1\n'.repeat(40)}`);
  assert.equal(await advanceBranch(f.repo, 'main', next2, first.old, 'test'), 'advanced');
  assert.equal(await status(), '');
  assert.equal(await exists(join(f.dir, 'TASK-102')), false);
  assert.equal(await record(), undefined);
  // Back to where the next test expects main: at the first task's base plus other.txt.
  await git(f.dir, 'branch', '-D', first.branch, second);
});

void test('an index.lock held when the record is found: the move waits (GitLockError), then settles', async () => {
  const { branch, old, next } = await taskAhead('TASK-103', 2);
  await recordMove(f.repo.commonDir, { ref: 'refs/heads/main', oldSha: old, newSha: next });
  const lock = join(f.repo.commonDir, 'index.lock');
  await writeFile(lock, '');
  const report = await repairRepository(f.worktrees, { staleLockMs: Infinity });
  assert.deepEqual(report.moves, [{ path: f.dir, ref: 'refs/heads/main', action: 'busy' }]);
  const err = await advanceBranch(f.repo, 'main', next, old, 'test').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isGitLockError(err), String(err));
  assert.ok(await record(), 'kept while the lock is held');
  await rm(lock);
  assert.equal(await advanceBranch(f.repo, 'main', next, old, 'test'), 'advanced');
  assert.equal(await status(), '');
  assert.equal(await record(), undefined);
  await git(f.dir, 'branch', '-D', branch);
});

/** A child process that fast-forwards main (checked out here) to `next` and prints `recorded` when the record exists. */
function advanceInChild(next: string, old: string): { pid: number; exited: Promise<void> } {
  const script = `
    const { GitRepo } = require(${JSON.stringify(join(__dirname, '../../../src/engine/git/gitRepo'))});
    const { advanceBranch } = require(${JSON.stringify(join(__dirname, '../../../src/engine/git/branches'))});
    GitRepo.open(${JSON.stringify(f.dir)}).then((repo) => advanceBranch(repo, 'main', ${JSON.stringify(next)}, ${JSON.stringify(old)}, 'child'));
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { detached: true, stdio: 'ignore' });
  return { pid: child.pid!, exited: new Promise((r) => child.on('exit', () => r())) };
}

void test('kill -9 of the engine and its git while the files of main move, at several moments: the files always end where main is', async () => {
  // Enough files that `read-tree -u` takes a while, so the kills land while it writes them.
  for (let round = 0; round < 4; round++) {
    const id = `TASK-11${round}`;
    const { branch, old, next } = await taskAhead(id, 1000);
    const child = advanceInChild(next, old);
    await until(
      `the move of round ${round} recorded`,
      60_000,
      async () => (await record()) !== undefined || (await git(f.dir, 'rev-parse', 'main')) === next,
    );
    // Moments within the move: at once, then later and later; odd rounds kill the process group
    // (git dies too), even ones only the engine (its read-tree goes on alone).
    await new Promise((r) => setTimeout(r, round * 15));
    try {
      process.kill(round % 2 ? -child.pid : child.pid, 'SIGKILL');
    } catch {
      // It had finished.
    }
    await child.exited;
    // What an orphaned read-tree does is its business; once no git process works here, the repair
    // (with the stale-lock age a next start would have by then) settles the record.
    await until(
      'no git process left in the repository',
      60_000,
      async () => ((await gitProcessesIn([f.dir])) ?? []).length === 0,
    );
    // git processes killed with the engine leave their locks (the index, main, HEAD); by a next
    // start they are old, and no git process is alive.
    for (const lock of await findLockFiles(f.repo.commonDir)) {
      const past = new Date(Date.now() - 60_000);
      await utimes(lock, past, past);
    }
    const report = await repairRepository(f.worktrees);
    assert.equal(await record(), undefined, `round ${round}: the record is settled: ${JSON.stringify(report)}`);
    const at = await git(f.dir, 'rev-parse', 'main');
    assert.equal(
      await status(),
      '',
      `round ${round}: the checkout is where main is (${at === next ? 'moved' : 'not moved'})`,
    );
    if (at === old) assert.equal(await advanceBranch(f.repo, 'main', next, old, 'test'), 'advanced');
    assert.equal(await status(), '');
    assert.equal(await readFile(join(f.dir, id, 'f0.txt'), 'utf8'), `${id} 0\n`.repeat(40));
    await git(f.dir, 'branch', '-D', branch);
  }
});
