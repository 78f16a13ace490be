import { Gauge, type Registry } from 'prom-client';
import type { WorkersStatus } from '../workers/workerStatus';

/**
 * The workers of a pipeline in PostgreSQL, as Prometheus metrics read from the database when
 * scraped (workers/workerStatus.ts, the same reading `pipeline status` prints):
 *
 * - `pipeline_worker_up{worker,host}`: 1 while the worker is live (heard from within its lease), else 0;
 * - `pipeline_worker_agents{worker}`: how many agents it runs;
 * - `pipeline_worker_claims{worker}`: the claims it holds;
 * - `pipeline_worker_heartbeat_age_seconds{worker}`: since its last heartbeat (the database's clock);
 * - `pipeline_agent_worker_live{agent}`: 1 when a live worker runs the agent, 0 when none does
 *   (only while the agents run on workers);
 * - `pipeline_claims_offered{agent}`: attempts offered to workers and not taken yet;
 * - `pipeline_claims_waiting_for_worker`: work no live worker can take (an offer or a queued task).
 *
 * One scrape reads the database once: the gauges share one reading. A reading that fails (the
 * database restarting) leaves the last figures in place rather than failing the whole scrape.
 */

export interface WorkerMetricsSource {
  workers(): Promise<WorkersStatus>;
}

/** How long one reading serves the gauges of a scrape (they are collected together). */
const READING_MS = 250;

export function registerWorkerMetrics(registry: Registry, source: WorkerMetricsSource): void {
  const registers = [registry];
  let reading: { at: number; value: Promise<WorkersStatus | null> } | undefined;
  const read = (): Promise<WorkersStatus | null> => {
    const now = Date.now();
    if (!reading || now - reading.at > READING_MS) reading = { at: now, value: source.workers().catch(() => null) };
    return reading.value;
  };
  /** A gauge set from each reading; left as it was when the reading failed. */
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (g: Gauge<L>, w: WorkersStatus) => void,
  ): void => {
    const g: Gauge<L> = new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      collect: async () => {
        const w = await read();
        if (!w) return;
        g.reset();
        fill(g, w);
      },
    });
  };
  gauge(
    'pipeline_worker_up',
    'Whether a worker is live (1: not stopped and heard from within its lease; 0: offline), by worker and host.',
    ['worker', 'host'],
    (g, w) => {
      for (const e of w.workers) g.set({ worker: e.name, host: e.host }, e.live ? 1 : 0);
    },
  );
  gauge('pipeline_worker_agents', 'How many agents a worker runs, by worker.', ['worker'], (g, w) => {
    for (const e of w.workers) g.set({ worker: e.name }, e.agents.length);
  });
  gauge('pipeline_worker_claims', 'Claims a worker holds now, by worker.', ['worker'], (g, w) => {
    for (const e of w.workers) g.set({ worker: e.name }, e.claims.length);
  });
  gauge(
    'pipeline_worker_heartbeat_age_seconds',
    "Seconds since a worker's last heartbeat (by the database's clock), by worker.",
    ['worker'],
    (g, w) => {
      for (const e of w.workers) g.set({ worker: e.name }, e.heartbeat_age_seconds);
    },
  );
  gauge(
    'pipeline_agent_worker_live',
    'Whether a live worker runs an agent (1) or none does (0: the agent is offline), by agent.',
    ['agent'],
    (g, w) => {
      for (const [agent, a] of Object.entries(w.agent_workers)) g.set({ agent }, a.live ? 1 : 0);
    },
  );
  gauge(
    'pipeline_claims_offered',
    'Attempts offered to the workers and not taken yet, by agent.',
    ['agent'],
    (g, w) => {
      for (const [agent, n] of Object.entries(w.offers_not_taken)) g.set({ agent }, n);
    },
  );
  gauge(
    'pipeline_claims_waiting_for_worker',
    'Work no live worker can take now: offers to, and queued tasks for, agents no live worker runs.',
    [],
    (g, w) => {
      g.set(w.waiting_for_workers.length);
    },
  );
}
