import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { observeGit } from '../../../src/engine/git/gitMetrics';
import { GitWorkspace } from '../../../src/engine/git/gitWorkspace';
import { commitFiles, fixturePerFile, git } from './gitFixture';

let ws: GitWorkspace;
const f = fixturePerFile(undefined, async (fx) => {
  ws = await GitWorkspace.open(fx.dir, '../.pipeline-worktrees');
});

void test("the monitor's port: prepare, commitAll, priorWork, merge", async () => {
  assert.equal(ws.worktreePath('architect'), join(f.base, '.pipeline-worktrees', 'architect'));
  const prepared = await ws.prepare('architect', 'TASK-001', 'main');
  assert.deepEqual(prepared, { worktree: ws.worktreePath('architect'), conflicts: [] });
  await commitFiles(prepared.worktree, { 'design.md': 'd\n' }, 'TASK-001 design');
  assert.equal(await ws.commitAll('architect', 'nothing left'), false);

  const prior = await ws.priorWork('TASK-001', 'main');
  assert.deepEqual(prior.files, ['design.md']);
  assert.match(prior.commits[0] ?? '', /^[0-9a-f]{10} TASK-001 design$/);

  const merged = await ws.merge('TASK-001', 'main', 'Merge pipeline/TASK-001: TASK-001 design');
  assert.ok(merged.merged);
  assert.equal(merged.commit, await git(f.dir, 'rev-parse', 'main'));
});

void test('conflicts are outcomes: prepare leaves the agent on its unmerged branch, merge changes nothing', async () => {
  const p = await ws.prepare('implementer', 'TASK-002', 'main');
  await commitFiles(p.worktree, { 'a.txt': 'task\n' }, 'task edits a');
  await commitFiles(f.dir, { 'a.txt': 'main\n' }, 'main edits a');
  const mainBefore = await git(f.dir, 'rev-parse', 'main');

  assert.deepEqual(await ws.merge('TASK-002', 'main', 'Merge'), { merged: false, conflicts: ['a.txt'] });
  assert.equal(await git(f.dir, 'rev-parse', 'main'), mainBefore);

  const again = await ws.prepare('tester', 'TASK-002', 'main');
  assert.deepEqual(again.conflicts, ['a.txt']);
  assert.equal(await git(again.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-002');
  assert.equal(await readFile(join(again.worktree, 'a.txt'), 'utf8'), 'task\n');
  assert.equal(await git(again.worktree, 'status', '--porcelain'), '');
});

void test('repair reports in one line per finding', async () => {
  assert.deepEqual(await ws.repair(['architect', 'implementer', 'tester']), []);
  await rm(ws.worktreePath('tester'), { recursive: true, force: true });
  const lines = await ws.repair(['architect', 'implementer', 'tester', 'supervisor']);
  assert.deepEqual(lines, [
    `re-created the missing worktree of tester at ${ws.worktreePath('tester')} (pipeline/TASK-002)`,
    'created the worktree of supervisor',
  ]);
});

void test('priorWork right after prepare was read during the switch; after the branch moved, it is read again', async () => {
  const commands: string[] = [];
  const stop = observeGit((e) => {
    if (e.type === 'command') commands.push(e.command);
  });
  try {
    const p = await ws.prepare('reviewer', 'TASK-003', 'main');
    await commitFiles(p.worktree, { 'review.md': 'r\n' }, 'TASK-003 review notes');
    const handed = await ws.prepare('architect', 'TASK-003', 'main');
    assert.equal(handed.worktree, ws.worktreePath('architect'));
    // The read started during the switch may still be running its git commands on a busy machine:
    // let it finish, so what follows counts only the commands priorWork itself runs.
    const prefetched = (ws as unknown as { prefetched: Map<string, { work: Promise<unknown> }> }).prefetched;
    await prefetched.get('TASK-003\u0000main')?.work;
    commands.length = 0;
    const prior = await ws.priorWork('TASK-003', 'main');
    assert.deepEqual(prior.files, ['review.md']);
    assert.deepEqual(commands, [], 'no git command: it was read during prepare');
    // Asked again (nothing prefetched now): read from git, the same answer.
    assert.deepEqual(await ws.priorWork('TASK-003', 'main'), prior);
    assert.ok(commands.length > 0);

    // The branch moves between prepare and priorWork: what was read during prepare is not used.
    await ws.prepare('reviewer', 'TASK-003', 'main');
    await commitFiles(ws.worktreePath('reviewer'), { 'more.md': 'm\n' }, 'TASK-003 more');
    assert.deepEqual((await ws.priorWork('TASK-003', 'main')).files.sort(), ['more.md', 'review.md']);
  } finally {
    stop();
  }
});
