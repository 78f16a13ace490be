import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { diffAgainstTarget, taskChanges } from '../../../src/engine/git/changes';
import { commitFiles, fixturePerFile, git } from './gitFixture';

const f = fixturePerFile({
  'a.txt': 'a\n',
  'b.txt': 'b\n',
  'old-name.txt': 'a file long enough to be recognised as renamed\n',
});

void test("taskChanges: commits and files on the task branch since the merge base, not the target's", async () => {
  const co = await f.worktrees.checkoutTask('implementer', 'TASK-001', 'main');
  const first = await commitFiles(co.path, { 'new.txt': 'new\n', 'a.txt': 'a changed\n' }, 'Add new, change a');
  await rm(join(co.path, 'b.txt'));
  await git(co.path, 'mv', 'old-name.txt', 'new-name.txt');
  await git(co.path, 'add', '--all');
  await git(co.path, 'commit', '--quiet', '-m', 'Delete b, rename old-name');
  const second = await git(co.path, 'rev-parse', 'HEAD');
  await commitFiles(f.dir, { 'main-only.txt': 'm\n' }, 'Main moves on');

  const c = await taskChanges(f.repo, 'TASK-001', 'main');
  assert.equal(c.branch, 'pipeline/TASK-001');
  assert.equal(c.head, second);
  assert.equal(c.base, await git(f.dir, 'rev-parse', 'main~1'));
  assert.deepEqual(
    c.commits.map((x) => [x.sha, x.subject]),
    [
      [second, 'Delete b, rename old-name'],
      [first, 'Add new, change a'],
    ],
  );
  assert.equal(c.commits[0]?.author, 'Agent Pipeline');
  assert.match(c.commits[0]?.date ?? '', /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(
    [...c.files].sort((x, y) => x.path.localeCompare(y.path)),
    [
      { path: 'a.txt', status: 'modified' },
      { path: 'b.txt', status: 'deleted' },
      { path: 'new-name.txt', status: 'renamed', from: 'old-name.txt' },
      { path: 'new.txt', status: 'added' },
    ],
  );

  const diff = await diffAgainstTarget(f.repo, 'TASK-001', 'main');
  assert.match(diff, /^\+a changed$/m);
  assert.match(diff, /^rename from old-name\.txt$/m);
  assert.ok(!diff.includes('main-only.txt'), "the target's own changes are not the task's");
  const only = await diffAgainstTarget(f.repo, 'TASK-001', 'main', ['new.txt']);
  assert.match(only, /new\.txt/);
  assert.ok(!only.includes('a.txt'));

  await assert.rejects(taskChanges(f.repo, 'TASK-404', 'main'), /pipeline\/TASK-404 does not exist/);
});

void test('a task branch with no work yet has no changes', async () => {
  await f.worktrees.checkoutTask('tester', 'TASK-002', 'main');
  const c = await taskChanges(f.repo, 'TASK-002', 'main');
  assert.deepEqual([c.commits, c.files], [[], []]);
  assert.equal(await diffAgainstTarget(f.repo, 'TASK-002', 'main'), '');
});
