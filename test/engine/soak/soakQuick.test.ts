import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { describePlan, planTrial, type FaultKind } from '../../../bench/soak/soakPlan';
import { runTrial } from '../../../bench/soak/soakTrial';
import { trialLine } from '../../../bench/soak/soakTotals';
import { auditTrial } from '../../../bench/soak/soakAudit';
import { git, readState, requireBuild, sandbox } from '../monitor/monitorKit';

/**
 * The fast part of the soak battery (bench/soak/soak.ts, `npm run soak -- --minutes N`): three
 * trials with fixed seeds, each on a fresh repository with real `pipeline run` children killed with
 * SIGKILL at events of their `--json` output or at a time, tasks added through a leading run's
 * inbox just before a kill, and git faults between runs, then a last run to the end. Nothing
 * acknowledged may be lost or merged twice, no agent commit may end unreachable, and the last run
 * must finish every task with git healthy. The SIGSTOP handover (a whole lease of waiting) and the
 * kills of agents' process groups (whose outcome depends on where each agent was) are left to the
 * soak.
 */

requireBuild();

const QUICK_FAULTS: FaultKind[] = [
  'kill-run',
  'stale-index-lock',
  'stale-ref-lock',
  'detached-head',
  'deleted-worktree',
  'human-commit',
  'failing-hook',
];

// Seed 24: a kill at a time with a task added just before it, a person's commit, a kill at the second
// merge, a pre-commit hook refusing two commits, a stale main.lock. Seed 14: kills at an assignment
// and at an agent start (two tasks added just before), a stale index.lock, a deleted worktree, the
// failing hook. Seed 12: a kill at a time with two tasks added, a detached HEAD (with work committed on it when
// its agent was at work), a stale index.lock.
for (const seed of [24, 14, 12]) {
  void test(`soak trial, seed ${seed}: nothing lost, nothing merged twice, no agent commit unreachable`, async () => {
    const plan = planTrial(seed, { faults: QUICK_FAULTS });
    const r = await runTrial(plan, { limitMs: 60_000 });
    const context = `${trialLine(r)}\n${r.log.join('\n')}`;
    assert.deepEqual(r.lost, [], `lost:\n${context}`);
    assert.deepEqual(r.duplicated, [], `duplicated:\n${context}`);
    assert.deepEqual(r.unreachable, [], `unreachable agent commits:\n${context}`);
    assert.deepEqual(r.findings, [], `findings:\n${context}`);
    // The plan's faults struck: a trial that met none would prove nothing.
    const kills = plan.steps.filter((s) => s.kind === 'kill-run').length;
    assert.ok((r.faults['kill-run'] ?? 0) >= 1, `at least one kill -9 struck:\n${context}`);
    assert.ok((r.faults['kill-run'] ?? 0) <= kills, describePlan(plan).join('\n'));
    const gitFaults = Object.entries(r.faults).filter(([k]) => k !== 'kill-run');
    assert.ok(gitFaults.length >= 1, `git faults struck:\n${context}`);
    const tasks = plan.tasks.length + plan.steps.reduce((n, s) => n + (s.kind === 'kill-run' ? s.adds.length : 0), 0);
    // Every task add acknowledged, but one whose leader was killed between taking the request and
    // answering it: that add says so ("took the request but did not answer"), which is right, and
    // it may or may not have been applied. Merges count too when a run printed them before it was killed.
    const unanswered = r.log.filter((l) => /not acknowledged .*did not answer/.test(l)).length;
    assert.equal(r.tasksAcknowledged + unanswered, tasks, context);
    assert.ok(unanswered <= 2, context);
    assert.ok(r.acknowledged > r.tasksAcknowledged && r.acknowledged <= 2 * tasks, context);
    assert.ok(r.recovered >= 1, `a task unfinished at a fault ended merged:\n${context}`);
  });
}

void test('the soak audit counts a missing task, a merge off main, a double merge and unreachable agent commits', async () => {
  const sb = await sandbox({ tasks: [{ id: 'TASK-001', title: 'Audited' }] });
  try {
    const main = await git(sb.dir, 'rev-parse', 'HEAD');
    const tree = await git(sb.dir, 'rev-parse', 'HEAD^{tree}');
    // An agent commit nothing refers to, as a crash between commit and ref update would leave.
    const dropped = await git(sb.dir, 'commit-tree', tree, '-p', main, '-m', 'TASK-001 implementation: dropped');
    // One that only a detached HEAD holds.
    const wt = join(sb.base, 'detached');
    await git(sb.dir, 'worktree', 'add', '-q', '--detach', wt, main);
    await git(wt, 'commit', '-q', '--allow-empty', '-m', 'TASK-001 test: only on a detached HEAD');
    // Not an agent's commit: left out.
    await git(sb.dir, 'commit-tree', tree, '-p', main, '-m', 'Merge pipeline/TASK-001: not an agent commit');
    for (let i = 0; i < 2; i++)
      await git(sb.dir, 'commit', '-q', '--allow-empty', '-m', `Merge pipeline/TASK-001: TASK-001 Audited (${i})`);
    const state = await readState(sb.dir);
    const a = await auditTrial(sb, state, new Set(['TASK-001', 'TASK-009']), new Map([[dropped, 'TASK-001']]));
    assert.equal(a.lost.length, 2, a.lost.join('\n'));
    assert.match(a.lost.join('\n'), /TASK-009: acknowledged .* not in the state/);
    assert.match(a.lost.join('\n'), new RegExp(`the merge ${dropped.slice(0, 10)} a run reported is not on main`));
    assert.deepEqual(a.duplicated, ['TASK-001: 0 merged entries, 2 merge commits on main']);
    assert.deepEqual(a.unreachable.map((u) => u.replace(/^[0-9a-f]{10} /, '')).sort(), [
      '"TASK-001 implementation: dropped"',
      '"TASK-001 test: only on a detached HEAD"',
    ]);
    assert.deepEqual(a.stuck, ['TASK-001: pending at architect']);
    assert.deepEqual(a.merged, new Set());
  } finally {
    await sb.cleanup();
  }
});
