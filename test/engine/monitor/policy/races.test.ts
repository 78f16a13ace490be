import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_STAGES } from '../../../../src/engine/model/configSchema';
import { diligent, entries, story, withRig, type Rig } from './policyKit';

/**
 * A completion marker and its command's exit reach the monitor on two paths (the marker read on a
 * rescan or file event, the exit read by the runner) in either order, and one attempt's outcome is
 * applied once. A stage check that the test holds open keeps the first path in the middle of
 * applying the marker while the second arrives.
 */

interface Gate {
  readonly p: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

const CHECKED = DEFAULT_STAGES.map((s) => (s.name === 'implementation' ? { ...s, check: 'npm test' } : s));

/** The task went through each stage once, with one completion and one check of the implementation. */
function assertAppliedOnce(rig: Rig): void {
  const t = rig.task('TASK-001');
  assert.equal(t.status, 'done', story(t));
  assert.equal(entries(t, 'complete').filter((h) => h.note === 'implementation done by implementer').length, 1);
  assert.equal(entries(t, 'fail').length, 0, story(t));
  assert.equal(rig.checks.runs.length, 1, 'the check ran once');
  const exits = rig.of('agent:exited').filter((e) => e.agentId === 'implementer');
  assert.equal(exits.length, 1);
  assert.equal(exits[0]!.marker, true, 'the exit is reported as one with a marker');
}

void test('the marker is read first (a rescan), the exit comes while it is applied: applied once', async () => {
  const checkRunning = gate();
  const release = gate();
  const markerWritten = gate();
  const exitNow = gate();
  await withRig(
    {
      tasks: [{ id: 'TASK-001', title: 'One' }],
      config: { stages: CHECKED },
      programs: {
        implementer: async (req, io) => {
          await diligent(req, io);
          markerWritten.open();
          await exitNow.p;
        },
      },
      checks: {
        'npm test': async () => {
          checkRunning.open();
          await release.p;
          return 0;
        },
      },
    },
    async (rig) => {
      await rig.start();
      await markerWritten.p;
      void rig.monitor.rescanNow();
      await checkRunning.p;
      exitNow.open();
      await rig.next('agent:exited', (e) => e.agentId === 'implementer');
      await rig.monitor.rescanNow();
      release.open();
      await rig.run();
      assertAppliedOnce(rig);
    },
  );
});

void test('the exit comes first (its handler reads the marker), a rescan reads it again while it is applied: applied once', async () => {
  const checkRunning = gate();
  const release = gate();
  await withRig(
    {
      tasks: [{ id: 'TASK-001', title: 'One' }],
      config: { stages: CHECKED },
      checks: {
        'npm test': async () => {
          checkRunning.open();
          await release.p;
          return 0;
        },
      },
    },
    async (rig) => {
      await rig.start();
      await checkRunning.p;
      assert.equal(rig.runner.runsOf('implementer')[0]!.status, 'exited', 'the agent has exited');
      await rig.monitor.rescanNow();
      release.open();
      await rig.run();
      assertAppliedOnce(rig);
    },
  );
});

void test('no check: a rescan and the exit read the marker at the same moment: applied once', async () => {
  let rig: Rig | undefined;
  await withRig(
    {
      tasks: [{ id: 'TASK-001', title: 'One' }],
      programs: {
        implementer: async (req, io) => {
          await diligent(req, io);
          void rig!.monitor.rescanNow();
        },
      },
    },
    async (r) => {
      rig = r;
      await r.run();
      const t = r.task('TASK-001');
      assert.equal(t.status, 'done', story(t));
      assert.equal(entries(t, 'complete').filter((h) => h.note === 'implementation done by implementer').length, 1);
      assert.equal(r.of('agent:exited').filter((e) => e.agentId === 'implementer').length, 1);
    },
  );
});
