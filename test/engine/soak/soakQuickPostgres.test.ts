import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { describePlan, planTrial, type FaultKind } from '../../../bench/soak/soakPlan';
import { openSoakStore, storeMissing, type SoakStore } from '../../../bench/soak/soakStore';
import { runTrial } from '../../../bench/soak/soakTrial';
import { trialLine } from '../../../bench/soak/soakTotals';
import { requireBuild } from '../monitor/monitorKit';

/**
 * The fast part of the soak battery on the PostgreSQL store (`npm run soak -- --store postgres`):
 * two trials with fixed seeds, on one throwaway cluster and a database of each trial's own, with
 * real `pipeline run` children killed with SIGKILL, git faults between runs, and the server stopped
 * and started again in the middle of a run, which must wait for it and go on by itself. Nothing
 * acknowledged may be lost or merged twice, no agent commit may end unreachable, nothing may go to
 * the journal files, and the record log's epochs never go down.
 *
 * Skipped only where no PostgreSQL is installed; CI installs it (.ci/run), so there it runs.
 */

requireBuild();

const missing = storeMissing('postgres');

const QUICK_FAULTS: FaultKind[] = [
  'kill-run',
  'stale-index-lock',
  'stale-ref-lock',
  'detached-head',
  'deleted-worktree',
  'human-commit',
  'failing-hook',
  'pg-restart',
];

let store: SoakStore | undefined;

before(async () => {
  if (!missing) store = await openSoakStore('postgres');
});

after(async () => {
  await store?.close();
});

// Seed 14: a kill at the first assignment, a stale index.lock and a deleted worktree, then the
// server stopped as a crash would (immediate) at the fifth completion and started 1 s later.
// Seed 10: a kill at the fifth agent start, a person's commit on main, then the server stopped
// fast (as `pg_ctl stop -m fast`) at the second completion for 3 s, then two stale index.locks.
for (const seed of [14, 10]) {
  void test(
    `soak trial on PostgreSQL, seed ${seed}: nothing lost or merged twice across kills and a server restart`,
    { skip: missing ? `no PostgreSQL here: ${missing}` : false },
    async () => {
      const plan = planTrial(seed, { faults: QUICK_FAULTS, store: 'postgres' });
      const r = await runTrial(plan, { store: store!, limitMs: 60_000 });
      const context = `${trialLine(r)}\n${r.log.join('\n')}`;
      assert.deepEqual(r.lost, [], `lost:\n${context}`);
      assert.deepEqual(r.duplicated, [], `duplicated:\n${context}`);
      assert.deepEqual(r.unreachable, [], `unreachable agent commits:\n${context}`);
      assert.deepEqual(r.findings, [], `findings:\n${context}`);
      // The plan's faults struck: a trial that met none would prove nothing.
      assert.ok((r.faults['kill-run'] ?? 0) >= 1, `a kill -9 struck:\n${context}`);
      assert.equal(r.faults['pg-restart'], 1, `the server restarted in the middle of a run:\n${context}`);
      assert.ok(
        Object.keys(r.faults).some((k) => k !== 'kill-run' && k !== 'pg-restart'),
        `git faults struck:\n${context}`,
      );
      assert.match(r.log.join('\n'), /state: database soak_/, 'the trial ran on its own database');
      assert.match(r.log.join('\n'), /the run after the restart: exit 0, idle/, context);
      const tasks = plan.tasks.length + plan.steps.reduce((n, s) => n + (s.kind === 'kill-run' ? s.adds.length : 0), 0);
      assert.equal(r.tasksAcknowledged, tasks, context);
      assert.ok(r.recovered >= 1, `a task unfinished at a fault ended merged:\n${context}`);
      assert.ok(describePlan(plan)[0]!.includes('on PostgreSQL'));
    },
  );
}

void test('a file plan is drawn as before PostgreSQL faults existed, and never restarts a server', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const file = planTrial(seed);
    assert.equal(file.store, 'file');
    assert.ok(!file.steps.some((s) => s.kind === 'pg-restart'), describePlan(file).join('\n'));
  }
  // Seed 24 (soakQuick.test.ts) as it was: a kill at a time with a task added before it first.
  const first = planTrial(24, { faults: QUICK_FAULTS.filter((f) => f !== 'pg-restart') }).steps[0];
  assert.deepEqual(first && first.kind === 'kill-run' ? first.adds.map((t) => t.id) : [], ['TASK-005']);
  assert.ok(planTrial(14, { faults: QUICK_FAULTS, store: 'postgres' }).steps.some((s) => s.kind === 'pg-restart'));
});
