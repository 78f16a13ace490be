import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureBranch, PILOT_BRANCH } from '../../../src/engine/git/branches';
import { DirtyWorktreeError, MergeConflictError } from '../../../src/engine/git/gitErrors';
import { conflictsBetween, dryRunMerge, mergeTask } from '../../../src/engine/git/merge';
import { commitFiles, commitOnBranch, fixturePerFile, git } from './gitFixture';

const f = fixturePerFile();

/** A task branch from main with its own commit, and main moved on in another file: a true merge. */
async function divergedTask(
  id: string,
  files: Record<string, string>,
  mainFiles: Record<string, string>,
): Promise<string> {
  const branch = `pipeline/${id}`;
  await git(f.dir, 'branch', branch, 'main');
  await commitOnBranch(f.dir, branch, files, `${id} work`);
  if (Object.keys(mainFiles).length > 0) await commitFiles(f.dir, mainFiles, `main moves on (${id})`);
  return branch;
}

void test('dry run: clean or conflicting with file names, touching no worktree and no ref', async () => {
  const clean = await divergedTask('TASK-001', { 'new.txt': 'n\n' }, { 'b.txt': 'b1\nmain\n' });
  await git(f.dir, 'branch', 'pipeline/TASK-002', 'main~1');
  await commitOnBranch(f.dir, 'pipeline/TASK-002', { 'b.txt': 'b1\ntask\n', 'a.txt': 'changed\n' }, 'conflicting');
  await commitFiles(f.dir, { 'a.txt': 'main changed a\n' }, 'main edits a');
  const before = { main: await git(f.dir, 'rev-parse', 'main'), status: await git(f.dir, 'status', '--porcelain') };

  const ok = await dryRunMerge(f.repo, clean, 'main');
  assert.equal(ok.clean, true);
  assert.deepEqual(ok.conflicts, []);
  assert.match(ok.tree ?? '', /^[0-9a-f]{40}$/);

  const bad = await dryRunMerge(f.repo, 'pipeline/TASK-002', 'main');
  assert.equal(bad.clean, false);
  assert.deepEqual([...bad.conflicts].sort(), ['a.txt', 'b.txt']);
  assert.equal(bad.tree, undefined);

  assert.equal(await git(f.dir, 'rev-parse', 'main'), before.main);
  assert.equal(await git(f.dir, 'status', '--porcelain'), before.status);
  await assert.rejects(dryRunMerge(f.repo, 'pipeline/NOPE-1', 'main'), /does not exist/);
  await assert.rejects(
    mergeTask(f.repo, 'pipeline/TASK-002', 'main', 'Merge TASK-002'),
    (e: unknown) => e instanceof MergeConflictError && e.files.length === 2,
  );
  assert.equal(await git(f.dir, 'rev-parse', 'main'), before.main);
});

void test('two task branches that would conflict with each other are caught before either merges', async () => {
  const base = await git(f.dir, 'rev-parse', 'main');
  await git(f.dir, 'branch', 'pipeline/TASK-010', base);
  await git(f.dir, 'branch', 'pipeline/TASK-011', base);
  await git(f.dir, 'branch', 'pipeline/TASK-012', base);
  await commitOnBranch(f.dir, 'pipeline/TASK-010', { 'shared.txt': 'ten\n' }, 'ten');
  await commitOnBranch(f.dir, 'pipeline/TASK-011', { 'shared.txt': 'eleven\n' }, 'eleven');
  await commitOnBranch(f.dir, 'pipeline/TASK-012', { 'other.txt': 'twelve\n' }, 'twelve');
  const clash = await conflictsBetween(f.repo, 'pipeline/TASK-010', 'pipeline/TASK-011');
  assert.equal(clash.clean, false);
  assert.deepEqual(clash.conflicts, ['shared.txt']);
  assert.equal((await conflictsBetween(f.repo, 'pipeline/TASK-010', 'pipeline/TASK-012')).clean, true);
});

void test('mergeTask: a merge commit with both parents; main checked out and clean is updated in place', async () => {
  const branch = await divergedTask('TASK-020', { 'feature.txt': 'feature\n' }, { 'b.txt': 'b1\nmain 20\n' });
  const ours = await git(f.dir, 'rev-parse', 'main');
  const theirs = await git(f.dir, 'rev-parse', branch);

  const r = await mergeTask(f.repo, branch, 'main', 'Merge TASK-020: add the feature');
  assert.equal(r.kind, 'merge');
  assert.equal(r.attempts, 1);
  assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
  assert.deepEqual((await git(f.dir, 'rev-list', '--parents', '-n', '1', r.sha)).split(' ').slice(1), [ours, theirs]);
  assert.equal(await git(f.dir, 'log', '-1', '--format=%s', r.sha), 'Merge TASK-020: add the feature');
  // The user's checkout of main moved with it: the file is there and nothing looks modified.
  assert.equal(await readFile(join(f.dir, 'feature.txt'), 'utf8'), 'feature\n');
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');

  // Merged already: nothing to do.
  const again = await mergeTask(f.repo, branch, 'main', 'again');
  assert.deepEqual([again.kind, again.sha], ['up-to-date', r.sha]);
});

void test('mergeTask fast-forwards when the target has not moved', async () => {
  await git(f.dir, 'branch', 'pipeline/TASK-021', 'main');
  const tip = await commitOnBranch(f.dir, 'pipeline/TASK-021', { 'ff.txt': 'ff\n' }, 'ff work');
  const r = await mergeTask(f.repo, 'pipeline/TASK-021', 'main', 'Merge TASK-021');
  assert.deepEqual([r.kind, r.sha], ['fast-forward', tip]);
  assert.equal(await readFile(join(f.dir, 'ff.txt'), 'utf8'), 'ff\n');
  // Unless a merge commit is asked for.
  await git(f.dir, 'branch', 'pipeline/TASK-022', 'main');
  await commitOnBranch(f.dir, 'pipeline/TASK-022', { 'nf.txt': 'nf\n' }, 'nf work');
  const m = await mergeTask(f.repo, 'pipeline/TASK-022', 'main', 'Merge TASK-022', { fastForward: false });
  assert.equal(m.kind, 'merge');
  assert.equal((await git(f.dir, 'rev-list', '--parents', '-n', '1', m.sha)).split(' ').length, 3);
});

void test('main checked out with local changes: an untouched file is fine, a touched one is a clear error and nothing is lost', async () => {
  const branch = await divergedTask('TASK-030', { 'a.txt': 'a from task\n' }, { 'b.txt': 'b1\nmain 30\n' });
  await writeFile(join(f.dir, 'b.txt'), 'user is editing b\n');
  const r = await mergeTask(f.repo, branch, 'main', 'Merge TASK-030');
  assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
  assert.equal(await readFile(join(f.dir, 'a.txt'), 'utf8'), 'a from task\n');
  assert.equal(await readFile(join(f.dir, 'b.txt'), 'utf8'), 'user is editing b\n');

  const touched = await divergedTask('TASK-031', { 'b.txt': 'b from task\n' }, { 'c.txt': 'c\n' });
  await writeFile(join(f.dir, 'b.txt'), 'user is still editing b\n');
  const mainBefore = await git(f.dir, 'rev-parse', 'main');
  const branchBefore = await git(f.dir, 'rev-parse', touched);
  await assert.rejects(mergeTask(f.repo, touched, 'main', 'Merge TASK-031'), (e: unknown) => {
    assert.ok(e instanceof DirtyWorktreeError, String(e));
    assert.equal(e.worktree, f.dir);
    assert.deepEqual(e.files, ['b.txt']);
    assert.ok(e.message.includes(f.dir) && e.message.includes('checked out'), e.message);
    assert.match(e.details.fix ?? '', /stash/);
    return true;
  });
  assert.equal(await git(f.dir, 'rev-parse', 'main'), mainBefore);
  assert.equal(await git(f.dir, 'rev-parse', touched), branchBefore);
  assert.equal(await readFile(join(f.dir, 'b.txt'), 'utf8'), 'user is still editing b\n');
  await git(f.dir, 'checkout', '--', 'b.txt');
});

void test('compare-and-swap: when the target moves between the dry run and the update, the merge is redone', async () => {
  // The target checked out in the main worktree: someone commits there meanwhile.
  const branch = await divergedTask('TASK-040', { 'x40.txt': 'x\n' }, { 'm40.txt': 'm\n' });
  let intruder = '';
  const r = await mergeTask(f.repo, branch, 'main', 'Merge TASK-040', {
    beforeAdvance: async (attempt) => {
      if (attempt === 1)
        intruder = await commitFiles(f.dir, { 'intruder.txt': 'i\n' }, 'a commit that lands meanwhile');
    },
  });
  assert.equal(r.attempts, 2);
  assert.equal((await git(f.dir, 'rev-list', '--parents', '-n', '1', r.sha)).split(' ')[1], intruder);
  assert.equal(await readFile(join(f.dir, 'intruder.txt'), 'utf8'), 'i\n');

  // A target checked out nowhere moves by update-ref old→new; another writer moves it meanwhile.
  await ensureBranch(f.repo, 'integration', 'main');
  const side = await divergedTask('TASK-041', { 'x41.txt': 'x\n' }, {});
  await commitOnBranch(f.dir, 'integration', { 'i41.txt': 'i\n' }, 'integration moves');
  let moved = '';
  const r2 = await mergeTask(f.repo, side, 'integration', 'Merge TASK-041', {
    beforeAdvance: async (attempt) => {
      if (attempt === 1) moved = await commitOnBranch(f.dir, 'integration', { 'late.txt': 'l\n' }, 'late commit');
    },
  });
  assert.equal(r2.attempts, 2);
  assert.equal((await git(f.dir, 'rev-list', '--parents', '-n', '1', r2.sha)).split(' ')[1], moved);
  assert.equal(await git(f.dir, 'rev-parse', 'integration'), r2.sha);

  // Bounded: a target that never stops moving is an error, not a loop.
  const third = await divergedTask('TASK-042', { 'x42.txt': 'x\n' }, {});
  await assert.rejects(
    mergeTask(f.repo, third, 'integration', 'Merge TASK-042', {
      maxAttempts: 2,
      beforeAdvance: async () => {
        await commitOnBranch(f.dir, 'integration', { [`busy-${Date.now()}.txt`]: 'b\n' }, 'busy');
      },
    }),
    /moved during each of 2 attempts/,
  );
});

void test('pilot mode: pipeline/pilot is created from the target once, and merges land there only', async () => {
  const created = await ensureBranch(f.repo, PILOT_BRANCH, 'main');
  assert.equal(created.created, true);
  assert.equal(created.head, await git(f.dir, 'rev-parse', 'main'));
  assert.equal((await ensureBranch(f.repo, PILOT_BRANCH, 'main')).created, false);

  const mainBefore = await git(f.dir, 'rev-parse', 'main');
  const branch = await divergedTask('TASK-050', { 'pilot.txt': 'p\n' }, {});
  const r = await mergeTask(f.repo, branch, PILOT_BRANCH, 'Merge TASK-050 (pilot)');
  assert.equal(await git(f.dir, 'rev-parse', PILOT_BRANCH), r.sha);
  assert.equal(await git(f.dir, 'rev-parse', 'main'), mainBefore);
  await assert.rejects(ensureBranch(f.repo, 'pipeline/x', 'no-such-branch'), /does not exist/);
});
