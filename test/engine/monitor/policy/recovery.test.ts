import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMPLETED_LINE } from '../../../../src/engine/agents/completionMarker';
import { TASK_DIR, taskFileName } from '../../../../src/engine/agents/taskFile';
import type { ScriptedAgent } from '../../../support/twins/memoryRunner';
import { diligent, entries, story, within, withRig } from './policyKit';

/**
 * After a crash the monitor gets its attempts back from the state: a marker written while it was
 * down is applied, a command that still runs is re-attached and followed to its end, and an
 * attempt whose command is gone is requeued without counting a failure.
 */

const ONE_STAGE = {
  stages: [{ name: 'implementation', role: 'implementer' }],
  reworkStage: 'implementation',
  conflictStages: ['implementation'],
};

const TASKS = ['TASK-001', 'TASK-002', 'TASK-003'].map((id, i) => ({ id, title: id, paths: [`p${i}/**`] }));

const AGENTS: Array<[string, string, string]> = [
  ['impl-a', 'implementer', 'implementer'],
  ['impl-b', 'implementer', 'implementer'],
  ['impl-c', 'implementer', 'implementer'],
];

void test('a restart applies a marker written while down, follows a command that still runs, and requeues one that vanished', async () => {
  const release = new Map<string, () => void>();
  // First attempts work until the test releases them; later ones are diligent.
  const implementer: ScriptedAgent = async (req, io) => {
    if (req.attempt === 1) await new Promise<void>((r) => release.set(req.taskId, r));
    await diligent(req, io);
  };
  await withRig({ tasks: TASKS, agents: AGENTS, config: ONE_STAGE, programs: { implementer } }, async (rig) => {
    await rig.start();
    await rig.until('three agents at work', () => release.size === 3);
    const byTask = (id: string) => rig.runner.runs.find((r) => r.req.taskId === id)!;
    await rig.restart({
      whileDown: async () => {
        // TASK-001's agent finishes (marker, exit) while no monitor runs.
        release.get('TASK-001')!();
        await within('TASK-001 finishing', 5000, byTask('TASK-001').exited);
        // TASK-002's command vanishes without a marker.
        rig.runner.host.vanish(byTask('TASK-002'));
        // TASK-003's command still runs.
      },
    });
    const first = rig.task('TASK-001');
    await rig.until('TASK-001 merged', () => rig.task('TASK-001').status === 'done');
    assert.equal(entries(rig.task('TASK-001'), 'fail').length, 0, story(first));

    await rig.until('TASK-002 requeued and done', () => rig.task('TASK-002').status === 'done');
    const second = rig.task('TASK-002');
    assert.match(
      entries(second, 'requeue')[0]!.note!,
      /the monitor restarted and attempt 1 of impl-[abc] was no longer running/,
    );
    assert.equal(entries(second, 'fail').length, 0, 'a vanished attempt is not a failure');
    assert.equal(second.attempt, 2);

    assert.equal(rig.task('TASK-003').status, 'working', 're-attached, still running');
    release.get('TASK-003')!();
    assert.deepEqual(await rig.run(), { done: 3, blocked: [], waiting: [] });
    const third = rig.task('TASK-003');
    assert.equal(third.attempt, 1, 'followed to its end, not started again');
    assert.equal(entries(third, 'fail').length, 0, story(third));
    for (const id of ['TASK-001', 'TASK-002', 'TASK-003'])
      assert.ok(rig.workspace.contains('main', rig.task(id).merged_commit!), `${id} merged on main`);
    assert.equal(rig.runner.runs.length, 4, 'one run more: the vanished one');
  });
});

void test('after a reboot (no command survived) every working attempt is requeued without a failure', async () => {
  await withRig(
    {
      tasks: TASKS.slice(0, 2),
      agents: AGENTS.slice(0, 2),
      config: ONE_STAGE,
      programs: {
        implementer: async (req, io) => {
          if (req.attempt === 1) await io.hold();
          await diligent(req, io);
        },
      },
    },
    async (rig) => {
      await rig.start();
      await rig.until('two agents at work', () => rig.runner.runs.length === 2);
      await rig.restart({ reboot: true, whileDown: () => Promise.resolve(rig.runner.host.killAll()) });
      assert.deepEqual(await rig.run(), { done: 2, blocked: [], waiting: [] });
      for (const id of ['TASK-001', 'TASK-002']) {
        const t = rig.task(id);
        assert.equal(entries(t, 'requeue').length, 1, story(t));
        assert.equal(entries(t, 'fail').length, 0);
      }
    },
  );
});

void test('a marker written while down by an agent that lingers: applied, and the lingering command is stopped', async () => {
  await withRig(
    {
      tasks: TASKS.slice(0, 1),
      agents: AGENTS.slice(0, 1),
      config: ONE_STAGE,
      programs: { implementer: (_req, io) => io.hold() },
    },
    async (rig) => {
      await rig.start();
      await rig.until('the agent at work', () => rig.runner.runs.length === 1);
      await rig.restart({
        whileDown: () =>
          appendFile(
            join(rig.workspace.worktreePath('impl-a'), TASK_DIR, taskFileName('TASK-001', 1)),
            `\n${COMPLETED_LINE}\n`,
          ),
      });
      await rig.run();
      assert.equal(rig.task('TASK-001').status, 'done');
      assert.equal(rig.runner.runs[0]!.status, 'killed', 'the lingering command was stopped');
    },
  );
});

void test('a task added while the start-up repair runs waits for the recovery: it starts once, never requeued as gone', async () => {
  await withRig({ tasks: [] }, async (rig) => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const repair = rig.workspace.repair.bind(rig.workspace);
    rig.workspace.repair = async (ids) => {
      await gate;
      return repair(ids);
    };
    const starting = rig.start();
    // A request from another process, served while the monitor is still starting.
    await rig.pipeline.addTasks([{ spec: { id: 'TASK-001', title: 'Added during the start' }, source: 'test' }]);
    open();
    await starting;
    const idle = await rig.run();
    const t = rig.task('TASK-001');
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, story(t));
    assert.equal(entries(t, 'requeue').length, 0, story(t));
    assert.deepEqual(
      entries(t, 'assign').map((h) => h.stage),
      ['architect', 'test', 'implementation', 'supervisor'],
      story(t),
    );
    assert.equal(rig.of('agent:started').length, 4, 'one start per stage');
  });
});

void test('a task left working for an agent that is not working on it is requeued at the next start', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const architect: ScriptedAgent = async (req, io) => {
    if (req.attempt === 1) await gate;
    await diligent(req, io);
  };
  await withRig({ tasks: [{ id: 'TASK-001', title: 'One' }], programs: { architect } }, async (rig) => {
    await rig.start();
    await rig.whenStarted('architect', 'TASK-001');
    // What an earlier monitor's race left in the state: the agent freed, the task still working for it.
    const b = rig.pipeline.newBatch();
    b.agentEvent('architect', { type: 'release', task: 'TASK-001' });
    await rig.pipeline.commit(b);
    assert.equal(rig.task('TASK-001').status, 'working');
    await rig.restart({ reboot: true });
    release();
    const idle = await rig.run();
    const t = rig.task('TASK-001');
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, story(t));
    const requeues = entries(t, 'requeue');
    assert.equal(requeues.length, 1, story(t));
    assert.match(
      requeues[0]!.note!,
      /^attempt 1 of architect had no agent working on it \(architect is idle\); requeued at start/,
    );
    assert.equal(t.failures, 0);
  });
});
