import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { committing, withRig } from './policyKit';

/**
 * After its completion marker an agent's command may run on for `markerGraceSeconds` to finish its
 * output (a CLI's token counts come last). A command whose CLI gives no totals has nothing to finish
 * but its output: it is let go as soon as that stops, so its agent takes the next task at once
 * instead of standing idle for the whole grace.
 */

const ONE_STAGE = {
  stages: [{ name: 'implementation', role: 'implementer' }],
  reworkStage: 'implementation',
  conflictStages: ['implementation'],
  // Far longer than the test's own limit: a command kept for its whole grace fails the test.
  markerGraceSeconds: 300,
};

const TASKS = ['TASK-001', 'TASK-002', 'TASK-003'].map((id, i) => ({ id, title: id, paths: [`p${i}/**`] }));

void test(
  'a command with no totals to give is let go once its output stops after its marker, not after its grace',
  { timeout: 120_000 },
  async () => {
    await withRig(
      {
        tasks: TASKS,
        agents: [['impl-a', 'implementer', 'implementer']],
        config: ONE_STAGE,
        // The marker is read by the rescan, often here (the agent never exits by itself).
        monitor: { rescanSeconds: { idle: 0.05, normal: 0.05, busy: 0.05 } },
        programs: (ws) => ({
          implementer: async (req, io) => {
            await committing(ws)(req, io);
            await io.log(`finished ${req.taskId}`);
            // Lingers after its marker like an interactive program that never exits by itself.
            return io.hold();
          },
        }),
      },
      async (rig) => {
        const result = await rig.run();
        assert.deepEqual(result, { done: 3, blocked: [], waiting: [] });
        // One agent took the three tasks one after another: each earlier command was stopped, not
        // waited out, and what it printed after its marker is in its log.
        assert.deepEqual(
          rig.runner.runs.map((r) => [r.req.taskId, r.status]),
          [
            ['TASK-001', 'killed'],
            ['TASK-002', 'killed'],
            ['TASK-003', 'killed'],
          ],
        );
        const log = await readFile(rig.runner.runs[0]!.req.logFile, 'utf8');
        assert.match(log, /finished TASK-001/);
      },
    );
  },
);
