import type { WorkerEntry, WorkersStatus } from '../engine/workers/workerStatus';

/**
 * The workers' part of `pipeline status` on a pipeline in PostgreSQL: one line per worker (where it
 * runs, live or offline by its heartbeat, its agents), one per claim it holds, and what waits for a
 * worker nobody runs. A pipeline in files has no workers and prints none of this.
 */

export function workerLines(w: WorkersStatus): string[] {
  const lines = ['workers:'];
  if (w.workers.length === 0) lines.push('  none (start one with `pipeline worker --agents <ids>` on a machine)');
  for (const e of w.workers) {
    lines.push(`  ${workerLine(e)}`);
    for (const c of e.claims) {
      const lease =
        c.lease_left_seconds >= 0
          ? `lease ${c.lease_left_seconds.toFixed(1)} s left`
          : `lease ran out ${(-c.lease_left_seconds).toFixed(1)} s ago: the coordinator takes it back`;
      lines.push(`      ${c.task} ${c.stage} attempt ${c.attempt} for ${c.agent}, epoch ${c.epoch} (${lease})`);
    }
  }
  const offers = Object.entries(w.offers_not_taken);
  if (offers.length) lines.push(`offered, not taken yet: ${offers.map(([a, n]) => `${a} ${n}`).join(', ')}`);
  for (const x of w.waiting_for_workers) lines.push(`waiting: ${x.message}`);
  return lines;
}

function workerLine(e: WorkerEntry): string {
  const state = e.live ? 'live' : e.stopped ? 'offline (stopped)' : 'OFFLINE';
  const beat = `heartbeat ${e.heartbeat_age_seconds.toFixed(1)} s ago, lease ${e.lease_seconds} s`;
  const role = e.coordinate ? ', may coordinate' : '';
  return `${e.name.padEnd(15)} ${state.padEnd(17)} ${e.host} pid ${e.pid} (${beat}${role}) agents: ${e.agents.join(', ') || '-'}`;
}

/** What follows an agent's line: the live workers that run it, or that none live does. */
export function agentWorkerNote(id: string, w: WorkersStatus): string {
  const a = w.agent_workers[id];
  if (!a) return '';
  if (a.workers.length === 0) return '[offline: no worker runs it]';
  if (!a.live) return `[offline: ${a.workers.join(', ')} ${a.workers.length > 1 ? 'are' : 'is'} offline]`;
  return `[on ${a.live_workers.join(', ')}]`;
}
