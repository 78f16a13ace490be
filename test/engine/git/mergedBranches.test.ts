import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeAgentWorktree } from '../../../src/engine/git/agentWorktreeRemoval';
import { mergeTask } from '../../../src/engine/git/merge';
import { deleteMergedBranch } from '../../../src/engine/git/mergedBranches';
import { commitFiles, fixturePerFile, git, gitCode, write } from './gitFixture';

/**
 * Housekeeping in git: a merged task branch is deleted (never one with commits its target lacks, nor
 * one a person has checked out), and a removed agent's worktree goes when nothing in it would be lost.
 */

const f = fixturePerFile();
const isAgent = async (p: string) => Boolean(await f.worktrees.agentOf(p));

async function branchExists(name: string): Promise<boolean> {
  return (await gitCode(f.dir, 'rev-parse', '--verify', '--quiet', `refs/heads/${name}`)) === 0;
}

void test('a merged branch checked out in the reviewer worktree: detached there (files kept), then deleted', async () => {
  const co = await f.worktrees.checkoutTask('supervisor', 'TASK-001', 'main');
  await commitFiles(co.path, { 'one.txt': 'one\n' }, 'TASK-001 work');
  const tip = await git(f.dir, 'rev-parse', 'pipeline/TASK-001');

  const early = await deleteMergedBranch(f.repo, 'pipeline/TASK-001', 'main', isAgent);
  assert.deepEqual(early.deleted ? 'deleted' : early.reason, 'unmerged');
  assert.match(early.deleted ? '' : early.detail, /has commits that main lacks/);
  assert.equal(await git(f.dir, 'rev-parse', 'pipeline/TASK-001'), tip, 'kept as it was');
  assert.equal(await git(co.path, 'branch', '--show-current'), 'pipeline/TASK-001');

  await mergeTask(f.repo, 'pipeline/TASK-001', 'main', 'Merge pipeline/TASK-001: one', { fastForward: false });
  const r = await deleteMergedBranch(f.repo, 'pipeline/TASK-001', 'main', isAgent);
  assert.equal(r.deleted, true);
  assert.equal(r.deleted && r.sha, tip);
  assert.equal(r.deleted && r.detached.length, 1);
  assert.equal(await branchExists('pipeline/TASK-001'), false);
  assert.equal(await git(co.path, 'branch', '--show-current'), '', 'the worktree is detached');
  assert.equal(await git(co.path, 'rev-parse', 'HEAD'), tip, 'at the same commit');
  assert.equal(await readFile(join(co.path, 'one.txt'), 'utf8'), 'one\n');

  const again = await deleteMergedBranch(f.repo, 'pipeline/TASK-001', 'main', isAgent);
  assert.equal(again.deleted ? 'deleted' : again.reason, 'missing');
});

void test('a merged branch a person has checked out, or one with a commit added after its merge, is kept', async () => {
  await git(f.dir, 'branch', 'pipeline/TASK-002', 'main');
  const side = join(f.base, 'person');
  await git(f.dir, 'worktree', 'add', '--quiet', side, 'pipeline/TASK-002');
  const held = await deleteMergedBranch(f.repo, 'pipeline/TASK-002', 'main', isAgent);
  assert.equal(held.deleted ? 'deleted' : held.reason, 'checked-out');
  assert.match(held.deleted ? '' : held.detail, /checked out in .*person/);
  assert.equal(await branchExists('pipeline/TASK-002'), true);
  assert.equal(await git(side, 'branch', '--show-current'), 'pipeline/TASK-002', 'their checkout is left alone');
  await git(f.dir, 'worktree', 'remove', side);

  await git(f.dir, 'branch', 'pipeline/TASK-003', 'main');
  await mergeTask(f.repo, 'pipeline/TASK-003', 'main', 'Merge pipeline/TASK-003');
  const co = await f.worktrees.checkoutTask('implementer', 'TASK-003', 'main');
  await commitFiles(co.path, { 'late.txt': 'after the merge\n' }, 'a commit after the merge');
  const late = await deleteMergedBranch(f.repo, 'pipeline/TASK-003', 'main', isAgent);
  assert.equal(late.deleted ? 'deleted' : late.reason, 'unmerged');
  assert.equal(await branchExists('pipeline/TASK-003'), true);
});

void test('a removed agent: its clean worktree goes; a dirty one stays, with the reason; none at all is fine', async () => {
  await f.worktrees.ensureWorktree('gone-clean');
  const clean = await removeAgentWorktree(f.worktrees, 'gone-clean');
  assert.equal(clean.outcome, 'removed');
  assert.equal(
    (await f.worktrees.list()).some((w) => w.agentId === 'gone-clean'),
    false,
  );

  const dirty = await f.worktrees.ensureWorktree('gone-dirty');
  await write(dirty.path, 'notes.txt', 'unsaved\n');
  const kept = await removeAgentWorktree(f.worktrees, 'gone-dirty');
  assert.equal(kept.outcome, 'kept');
  assert.match(kept.outcome === 'kept' ? kept.reason : '', /uncommitted changes \(notes\.txt\)/);
  assert.equal(await readFile(join(dirty.path, 'notes.txt'), 'utf8'), 'unsaved\n');

  assert.equal((await removeAgentWorktree(f.worktrees, 'never-had-one')).outcome, 'absent');
});

void test("deleting a merged branch locks its branch and its holders' worktrees, not the repository", async () => {
  // TASK-004 merged, checked out in the reviewer's worktree; another agent is busy in its own.
  const co = await f.worktrees.checkoutTask('reviewer', 'TASK-004', 'main');
  await commitFiles(co.path, { 'four.txt': 'four\n' }, 'TASK-004 work');
  await mergeTask(f.repo, 'pipeline/TASK-004', 'main', 'Merge pipeline/TASK-004');
  const other = await f.worktrees.ensureWorktree('implementer-2');

  // Another agent's hand-off holds its worktree and its task branch: the deletion goes on meanwhile.
  let releaseOther!: () => void;
  const otherHeld = new Promise<void>((r) => (releaseOther = r));
  let otherLocked = false;
  const otherOperation = f.repo.locked({ branches: ['pipeline/TASK-005'], worktrees: [other.path] }, async () => {
    otherLocked = true;
    await otherHeld;
  });
  while (!otherLocked) await new Promise((r) => setImmediate(r));
  const r = await deleteMergedBranch(f.repo, 'pipeline/TASK-004', 'main', isAgent);
  assert.equal(r.deleted, true, 'deleted while another operation held its own locks');
  releaseOther();
  await otherOperation;

  // An operation on the holder's worktree is waited for: the deletion detaches it only after.
  const again = await f.worktrees.checkoutTask('reviewer', 'TASK-006', 'main');
  await commitFiles(again.path, { 'six.txt': 'six\n' }, 'TASK-006 work');
  await mergeTask(f.repo, 'pipeline/TASK-006', 'main', 'Merge pipeline/TASK-006');
  let releaseHolder!: () => void;
  const holderHeld = new Promise<void>((r) => (releaseHolder = r));
  let holderLocked = false;
  const holderOperation = f.repo.locked({ worktrees: [again.path] }, async () => {
    holderLocked = true;
    await holderHeld;
  });
  while (!holderLocked) await new Promise((r) => setImmediate(r));
  let settled = false;
  const deletion = deleteMergedBranch(f.repo, 'pipeline/TASK-006', 'main', isAgent).finally(() => (settled = true));
  // The deletion has asked for the holder's lock once the worktree lock has a waiter queued; until
  // it is released, the branch stays where it is and the worktree on it.
  for (let i = 0; i < 50 && !settled; i++) await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'waits for the operation on the worktree that holds the branch');
  assert.equal(await git(again.path, 'branch', '--show-current'), 'pipeline/TASK-006');
  assert.equal(await branchExists('pipeline/TASK-006'), true);
  releaseHolder();
  await holderOperation;
  const done = await deletion;
  assert.equal(done.deleted, true);
  assert.equal(await git(again.path, 'branch', '--show-current'), '', 'detached after the wait');
  assert.equal(await branchExists('pipeline/TASK-006'), false);
});
