import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_STAGES } from '../../../../src/engine/model/configSchema';
import { assignedStages, committing, diligent, entries, story, withRig } from './policyKit';
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

void test('a task blocked by hand while its completion is being applied (the check runs) stays blocked; the monitor goes on', async () => {
  let checkRunning!: () => void;
  const running = new Promise<void>((r) => (checkRunning = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  await withRig(
    {
      tasks: [...TWO, { id: 'TASK-003', title: 'After', paths: ['c/**'], prerequisites: ['TASK-001'] }],
      config: { stages: DEFAULT_STAGES.map((s) => (s.name === 'implementation' ? { ...s, check: 'npm test' } : s)) },
      programs: (ws) => ({ implementer: committing(ws) }),
      checks: {
        'npm test': async (req) => {
          if (req.env.PIPELINE_TASK_ID !== 'TASK-001') return 0;
          checkRunning();
          await released;
          return 0;
        },
      },
    },
    async (rig) => {
      await rig.start();
      await running;
      await rig.pipeline.blockTask('TASK-001', 'stopped by hand during the check');
      release();
      const idle = await rig.run();
      assert.deepEqual(idle, { done: 1, blocked: ['TASK-001'], waiting: ['TASK-003'] });
      const t = rig.task('TASK-001');
      assert.equal(t.blocked_reason, 'stopped by hand during the check');
      assert.equal(t.history.at(-1)!.event, 'block', `nothing was applied after the block: ${story(t)}`);
      assert.equal(rig.task('TASK-002').status, 'done', 'the monitor went on');
      assert.equal(rig.pipeline.state.agents.implementer!.status, 'idle');
    },
  );
});

void test('the agent of a task blocked by hand, its work left uncommitted, can take the next task', async () => {
  await withRig(
    {
      tasks: TWO,
      orchestration: 'sequential',
      programs: {
        implementer: async (req, io) => {
          await io.write(`src/${req.taskId}.js`, 'half done\n');
          if (req.taskId === 'TASK-001') await io.hold();
          await diligent(req, io);
        },
      },
    },
    async (rig) => {
      await rig.start();
      await rig.whenStarted('implementer', 'TASK-001');
      await rig.pipeline.blockTask('TASK-001', 'stopped by hand');
      const idle = await rig.run();
      const t = rig.task('TASK-002');
      assert.deepEqual(
        idle,
        { done: 1, blocked: ['TASK-001'], waiting: [] },
        `TASK-002: ${story(t)}: ${t.blocked_reason ?? ''}`,
      );
    },
  );
});
