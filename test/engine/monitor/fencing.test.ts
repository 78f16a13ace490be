import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createMonitor } from '../../../src/cli/runtime';
import { Pipeline } from '../../../src/engine/pipeline';
import { git, requireBuild, sandbox, SCRIPTED_AGENT, until, within } from './monitorKit';

/**
 * A leader that loses its lease in the middle of a launch (paused past its lease while another
 * process took over) must not touch git or start an agent afterwards, and must stand down without
 * an uncaught error. The takeover is played by writing the next epoch's claim, exactly what a new
 * leader's LeaderLease.acquire writes.
 */
function claimNextEpoch(leaderDir: string): number {
  const epochs = readdirSync(leaderDir)
    .map((n) => /^epoch-(\d+)\.json$/.exec(n)?.[1])
    .filter((x): x is string => x !== undefined)
    .map(Number);
  const next = Math.max(...epochs) + 1;
  const now = new Date().toISOString();
  const record = {
    pid: 999_999,
    host: hostname(),
    epoch: next,
    since: now,
    renewedAt: now,
    label: 'the new leader',
    leaseMs: 60_000,
  };
  writeFileSync(join(leaderDir, `epoch-${String(next).padStart(10, '0')}.json`), JSON.stringify(record));
  return next;
}

void test('a leader whose lease is taken during a launch checks out nothing, starts nothing, and stands down', async () => {
  requireBuild();
  const sb = await sandbox({ tasks: [{ id: 'TASK-001', title: 'Fenced' }] });
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const p = await Pipeline.open({ cwd: sb.dir, role: 'lead', label: 'old leader' });
  try {
    const starts: unknown[] = [];
    const monitor = await createMonitor(p, 'process', { scriptedAgent: SCRIPTED_AGENT });
    let takenAt: number | undefined;
    const sub = p.events.on('task:transition', (e) => {
      if (e.event.type === 'assign' && takenAt === undefined) {
        takenAt = Date.now();
        // Synchronously, so the claim exists before the launch's first git mutation is fenced.
        claimNextEpoch(join(p.home.leaderDir, 'leader'));
      }
    });
    const lost = new Promise<void>((r) => p.events.on('leader:lost', () => r()));
    const started = p.events.on('agent:started', (e) => starts.push(e));
    await monitor.start();
    await within('the old leader to notice it lost the lease', 20_000, lost);
    // The launch that was under way has ended one way or the other.
    await until('the launch to give up', 10_000, () => !p.isLeader);
    sub.dispose();
    started.dispose();
    assert.equal(starts.length, 0, 'no agent started after the lease was lost');
    const branches = await git(sb.dir, 'branch', '--list', 'pipeline/TASK-001');
    assert.equal(branches.trim(), '', 'the task branch was never created: no git mutation ran');
    const worktreeBranch = await git(join(sb.worktreeRoot, 'architect'), 'rev-parse', '--abbrev-ref', 'HEAD').catch(
      () => '(no worktree)',
    );
    assert.notEqual(worktreeBranch.trim(), 'pipeline/TASK-001');
    await monitor.stop();
    assert.deepEqual(unhandled, [], 'the old leader stood down without an uncaught error');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await p.close();
    await sb.cleanup();
  }
});
