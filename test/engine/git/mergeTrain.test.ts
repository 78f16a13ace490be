import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { MergeConflictError } from '../../../src/engine/git/gitErrors';
import { mergeTrain, MergeTrains, type TrainOutcome } from '../../../src/engine/git/mergeTrain';
import { commitFiles, commitOnBranch, fixturePerFile, git } from './gitFixture';

const f = fixturePerFile();

/** A task branch from main's tip with one commit of `files`. */
async function taskBranch(id: string, files: Record<string, string>): Promise<{ branch: string; tip: string }> {
  const branch = `pipeline/${id}`;
  await git(f.dir, 'branch', branch, 'main');
  const tip = await commitOnBranch(f.dir, branch, files, `${id} work`);
  return { branch, tip };
}

/** The reflog messages of main, newest first. */
async function mainReflog(): Promise<string[]> {
  return (await git(f.dir, 'reflog', 'show', '--format=%gs', 'refs/heads/main')).split('\n');
}

const sha = (o: TrainOutcome): string => {
  assert.ok(o.ok, `expected a merge, got ${o.ok ? '' : o.error.message}`);
  return o.result.sha;
};

void test('a train: one merge commit per task in order, main moved once, its checkout with it', async () => {
  const a = await taskBranch('TASK-001', { 'one.txt': 'one\n' });
  const b = await taskBranch('TASK-002', { 'two.txt': 'two\n' });
  const c = await taskBranch('TASK-003', { 'three.txt': 'three\n' });
  // main moves on after the branches were made, so each is a true merge.
  const old = await commitFiles(f.dir, { 'b.txt': 'b1\nmain moved\n' }, 'main moves on');
  const reflogBefore = await mainReflog();

  const out = await mergeTrain(
    f.repo,
    [a, b, c].map((t, i) => ({ branch: t.branch, message: `Merge TASK-00${i + 1}` })),
    'main',
  );
  const [m1, m2, m3] = out.map(sha);
  assert.deepEqual(
    out.map((o) => (o.ok ? o.result.kind : 'left out')),
    ['merge', 'merge', 'merge'],
  );
  assert.equal(await git(f.dir, 'rev-parse', 'main'), m3);
  // Each merge commit: the previous state of main first, its task branch second, its own message.
  assert.deepEqual((await git(f.dir, 'rev-list', '--parents', '-n', '1', m1!)).split(' ').slice(1), [old, a.tip]);
  assert.deepEqual((await git(f.dir, 'rev-list', '--parents', '-n', '1', m2!)).split(' ').slice(1), [m1, b.tip]);
  assert.deepEqual((await git(f.dir, 'rev-list', '--parents', '-n', '1', m3!)).split(' ').slice(1), [m2, c.tip]);
  assert.equal(await git(f.dir, 'log', '-1', '--format=%s', m2!), 'Merge TASK-002');
  assert.deepEqual((await git(f.dir, 'rev-list', '--first-parent', `${old}..main`)).split('\n'), [m3, m2, m1]);
  // One move of main, whose reflog names the three branches in order.
  const reflog = await mainReflog();
  assert.equal(reflog.length, reflogBefore.length + 1);
  assert.equal(
    reflog[0],
    'pipeline: merge 3 task branches into main: pipeline/TASK-001, pipeline/TASK-002, pipeline/TASK-003',
  );
  // The user's checkout of main came along: every file there, nothing looks modified.
  for (const [file, text] of [
    ['one.txt', 'one\n'],
    ['two.txt', 'two\n'],
    ['three.txt', 'three\n'],
  ] as const)
    assert.equal(await readFile(join(f.dir, file), 'utf8'), text);
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');
});

void test('a conflicting task, a missing branch and an already merged one are left out; the others merge', async () => {
  const before = await git(f.dir, 'rev-parse', 'main');
  const a = await taskBranch('TASK-010', { 'ten.txt': 'ten\n' });
  const clash = await taskBranch('TASK-011', { 'a.txt': 'task 11 rewrites a\n' });
  const c = await taskBranch('TASK-012', { 'twelve.txt': 'twelve\n' });
  await commitFiles(f.dir, { 'a.txt': 'main rewrites a\n' }, 'main edits a');
  const merged = await git(f.dir, 'rev-parse', 'main');

  const out = await mergeTrain(
    f.repo,
    [
      { branch: a.branch, message: 'Merge TASK-010' },
      { branch: clash.branch, message: 'Merge TASK-011' },
      { branch: 'pipeline/TASK-404', message: 'Merge TASK-404' },
      { branch: c.branch, message: 'Merge TASK-012' },
      // Already in main: up to date, main as the train has it at that point.
      { branch: 'main', message: 'nothing' },
    ],
    'main',
  );
  assert.equal(out.length, 5);
  const [ten, eleven, missing, twelve, upToDate] = out as [
    TrainOutcome,
    TrainOutcome,
    TrainOutcome,
    TrainOutcome,
    TrainOutcome,
  ];
  assert.ok(!eleven.ok && eleven.error instanceof MergeConflictError);
  assert.deepEqual(eleven.error instanceof MergeConflictError ? eleven.error.files : [], ['a.txt']);
  assert.ok(!missing.ok && /pipeline\/TASK-404 does not exist/.test(missing.error.message));
  assert.ok(upToDate.ok && upToDate.result.kind === 'up-to-date');
  assert.equal(sha(upToDate), sha(twelve));
  assert.equal(await git(f.dir, 'rev-parse', 'main'), sha(twelve));
  assert.deepEqual((await git(f.dir, 'rev-list', '--first-parent', `${merged}..main`)).split('\n'), [
    sha(twelve),
    sha(ten),
  ]);
  // The conflicting task's work is not in main, and its branch did not move.
  assert.equal(await git(f.dir, 'rev-parse', clash.branch), clash.tip);
  assert.equal(await readFile(join(f.dir, 'a.txt'), 'utf8'), 'main rewrites a\n');
  assert.notEqual(before, sha(twelve));
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');
});

void test('a train whose first task contains main fast-forwards, and the next merges on top of it', async () => {
  const a = await taskBranch('TASK-020', { 'twenty.txt': 'twenty\n' });
  const b = await taskBranch('TASK-021', { 'twentyone.txt': 'twenty-one\n' });
  const out = await mergeTrain(
    f.repo,
    [
      { branch: a.branch, message: 'Merge TASK-020' },
      { branch: b.branch, message: 'Merge TASK-021' },
    ],
    'main',
  );
  const [first, second] = out as [TrainOutcome, TrainOutcome];
  assert.ok(first.ok && first.result.kind === 'fast-forward');
  assert.equal(sha(first), a.tip);
  assert.ok(second.ok && second.result.kind === 'merge');
  assert.deepEqual((await git(f.dir, 'rev-list', '--parents', '-n', '1', sha(second))).split(' ').slice(1), [
    a.tip,
    b.tip,
  ]);
  assert.equal(await git(f.dir, 'rev-parse', 'main'), sha(second));
});

void test('a train of one says in the reflog what a single merge says', async () => {
  const a = await taskBranch('TASK-030', { 'thirty.txt': 'thirty\n' });
  await commitFiles(f.dir, { 'b.txt': 'b1\nmain moved again\n' }, 'main moves on');
  const out = await mergeTrain(f.repo, [{ branch: a.branch, message: 'Merge TASK-030' }], 'main');
  const [only] = out as [TrainOutcome];
  assert.ok(only.ok && only.result.kind === 'merge');
  assert.equal((await mainReflog())[0], 'pipeline: merge pipeline/TASK-030 into main');
});

void test('merges asked for while one runs leave together, each caller getting its own outcome', async () => {
  const tasks = await Promise.all(
    ['TASK-040', 'TASK-041', 'TASK-042', 'TASK-043'].map((id, i) => taskBranch(id, { [`f${i}.txt`]: `${id}\n` })),
  );
  await commitFiles(f.dir, { 'b.txt': 'b1\nbefore the trains\n' }, 'main moves on');
  const reflogBefore = (await mainReflog()).length;
  const trains = new MergeTrains(f.repo);
  // Asked for at once: the first leaves alone, the three that come while it runs leave together.
  const out = await Promise.all(tasks.map((t) => trains.merge(t.branch, 'main', `Merge ${t.branch}`)));
  const shas = out.map(sha);
  assert.equal(await git(f.dir, 'rev-parse', 'main'), shas[3]);
  assert.deepEqual(
    (await git(f.dir, 'rev-list', '--first-parent', '-n', '4', 'main')).split('\n'),
    [...shas].reverse(),
  );
  assert.equal((await mainReflog()).length, reflogBefore + 2);
  for (let i = 0; i < tasks.length; i++)
    assert.equal((await git(f.dir, 'rev-list', '--parents', '-n', '1', shas[i]!)).split(' ')[2], tasks[i]!.tip);
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');
  // A later merge starts a train of its own.
  const late = await taskBranch('TASK-044', { 'late.txt': 'late\n' });
  assert.ok((await trains.merge(late.branch, 'main', 'Merge late')).ok);
  assert.equal((await mainReflog()).length, reflogBefore + 3);
});
