import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { GitWorkspace } from '../../../src/engine/git/gitWorkspace';
import { assertRepoHealthy, fixture, git, write } from './gitFixture';

/**
 * Work an attempt left behind, with real git: commits made on a detached HEAD that no branch reaches
 * are kept under the set-aside ref (they would be lost at the next checkout), together with what was
 * left uncommitted; commitAll refuses a worktree off the task's branch, naming the fix.
 */

void test('setAside keeps commits made on a detached HEAD, and what was left on top of them; the agent can work again', async () => {
  const f = await fixture();
  try {
    const ws = new GitWorkspace(f.worktrees);
    const { worktree } = await ws.prepare('implementer', 'TASK-001', 'main');
    const branch = await git(f.dir, 'rev-parse', 'pipeline/TASK-001');
    // The agent detaches and commits there, then leaves a file uncommitted.
    await git(worktree, 'checkout', '--quiet', '--detach');
    await write(worktree, 'src/detached.js', 'committed while detached\n');
    await git(worktree, 'add', '--all');
    await git(worktree, 'commit', '--quiet', '-m', 'detached work');
    const detached = await git(worktree, 'rev-parse', 'HEAD');
    await assert.rejects(
      ws.commitAll('implementer', 'TASK-001 implementation: left', 'pipeline/TASK-001'),
      (e: Error & { code?: string; details?: { fix?: string } }) =>
        e.code === 'off-branch' &&
        /detached HEAD/.test(e.message) &&
        /switch pipeline\/TASK-001/.test(e.details?.fix ?? ''),
    );
    await write(worktree, 'notes.md', 'left uncommitted\n');

    const ref = 'refs/pipeline/set-aside/TASK-001/attempt-1';
    assert.equal(await ws.setAside('implementer', ref, 'TASK-001 implementation: left by attempt 1'), ref);
    assert.equal(await git(f.dir, 'show', `${ref}:notes.md`), 'left uncommitted');
    assert.equal(
      await git(f.dir, 'rev-parse', `${ref}^`),
      detached,
      'the detached commit is its parent, so it is kept',
    );
    assert.equal(await git(f.dir, 'rev-parse', 'pipeline/TASK-001'), branch, 'the branch did not move');
    assert.equal(await git(worktree, 'status', '--porcelain'), '', 'the worktree is clean');

    // Detached but clean: the commit alone is kept, once.
    await git(worktree, 'checkout', '--quiet', '--detach', 'pipeline/TASK-001');
    await write(worktree, 'again.js', 'x\n');
    await git(worktree, 'add', '--all');
    await git(worktree, 'commit', '--quiet', '-m', 'more detached work');
    const second = await git(worktree, 'rev-parse', 'HEAD');
    assert.equal(await ws.setAside('implementer', ref, 'again'), `${ref}-2`);
    assert.equal(await git(f.dir, 'rev-parse', `${ref}-2`), second);
    assert.equal(await ws.setAside('implementer', ref, 'nothing new'), null, 'a kept commit is not kept twice');

    // The agent takes its task again: back on the branch, without what was set aside.
    const again = await ws.prepare('implementer', 'TASK-001', 'main');
    assert.equal(await git(again.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-001');
    await assert.rejects(readFile(join(again.worktree, 'src/detached.js'), 'utf8'));
    await assertRepoHealthy(f.repo);
  } finally {
    await f.cleanup();
  }
});

void test('commitAll refuses a worktree on another branch than the task', async () => {
  const f = await fixture();
  try {
    const ws = new GitWorkspace(f.worktrees);
    const { worktree } = await ws.prepare('implementer', 'TASK-001', 'main');
    await git(worktree, 'switch', '--quiet', '-c', 'elsewhere');
    await write(worktree, 'x.txt', 'x\n');
    await assert.rejects(
      ws.commitAll('implementer', 'TASK-001 implementation: left', 'pipeline/TASK-001'),
      /it is on elsewhere, not on the task's branch pipeline\/TASK-001/,
    );
    assert.equal(
      await ws.commitAll('implementer', 'on elsewhere, as asked'),
      true,
      'without a branch to hold to, it commits',
    );
  } finally {
    await f.cleanup();
  }
});
