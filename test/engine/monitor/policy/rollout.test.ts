import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskSpec } from '../../../../src/engine/model/schema';
import { withRig } from './policyKit';

/**
 * Rollout modes: shadow decides and records but starts nothing and asks nothing of git; pilot runs
 * only the tasks labelled `pilot` and merges them into `pipeline/pilot`.
 */

const TASKS: TaskSpec[] = [
  { id: 'TASK-001', title: 'Pilot one', labels: ['pilot'], paths: ['a/**'] },
  { id: 'TASK-002', title: 'Pilot two', labels: ['pilot'], paths: ['b/**'], prerequisites: ['TASK-001'] },
  { id: 'TASK-003', title: 'Not in the pilot', paths: ['c/**'] },
];

void test('shadow mode records what it would start, starts nothing and changes nothing in the workspace', async () => {
  await withRig({ tasks: TASKS, rollout: 'shadow' }, async (rig) => {
    const refs = rig.workspace.refs();
    const idle = await rig.run();
    assert.equal(idle.done, 0);
    const decisions = rig.pipeline.state.decisions.map((d) => d.text);
    assert.deepEqual(decisions, ['would start architect (architect) on TASK-001']);
    assert.ok(rig.of('pipeline:decision').every((d) => d.shadow));
    for (const t of Object.values(rig.pipeline.state.tasks)) {
      assert.equal(t.attempt, 0, `${t.id} was never assigned`);
      assert.equal(t.assigned_to, null);
    }
    for (const a of Object.values(rig.pipeline.state.agents)) assert.equal(a.status, 'idle');
    assert.deepEqual(rig.runner.runs, [], 'no agent started');
    assert.deepEqual(rig.checks.runs, []);
    assert.deepEqual(rig.workspace.calls, ['repair '], 'git was asked only to repair, creating no worktree');
    assert.deepEqual(rig.workspace.worktrees(), []);
    assert.deepEqual(rig.workspace.refs(), refs);
  });
});

void test('pilot mode runs only the pilot tasks and merges them into pipeline/pilot, not main', async () => {
  await withRig({ tasks: TASKS, rollout: 'pilot' }, async (rig) => {
    const main = rig.workspace.head('main')!;
    const idle = await rig.run();
    assert.deepEqual(idle.blocked, []);
    for (const id of ['TASK-001', 'TASK-002']) {
      const t = rig.task(id);
      assert.equal(t.status, 'done');
      assert.ok(rig.workspace.contains('pipeline/pilot', t.merged_commit!), `${id} is on pipeline/pilot`);
      assert.ok(!rig.workspace.contains('main', t.merged_commit!), `${id} is not on main`);
    }
    assert.ok(rig.of('merge:finished').every((m) => m.into === 'pipeline/pilot'));
    assert.equal(rig.workspace.head('main'), main, 'main did not move');
    assert.ok(rig.workspace.contains('pipeline/pilot', main), 'pipeline/pilot starts from main');
    const other = rig.task('TASK-003');
    assert.equal(other.attempt, 0, 'the unlabelled task never ran');
    assert.equal(rig.workspace.head('pipeline/TASK-003'), undefined, 'nor got a branch');
    assert.ok(!rig.runner.runs.some((r) => r.req.taskId === 'TASK-003'));
  });
});
