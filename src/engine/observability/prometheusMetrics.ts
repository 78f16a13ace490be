import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { PipelineState } from '../model/schema';
import type { LeaderInfo } from '../store/leaderLease';
import { registerUsageMetrics } from './usageMetrics';
import { registerWorkerMetrics, type WorkerMetricsSource } from './workerMetrics';

/**
 * Every Prometheus metric the pipeline exposes on `/metrics`, in a registry of their own (never
 * prom-client's global one). This file only declares them: names, help texts, labels and buckets.
 * What moves them is the bookkeeping in `metricsLedger.ts`, fed by `pipelineMetrics.ts`.
 *
 * A few are read when scraped rather than kept (who leads, whether this process does, the store's
 * warnings): they are properties of the pipeline, not of its state. So are what agents spent and
 * which are paused (`usageMetrics.ts`): the journal already keeps them.
 */

/** What is read of the pipeline at each scrape. */
export interface ScrapeSource {
  readonly isLeader: boolean;
  readonly leader: LeaderInfo | null;
  readonly storeWarnings: readonly string[];
  /** Tokens, cost and pauses are read from the state when scraped (`usageMetrics.ts`). */
  readonly state: Readonly<PipelineState>;
  /** Where the state is kept: the workers' metrics (`workerMetrics.ts`) are there for PostgreSQL only. */
  readonly storeLocation?: { readonly kind: string };
  /** The workers, read from the database when scraped. */
  readonly workers?: WorkerMetricsSource['workers'];
}

const STAGE_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400];
const HANDOFF_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const CHECK_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600];
const MERGE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Seconds since `l` took the lead (0 when nobody leads or its start is unreadable). */
export function leaderUptimeSeconds(l: LeaderInfo | null, now: number): number {
  if (!l) return 0;
  const since = Date.parse(l.since);
  return Number.isFinite(since) ? Math.max(0, (now - since) / 1000) : 0;
}

let processRegistry: Registry | undefined;

/**
 * prom-client's default process metrics, created once per process (they install observers that
 * cannot be removed) and registered into every pipeline registry that wants them.
 */
function processMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class PrometheusMetrics {
  /** The registry every metric of this pipeline is in (and the process metrics, unless turned off). */
  readonly registry = new Registry();

  readonly tasks: Gauge<'status' | 'stage'>;
  readonly added: Counter;
  readonly transitions: Counter<'event'>;
  readonly attempts: Counter<'stage'>;
  readonly retries: Counter<'stage'>;
  readonly stageDuration: Histogram<'stage' | 'outcome'>;
  readonly handoffLatency: Histogram<'from_stage' | 'to_stage'>;
  readonly merges: Counter;
  readonly conflicts: Counter;
  readonly mergeDuration: Histogram<'result'>;
  readonly checks: Counter<'stage' | 'result'>;
  readonly checkDuration: Histogram<'stage'>;
  readonly agents: Gauge<'role' | 'status'>;
  readonly agentsBusy: Gauge;
  readonly agentsIdle: Gauge;
  readonly agentStarts: Counter<'stage'>;
  readonly agentExits: Counter<'agent' | 'result'>;
  readonly orchestrationMode: Gauge<'mode'>;
  readonly switchPending: Gauge<'mode'>;
  readonly rolloutMode: Gauge<'mode'>;
  readonly monitorWarnings: Counter;
  readonly events: Counter<'event'>;

  constructor(source: ScrapeSource, now: () => number, processMetrics: boolean) {
    const registers = [this.registry];
    this.tasks = new Gauge({
      name: 'pipeline_tasks',
      help: 'Tasks by status and stage.',
      labelNames: ['status', 'stage'],
      registers,
    });
    this.added = new Counter({ name: 'pipeline_tasks_added_total', help: 'Tasks added.', registers });
    this.transitions = new Counter({
      name: 'pipeline_task_transitions_total',
      help: 'Task transitions by lifecycle event (assign, complete, fail, block, merged, conflict, ...).',
      labelNames: ['event'],
      registers,
    });
    this.attempts = new Counter({
      name: 'pipeline_task_attempts_total',
      help: 'Attempts started (a task assigned to an agent), by stage.',
      labelNames: ['stage'],
      registers,
    });
    this.retries = new Counter({
      name: 'pipeline_task_retries_total',
      help: 'Failed attempts that will be retried, by stage.',
      labelNames: ['stage'],
      registers,
    });
    this.stageDuration = new Histogram({
      name: 'pipeline_stage_duration_seconds',
      help: 'Time from the assignment of a stage to leaving it, by stage and outcome.',
      labelNames: ['stage', 'outcome'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.handoffLatency = new Histogram({
      name: 'pipeline_handoff_latency_seconds',
      help: "Time from a stage's completion (or a merge conflict) to the next stage's agent starting on the task.",
      labelNames: ['from_stage', 'to_stage'],
      buckets: HANDOFF_BUCKETS,
      registers,
    });
    this.merges = new Counter({
      name: 'pipeline_merges_total',
      help: 'Tasks merged into the target (or pilot) branch.',
      registers,
    });
    this.conflicts = new Counter({
      name: 'pipeline_merge_conflicts_total',
      help: 'Merges that would conflict (the task went back to rework).',
      registers,
    });
    this.mergeDuration = new Histogram({
      name: 'pipeline_merge_duration_seconds',
      help: 'Duration of merge attempts, by result (merged, conflict). Leader only.',
      labelNames: ['result'],
      buckets: MERGE_BUCKETS,
      registers,
    });
    this.checks = new Counter({
      name: 'pipeline_checks_total',
      help: 'Stage checks run, by stage and result (passed, failed). Leader only.',
      labelNames: ['stage', 'result'],
      registers,
    });
    this.checkDuration = new Histogram({
      name: 'pipeline_check_duration_seconds',
      help: 'Duration of stage checks. Leader only.',
      labelNames: ['stage'],
      buckets: CHECK_BUCKETS,
      registers,
    });
    this.agents = new Gauge({
      name: 'pipeline_agents',
      help: 'Agents by role and status.',
      labelNames: ['role', 'status'],
      registers,
    });
    this.agentsBusy = new Gauge({ name: 'pipeline_agents_busy', help: 'Agents working on a task.', registers });
    this.agentsIdle = new Gauge({ name: 'pipeline_agents_idle', help: 'Agents waiting for work.', registers });
    this.agentStarts = new Counter({
      name: 'pipeline_agent_starts_total',
      help: "Agents' commands started, by stage. Leader only.",
      labelNames: ['stage'],
      registers,
    });
    this.agentExits = new Counter({
      name: 'pipeline_agent_exits_total',
      help: "Agents' commands ended, by agent and result (marker: left a completion marker; no_marker). Leader only.",
      labelNames: ['agent', 'result'],
      registers,
    });
    this.orchestrationMode = new Gauge({
      name: 'pipeline_orchestration_mode',
      help: 'The current orchestration mode (1 for the current one).',
      labelNames: ['mode'],
      registers,
    });
    this.switchPending = new Gauge({
      name: 'pipeline_orchestration_switch_pending',
      help: 'An orchestration switch waiting for in-flight work to drain (1 for its mode).',
      labelNames: ['mode'],
      registers,
    });
    this.rolloutMode = new Gauge({
      name: 'pipeline_rollout_mode',
      help: 'The current rollout mode (1 for the current one).',
      labelNames: ['mode'],
      registers,
    });
    this.monitorWarnings = new Counter({
      name: 'pipeline_monitor_warnings_total',
      help: 'Problems the monitor handled (git errors, agents that could not start).',
      registers,
    });
    this.events = new Counter({
      name: 'pipeline_events_total',
      help: 'Pipeline events seen by this process, by name.',
      labelNames: ['event'],
      registers,
    });

    // Read when scraped.
    const leaderInfo: Gauge<'pid' | 'host' | 'label' | 'epoch'> = new Gauge({
      name: 'pipeline_leader_info',
      help: 'The process that leads the pipeline (1), with its pid, host, label and lease epoch.',
      labelNames: ['pid', 'host', 'label', 'epoch'],
      registers,
      collect: () => {
        leaderInfo.reset();
        const l = source.leader;
        if (l) leaderInfo.set({ pid: String(l.pid), host: l.host, label: l.label, epoch: String(l.epoch) }, 1);
      },
    });
    const uptime: Gauge = new Gauge({
      name: 'pipeline_leader_uptime_seconds',
      help: 'Seconds since the current leader took the lead (0 when nobody leads).',
      registers,
      collect: () => uptime.set(leaderUptimeSeconds(source.leader, now())),
    });
    const isLeader: Gauge = new Gauge({
      name: 'pipeline_is_leader',
      help: 'Whether this process leads the pipeline (1) or follows it (0).',
      registers,
      collect: () => isLeader.set(source.isLeader ? 1 : 0),
    });
    const warnings: Gauge = new Gauge({
      name: 'pipeline_store_warnings',
      help: "Warnings of this process's state store (a torn journal tail, a skipped record).",
      registers,
      collect: () => warnings.set(source.storeWarnings.length),
    });
    registerUsageMetrics(this.registry, source);
    const workers = source.workers;
    if (source.storeLocation?.kind === 'postgres' && workers)
      registerWorkerMetrics(this.registry, { workers: () => workers.call(source) });
    if (processMetrics) {
      const shared = processMetricsRegistry();
      for (const { name } of shared.getMetricsAsArray()) {
        const m = shared.getSingleMetric(name);
        if (m) this.registry.registerMetric(m);
      }
    }
  }

  /** Marks the current orchestration and rollout modes, and a pending switch if any. */
  setModes(orchestration: string, rollout: string, pendingSwitch: string | null): void {
    this.orchestrationMode.reset();
    this.orchestrationMode.set({ mode: orchestration }, 1);
    this.rolloutMode.reset();
    this.rolloutMode.set({ mode: rollout }, 1);
    this.switchPending.reset();
    if (pendingSwitch) this.switchPending.set({ mode: pendingSwitch }, 1);
  }
}
