import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assignedStages, diligent, entries, story, withRig } from './policyKit';
import type { ScriptedAgent } from '../../../support/twins/memoryRunner';

/**
 * A person (or the monitor itself) takes running work away from an agent: blocking or cancelling
 * the task, stopping or restarting the agent, stopping the monitor. The agent's command is stopped
 * every time, and only a person's block or cancel is more than a requeue: no failure is counted.
 */

/** An implementer that works until stopped on its first run, and is diligent after. */
function holdsFirst(): ScriptedAgent {
  let runs = 0;
  return async (req, io) => {
    if (++runs === 1) await io.hold();
    await diligent(req, io);
  };
}

const TWO = [
  { id: 'TASK-001', title: 'Stopped', paths: ['a/**'] },
  { id: 'TASK-002', title: 'Goes on', paths: ['b/**'] },
];

for (const action of ['block', 'cancel'] as const) {
  void test(`a person who ${action}s a working task stops its agent; the monitor goes on with the rest`, async () => {
    await withRig({ tasks: TWO, programs: { implementer: holdsFirst() } }, async (rig) => {
      await rig.start();
      const started = await rig.next('agent:started', (e) => e.agentId === 'implementer');
      const other = started.taskId === 'TASK-001' ? 'TASK-002' : 'TASK-001';
      if (action === 'block') await rig.pipeline.blockTask(started.taskId, 'stopped by hand');
      else await rig.pipeline.cancelTask(started.taskId, 'not wanted');
      const idle = await rig.run();
      const t = rig.task(started.taskId);
      if (action === 'block') {
        assert.deepEqual([t.status, t.blocked_reason], ['blocked', 'stopped by hand']);
        assert.deepEqual(idle.blocked, [t.id]);
      } else assert.equal(t.status, 'cancelled');
      assert.equal(t.history.at(-1)!.event, action, `nothing was applied after the ${action}: ${story(t)}`);
      const [run] = rig.runner.runsOf('implementer', t.id);
      assert.ok(run!.stopped, "the agent's command was stopped");
      assert.equal(run!.status, 'killed');
      assert.equal(rig.task(other).status, 'done', 'the other task went on');
      assert.equal(rig.pipeline.state.agents.implementer!.status, 'idle');
    });
  });
}

void test('stopping an agent requeues its task without a failure; starting it again finishes the task', async () => {
  await withRig({ tasks: [TWO[0]!], programs: { implementer: holdsFirst() } }, async (rig) => {
    await rig.start();
    await rig.whenStarted('implementer', 'TASK-001');
    await rig.monitor.interruptAgent('implementer', true);
    let t = rig.task('TASK-001');
    assert.deepEqual([t.status, t.stage, t.failures, t.assigned_to], ['queued', 'implementation', 0, null]);
    assert.match(entries(t, 'requeue')[0]!.note!, /implementer was stopped by a person/);
    assert.equal(rig.pipeline.state.agents.implementer!.status, 'offline');
    assert.ok(rig.runner.runsOf('implementer')[0]!.stopped);
    // Nobody else can take it: the pipeline waits for the agent.
    assert.deepEqual(await rig.run(), { done: 0, blocked: [], waiting: ['TASK-001'] });
    await rig.monitor.interruptAgent('implementer', false);
    assert.deepEqual(await rig.run(), { done: 1, blocked: [], waiting: [] });
    t = rig.task('TASK-001');
    assert.equal(entries(t, 'fail').length, 0);
    assert.deepEqual(assignedStages(t), ['architect', 'test', 'implementation', 'implementation', 'supervisor']);
  });
});

void test('restarting a working agent requeues its task without a failure, and it takes it again', async () => {
  await withRig({ tasks: [TWO[0]!], programs: { implementer: holdsFirst() } }, async (rig) => {
    await rig.start();
    await rig.whenStarted('implementer', 'TASK-001');
    await rig.monitor.interruptAgent('implementer', false);
    assert.deepEqual(await rig.run(), { done: 1, blocked: [], waiting: [] });
    const t = rig.task('TASK-001');
    assert.match(entries(t, 'requeue')[0]!.note!, /implementer was restarted by a person/);
    assert.equal(entries(t, 'fail').length, 0);
    assert.equal(rig.runner.runsOf('implementer').length, 2);
    assert.ok(rig.runner.runsOf('implementer')[0]!.stopped);
  });
});

void test('stopping the monitor stops its agents and requeues their work without a failure', async () => {
  await withRig({ tasks: [TWO[0]!], programs: { implementer: holdsFirst() } }, async (rig) => {
    await rig.start();
    await rig.whenStarted('implementer', 'TASK-001');
    await rig.monitor.stop();
    const t = rig.task('TASK-001');
    assert.deepEqual([t.status, t.stage, t.failures], ['queued', 'implementation', 0]);
    assert.equal(entries(t, 'requeue')[0]!.note, 'the monitor stopped');
    assert.equal(rig.pipeline.state.agents.implementer!.status, 'idle');
    const [run] = rig.runner.runsOf('implementer');
    assert.deepEqual([run!.stopped, run!.status], [true, 'killed']);
  });
});
