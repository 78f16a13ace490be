import assert from 'node:assert/strict';
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { DirtyWorktreeError, MergeConflictError } from '../../../src/engine/git/gitErrors';
import { TASK_DIR } from '../../../src/engine/agents/taskFile';
import { commitFiles, fixturePerFile, git, gitCode, write } from './gitFixture';

const f = fixturePerFile();

void test('ensureWorktree creates a detached worktree at <root>/<agent> and reuses it', async () => {
  const first = await f.worktrees.ensureWorktree('architect');
  assert.equal(first.path, join(f.base, '.pipeline-worktrees', 'architect'));
  assert.equal(first.created, true);
  assert.equal(first.branch, undefined);
  assert.equal(first.head, await git(f.dir, 'rev-parse', 'main'));
  await access(join(first.path, 'a.txt'));

  const again = await f.worktrees.ensureWorktree('architect');
  assert.equal(again.created, false);
  assert.equal(again.path, first.path);
  assert.equal((await f.worktrees.list()).filter((w) => w.agentId === 'architect').length, 1);
});

void test('8 concurrent ensureWorktree calls for 8 agents all succeed', async () => {
  const agents = Array.from({ length: 8 }, (_, i) => `worker-${i}`);
  const made = await Promise.all(agents.map((a) => f.worktrees.ensureWorktree(a)));
  assert.ok(made.every((w) => w.created));
  const listed = new Set((await f.worktrees.list()).map((w) => w.agentId));
  for (const a of agents) {
    assert.ok(listed.has(a), a);
    await access(join(f.worktrees.pathOf(a), '.git'));
  }
  // Concurrent calls for the same agent: one creates, the others reuse.
  const same = await Promise.all([1, 2, 3].map(() => f.worktrees.ensureWorktree('same')));
  assert.equal(same.filter((w) => w.created).length, 1);
});

void test('ids are validated before they become paths or branches', async () => {
  await assert.rejects(
    f.worktrees.ensureWorktree('../escape'),
    (e: unknown) => isPipelineError(e) && e.code === 'invalid-id',
  );
  await assert.rejects(
    f.worktrees.checkoutTask('tester', 'TASK-1; rm -rf /', 'main'),
    (e: unknown) => isPipelineError(e) && e.code === 'invalid-id',
  );
  await assert.rejects(
    f.worktrees.checkoutTask('tester', 'TASK-001', '--upload-pack=x'),
    (e: unknown) => isPipelineError(e) && e.code === 'invalid-config',
  );
  await assert.rejects(f.worktrees.checkoutTask('tester', 'TASK-001', 'no-such-target'), /does not exist/);
});

void test('a non-empty directory in the way is not taken over', async () => {
  await write(f.worktrees.pathOf('squatter'), 'notes.txt', 'mine');
  await assert.rejects(f.worktrees.ensureWorktree('squatter'), /exists and is not a worktree/);
  assert.equal(await readFile(join(f.worktrees.pathOf('squatter'), 'notes.txt'), 'utf8'), 'mine');
});

void test('checkoutTask: a branch per task from the target; the worktree switches to it', async () => {
  const co = await f.worktrees.checkoutTask('architect', 'TASK-001', 'main');
  assert.equal(co.branch, 'pipeline/TASK-001');
  assert.equal(co.createdBranch, true);
  assert.equal(co.update, 'up-to-date');
  assert.equal(await git(co.path, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-001');
  assert.equal(await git(f.dir, 'rev-parse', 'pipeline/TASK-001'), await git(f.dir, 'rev-parse', 'main'));
  // The user's checkout is untouched.
  assert.equal(await git(f.dir, 'symbolic-ref', '--short', 'HEAD'), 'main');
});

void test('handing a task on: the next agent takes the branch over, brought up to date with the target', async () => {
  const architect = f.worktrees.pathOf('architect');
  const designed = await commitFiles(architect, { 'design.md': 'design\n' }, 'Design');
  const mainMoved = await commitFiles(f.dir, { 'b.txt': 'b1\nb2\n' }, 'Work on main');

  const co = await f.worktrees.checkoutTask('tester', 'TASK-001', 'main');
  assert.equal(co.createdBranch, false);
  assert.equal(co.update, 'merged');
  assert.deepEqual(co.releasedFrom, ['architect']);
  assert.equal(await git(co.path, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-001');
  const parents = (await git(co.path, 'rev-list', '--parents', '-n', '1', 'HEAD')).split(' ');
  assert.equal(parents.length, 3, 'a merge commit');
  assert.equal(parents[2], mainMoved);
  assert.equal(await readFile(join(co.path, 'design.md'), 'utf8'), 'design\n');
  assert.equal(await readFile(join(co.path, 'b.txt'), 'utf8'), 'b1\nb2\n');
  assert.equal(await git(co.path, 'status', '--porcelain'), '');
  // The architect's worktree was detached at its own last commit, not changed.
  assert.equal(await gitCode(architect, 'symbolic-ref', '-q', 'HEAD'), 1);
  assert.equal(await git(architect, 'rev-parse', 'HEAD'), designed);
  assert.equal(await git(architect, 'status', '--porcelain'), '');
  assert.equal(await git(architect, 'fsck', '--no-dangling', '--no-progress'), '');

  // A branch with no work of its own is fast-forwarded.
  await f.worktrees.checkoutTask('worker-0', 'TASK-002', 'main');
  await commitFiles(f.dir, { 'c.txt': 'c\n' }, 'More on main');
  await f.worktrees.detach('worker-0');
  const ff = await f.worktrees.checkoutTask('worker-0', 'TASK-002', 'main');
  assert.equal(ff.update, 'fast-forward');
  assert.equal(ff.head, await git(f.dir, 'rev-parse', 'main'));
});

void test('a conflict with the target is reported with its files and changes nothing', async () => {
  await f.worktrees.checkoutTask('worker-1', 'TASK-003', 'main');
  const wt = f.worktrees.pathOf('worker-1');
  const branchHead = await commitFiles(wt, { 'a.txt': 'a1\nTASK\na3\n' }, 'Task edits a2');
  await commitFiles(f.dir, { 'a.txt': 'a1\nMAIN\na3\n' }, 'Main edits a2');

  await assert.rejects(f.worktrees.checkoutTask('worker-1', 'TASK-003', 'main'), (e: unknown) => {
    assert.ok(e instanceof MergeConflictError, String(e));
    assert.deepEqual(e.files, ['a.txt']);
    assert.ok(e.details.fix);
    return true;
  });
  assert.equal(await git(f.dir, 'rev-parse', 'pipeline/TASK-003'), branchHead);
  assert.equal(await git(wt, 'status', '--porcelain'), '');
  assert.equal(await gitCode(wt, 'rev-parse', '-q', '--verify', 'MERGE_HEAD'), 1);
  assert.equal(await readFile(join(wt, 'a.txt'), 'utf8'), 'a1\nTASK\na3\n');
});

void test('a dirty worktree is neither switched nor removed; commitAll makes it clean', async () => {
  await f.worktrees.checkoutTask('worker-2', 'TASK-004', 'main');
  const wt = f.worktrees.pathOf('worker-2');
  await writeFile(join(wt, 'new.txt'), 'unsaved work\n');
  await writeFile(join(wt, 'b.txt'), 'edited\n');

  await assert.rejects(f.worktrees.checkoutTask('worker-2', 'TASK-005', 'main'), (e: unknown) => {
    assert.ok(e instanceof DirtyWorktreeError);
    assert.deepEqual([...e.files].sort(), ['b.txt', 'new.txt']);
    assert.match(e.message, /uncommitted changes/);
    return true;
  });
  await assert.rejects(f.worktrees.removeWorktree('worker-2'), DirtyWorktreeError);
  assert.equal(await readFile(join(wt, 'new.txt'), 'utf8'), 'unsaved work\n');
  assert.equal(await git(wt, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-004');
  assert.deepEqual((await f.worktrees.uncommitted('worker-2')).sort(), ['b.txt', 'new.txt']);

  const sha = await f.worktrees.commitAll('worker-2', 'Work left by worker-2');
  assert.equal(sha, await git(f.dir, 'rev-parse', 'pipeline/TASK-004'));
  assert.deepEqual(await f.worktrees.uncommitted('worker-2'), []);
  const co = await f.worktrees.checkoutTask('worker-2', 'TASK-005', 'main');
  assert.equal(co.branch, 'pipeline/TASK-005');

  await f.worktrees.removeWorktree('worker-2');
  await assert.rejects(access(wt));
  // Its work is still on its branch.
  assert.equal(await git(f.dir, 'show', 'pipeline/TASK-004:new.txt'), 'unsaved work');
});

void test('the task directory is never committed, through info/exclude rather than .gitignore', async () => {
  await f.worktrees.checkoutTask('worker-3', 'TASK-006', 'main');
  const wt = f.worktrees.pathOf('worker-3');
  await mkdir(join(wt, TASK_DIR), { recursive: true });
  await writeFile(join(wt, TASK_DIR, 'task.md'), '# task\n## Status: COMPLETED ✅\n');
  assert.deepEqual(await f.worktrees.uncommitted('worker-3'), [], 'the task directory does not make a worktree dirty');
  assert.equal(await f.worktrees.commitAll('worker-3', 'nothing'), undefined);

  await writeFile(join(wt, 'src.txt'), 'code\n');
  // A title that merely mentions a dangerous option must not break the commit.
  const sha = await f.worktrees.commitAll('worker-3', 'TASK-006: drop --upload-pack and -c core.sshCommand=x');
  assert.ok(sha);
  assert.equal(await git(wt, 'show', '--name-only', '--format=', sha), 'src.txt');
  assert.equal(await git(wt, 'log', '-1', '--format=%s'), 'TASK-006: drop --upload-pack and -c core.sshCommand=x');
  await assert.rejects(access(join(f.dir, '.gitignore')));
  const exclude = await readFile(join(f.repo.commonDir, 'info', 'exclude'), 'utf8');
  assert.equal(exclude.split('\n').filter((l) => l === `/${TASK_DIR}/`).length, 1);
  // The worktree can be switched and removed with its task files in place.
  await f.worktrees.detach('worker-3');
  await f.worktrees.removeWorktree('worker-3');
});

void test('removeWorktree refuses when the commit would be lost; commitAll refuses off a branch', async () => {
  const wt = (await f.worktrees.ensureWorktree('worker-4')).path;
  await commitFiles(wt, { 'orphan.txt': 'x\n' }, 'Detached work');
  await assert.rejects(f.worktrees.removeWorktree('worker-4'), /on no branch and would be lost/);
  await writeFile(join(wt, 'more.txt'), 'y\n');
  await assert.rejects(f.worktrees.commitAll('worker-4', 'x'), /on no branch/);
  await git(wt, 'switch', '--quiet', '-c', 'keep-orphan');
  await git(wt, 'add', '--all');
  await git(wt, 'commit', '--quiet', '-m', 'more');
  await f.worktrees.removeWorktree('worker-4');
  await f.worktrees.removeWorktree('never-created');
});

void test("a task branch checked out in the user's own worktree is not taken over", async () => {
  await git(f.dir, 'branch', 'pipeline/TASK-007', 'main');
  const userWt = join(f.base, 'user-wt');
  await git(f.dir, 'worktree', 'add', '--quiet', userWt, 'pipeline/TASK-007');
  await assert.rejects(f.worktrees.checkoutTask('worker-5', 'TASK-007', 'main'), /not an agent worktree/);
  await git(f.dir, 'worktree', 'remove', userWt);
});

void test('the previous holder is detached by git itself when its branch is packed or its HEAD.lock is held', async () => {
  // Packed: the branch's tip is not in a loose ref file, so git detaches it.
  await f.worktrees.checkoutTask('packed-1', 'TASK-010', 'main');
  const tip = await commitFiles(f.worktrees.pathOf('packed-1'), { 'p.txt': 'p\n' }, 'Packed work');
  await git(f.dir, 'pack-refs', '--all');
  const handed = await f.worktrees.checkoutTask('packed-2', 'TASK-010', 'main');
  assert.deepEqual(handed.releasedFrom, ['packed-1']);
  assert.equal(await gitCode(f.worktrees.pathOf('packed-1'), 'symbolic-ref', '-q', 'HEAD'), 1);
  assert.equal(await git(f.worktrees.pathOf('packed-1'), 'rev-parse', 'HEAD'), tip);
  assert.equal(await git(f.worktrees.pathOf('packed-1'), 'status', '--porcelain'), '');

  // HEAD.lock held by another process: the hand-over waits for it (git's retries), then detaches.
  await f.worktrees.checkoutTask('locked-1', 'TASK-011', 'main');
  const lockedTip = await commitFiles(f.worktrees.pathOf('locked-1'), { 'l.txt': 'l\n' }, 'Locked work');
  const gitDir = await git(f.worktrees.pathOf('locked-1'), 'rev-parse', '--absolute-git-dir');
  await writeFile(join(gitDir, 'HEAD.lock'), 'held\n');
  const handing = f.worktrees.checkoutTask('locked-2', 'TASK-011', 'main');
  // Awaited below; a rejection meanwhile must not count as unhandled.
  handing.catch(() => undefined);
  // Only once the lock is gone can the hand-over finish; until then the holder stays on its branch.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(await git(f.worktrees.pathOf('locked-1'), 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-011');
  await rm(join(gitDir, 'HEAD.lock'));
  const done = await handing;
  assert.deepEqual(done.releasedFrom, ['locked-1']);
  assert.equal(await git(f.worktrees.pathOf('locked-1'), 'rev-parse', 'HEAD'), lockedTip);
  assert.equal(await git(f.worktrees.pathOf('locked-2'), 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-011');
});
