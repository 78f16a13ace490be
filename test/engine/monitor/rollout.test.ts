import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TaskSpec } from '../../../src/engine/model/schema';
import {
  assertAllMerged,
  assertGitHealthy,
  cli,
  git,
  isAncestorOf,
  readState,
  refsSnapshot,
  requireBuild,
  runUntilIdle,
  sandbox,
  until,
} from './monitorKit';
import { isPipelineError } from '../../../src/engine/errors';

/**
 * Rollout modes on a real repository: shadow decides and records but starts nothing and changes no
 * git state; pilot runs only the tasks labelled `pilot` and merges them into `pipeline/pilot`.
 */

requireBuild();

const TASKS: TaskSpec[] = [
  { id: 'TASK-001', title: 'Pilot one', labels: ['pilot'], paths: ['a/**'] },
  { id: 'TASK-002', title: 'Pilot two', labels: ['pilot'], paths: ['b/**'], prerequisites: ['TASK-001'] },
  { id: 'TASK-003', title: 'Not in the pilot', paths: ['c/**'] },
];

/** Every file under `dir`, relative, or [] when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  return out;
}

void test('shadow mode (pipeline mode rollout shadow): decisions recorded, no agent started, no git change', async () => {
  const sb = await sandbox({ tasks: TASKS });
  try {
    const switched = await cli(sb.dir, ['mode', 'rollout', 'shadow']);
    assert.equal(switched.code, 0, switched.output);
    const refsBefore = await refsSnapshot(sb.dir);
    const worktreesBefore = await git(sb.dir, 'worktree', 'list', '--porcelain');
    const statusBefore = await git(sb.dir, 'status', '--porcelain', '--untracked-files=no');

    const run = await cli(sb.dir, ['run', '--until-idle']);
    assert.match(run.output, /shadow: would start architect \(architect\) on TASK-00[13]/);

    const state = await readState(sb.dir);
    assert.equal(state.mode, 'shadow');
    assert.ok(state.decisions.length > 0, 'decisions recorded');
    assert.ok(
      state.decisions.some((d) => /^would start architect \(architect\) on TASK-00[13]$/.test(d.text)),
      state.decisions.map((d) => d.text).join('\n'),
    );
    for (const t of Object.values(state.tasks)) {
      assert.equal(t.attempt, 0, `${t.id} was never assigned`);
      assert.ok(!t.history.some((h) => h.event === 'assign'));
      assert.equal(t.assigned_to, null);
    }
    for (const a of Object.values(state.agents)) assert.equal(a.status, 'idle');

    // No agent process: no agent log, no pid file, no task file anywhere.
    assert.deepEqual(await filesUnder(join(sb.dir, '.pipeline', 'logs', 'agents')), []);
    assert.deepEqual(await filesUnder(join(sb.dir, '.pipeline', 'run')), []);
    assert.deepEqual(
      (await filesUnder(sb.worktreeRoot)).filter((f) => f.includes('.pipeline-task')),
      [],
    );
    // No git change: refs, HEAD, worktrees and the index as they were.
    assert.equal(await refsSnapshot(sb.dir), refsBefore);
    assert.equal(await git(sb.dir, 'worktree', 'list', '--porcelain'), worktreesBefore, 'no worktree created');
    assert.equal(await git(sb.dir, 'status', '--porcelain', '--untracked-files=no'), statusBefore);
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('pilot mode: only tasks labelled pilot run, and they merge into pipeline/pilot, not main', async () => {
  const sb = await sandbox({ tasks: TASKS, rollout: 'pilot' });
  try {
    const mainBefore = await git(sb.dir, 'rev-parse', 'main');
    const r = await runUntilIdle(sb.dir);
    assert.deepEqual(r.idle.blocked, []);
    const pilotTasks = { 'TASK-001': r.state.tasks['TASK-001']!, 'TASK-002': r.state.tasks['TASK-002']! };
    await assertAllMerged(sb.dir, { ...r.state, tasks: pilotTasks }, 'pipeline/pilot');
    for (const t of Object.values(pilotTasks))
      assert.ok(!(await isAncestorOf(sb.dir, t.merged_commit!, 'main')), `${t.id} is not on main`);
    assert.ok(
      r.merges.every((m) => m.into === 'pipeline/pilot'),
      'every merge went into pipeline/pilot',
    );
    assert.equal(await git(sb.dir, 'rev-parse', 'main'), mainBefore, 'main did not move');
    assert.ok(await isAncestorOf(sb.dir, 'main', 'pipeline/pilot'), 'pipeline/pilot starts from main');

    const other = r.state.tasks['TASK-003']!;
    assert.equal(other.attempt, 0, 'the unlabelled task never ran');
    assert.ok(other.status === 'pending' || other.status === 'queued', other.status);
    assert.ok(!r.started.some((s) => s.taskId === 'TASK-003'));
    assert.ok(!(await git(sb.dir, 'branch', '--list', 'pipeline/TASK-003')), 'no branch for it either');
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('a switch to shadow while an agent works is refused naming it; forced, the work is requeued, and nothing merges under shadow', async () => {
  const sb = await sandbox({
    agents: [['architect', 'architect']],
    tasks: [{ id: 'TASK-001', title: 'Busy', description: 'scripted: hang architect' }],
  });
  try {
    const main = await git(sb.dir, 'rev-parse', 'main');
    const r = await runUntilIdle(sb.dir, {
      during: async (p) => {
        await until('the architect to start', 20_000, () => p.state.agents.architect?.status === 'working');
        await assert.rejects(
          p.setRolloutMode('shadow'),
          (e: unknown) => isPipelineError(e) && e.code === 'busy' && /architect \(TASK-001\)/.test(e.message),
        );
        assert.equal(p.state.mode, 'production', 'the refused switch changed nothing');
        const forced = await p.setRolloutMode('shadow', { force: true });
        assert.deepEqual(forced.requeued, ['TASK-001']);
      },
    });
    assert.equal(r.state.mode, 'shadow');
    assert.equal(r.state.tasks['TASK-001']!.status, 'queued');
    assert.equal(r.state.agents.architect!.status, 'idle');
    assert.equal(r.merges.length, 0);
    assert.equal(await git(sb.dir, 'rev-parse', 'main'), main, 'main did not move');
  } finally {
    await sb.cleanup();
  }
});
