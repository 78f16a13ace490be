import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Emitter, type Disposable, type Event, type TypedEvents } from '../model/events';
import type { PipelineEventMap } from '../model/pipelineEvents';
import {
  AGENT_STATUSES,
  TASK_STATUSES,
  type Agent,
  type AgentStatus,
  type HistoryEntry,
  type PipelineConfig,
  type PipelineState,
  type RolloutMode,
  type Task,
  type TaskStatus,
} from '../model/schema';
import type { LeaderInfo } from '../store/leaderLease';

/**
 * The pipeline's Prometheus metrics, in a registry of their own (never prom-client's global one),
 * plus a short in-memory time series for the metrics panel.
 *
 * Everything is fed by the pipeline's events: counts of tasks by status and stage and of agents by
 * status are kept incrementally from `task:added`/`task:transition` and `agent:*`, after being read
 * once from the state at attach. A process that follows (it sees no transitions, only
 * `state:changed` after each refresh of the journal) compares the refreshed tasks with what it knew,
 * which costs one pass over the tasks per refresh, and reads the new history entries for what
 * happened in between (their timestamps give durations; its handoff latency ends at the `assign`).
 * Only the leader sees agents start, checks and merges run; those metrics stay at zero elsewhere.
 *
 * Who leads, whether this process does and the store's warnings are read when scraped (they are
 * properties of the pipeline, not of its state).
 */

/** What the metrics read of a pipeline: `Pipeline` has all of it. */
export interface MetricsSource {
  readonly events: TypedEvents<PipelineEventMap>;
  readonly state: Readonly<PipelineState>;
  readonly config: PipelineConfig;
  readonly isLeader: boolean;
  readonly leader: LeaderInfo | null;
  readonly storeWarnings: readonly string[];
}

export interface PipelineMetricsOptions {
  /** Resolution of the time series (ms). Default 5 s. */
  intervalMs?: number;
  /** How much of the time series is kept (ms). Default 30 min. */
  windowMs?: number;
  /** Recent stage and handoff durations kept for the snapshot. Default 100 each. */
  recent?: number;
  /** prom-client's default process metrics (CPU, memory, event loop, GC) in the same registry. Default true. */
  processMetrics?: boolean;
  /** The time source (ms); tests pass a fake one. Default Date.now. */
  now?: () => number;
}

/** One interval of the time series. */
export interface MetricsPoint {
  /** Start of the interval (ms since the epoch). */
  t: number;
  /** Tasks merged during the interval. */
  merged: number;
  /** Stages completed during the interval (all stages, all tasks). */
  stagesCompleted: number;
  /** Queued tasks per stage at the end of the interval (now, for the last, current one). */
  queueDepth: Record<string, number>;
  /** Agents working at the end of the interval, and agents registered. */
  busyAgents: number;
  agents: number;
  /** Share of agent time spent working during the interval, 0..1 (time-weighted). */
  utilisation: number;
}

export interface DurationSample {
  /** When it ended (ms since the epoch). */
  at: number;
  taskId: string;
  /** The stage left (stage durations) or handed off from (handoffs: a stage, or `merge`). */
  stage: string;
  /** Handoffs: the stage whose agent started. */
  toStage?: string;
  /** Stage durations: completed, changes_requested, failed, blocked, requeued, cancelled. */
  outcome?: StageOutcome;
  seconds: number;
}

export type StageOutcome = 'completed' | 'changes_requested' | 'failed' | 'blocked' | 'requeued' | 'cancelled';

/** Everything the metrics panel draws, as one plain JSON-able object. */
export interface MetricsSnapshot {
  /** When it was taken (ms since the epoch). */
  at: number;
  intervalMs: number;
  windowMs: number;
  /** The configured stages, in order. */
  stages: string[];
  /** Oldest first; the last point is the current, partial interval. */
  series: MetricsPoint[];
  tasks: {
    byStatus: Record<TaskStatus, number>;
    /** stage → status → count (only non-zero counts). */
    byStage: Record<string, Partial<Record<TaskStatus, number>>>;
    total: number;
  };
  agents: { byStatus: Record<AgentStatus, number>; busy: number; idle: number; total: number };
  /** Counters since this process attached its metrics. */
  counters: {
    added: number;
    attempts: number;
    retries: number;
    merged: number;
    conflicts: number;
    checksPassed: number;
    checksFailed: number;
    stagesCompleted: number;
  };
  modes: { orchestration: string; rollout: RolloutMode; pendingSwitch: string | null };
  isLeader: boolean;
  leader: (LeaderInfo & { uptimeSeconds: number }) | null;
  storeWarnings: string[];
  /** The most recent stage durations and handoff latencies, oldest first. */
  recent: { stages: DurationSample[]; handoffs: DurationSample[] };
}

interface KnownTask {
  status: TaskStatus;
  stage: string;
  history: number;
}

const STAGE_BUCKETS = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400];
const HANDOFF_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const CHECK_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600];
const MERGE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const LEAVING: Partial<Record<HistoryEntry['event'], StageOutcome>> = {
  complete: 'completed',
  changes_requested: 'changes_requested',
  fail: 'failed',
  block: 'blocked',
  requeue: 'requeued',
  cancel: 'cancelled',
};

/** A fixed-size ring: pushes overwrite the oldest; `toArray` is oldest first. */
export class Ring<T> {
  private items: T[] = [];
  private head = 0;
  constructor(readonly capacity: number) {}
  push(v: T): void {
    if (this.items.length < this.capacity) this.items.push(v);
    else {
      this.items[this.head] = v;
      this.head = (this.head + 1) % this.capacity;
    }
  }
  get length(): number {
    return this.items.length;
  }
  toArray(): T[] {
    return [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}

interface Bucket {
  t: number;
  merged: number;
  stagesCompleted: number;
  busyMs: number;
  agentMs: number;
  /** Up to when busyMs/agentMs are integrated. */
  until: number;
}

/** The levels the series integrates and samples; read from the metrics' own counts. */
interface Levels {
  busy: () => number;
  agents: () => number;
  queueDepth: () => Record<string, number>;
}

/**
 * The time series: fixed intervals, closed lazily. Levels only change on events, so an interval is
 * closed (and any empty ones after it filled with the levels then) when the next event or snapshot
 * arrives after its end: no timer runs.
 */
class TimeSeries {
  private readonly ring: Ring<MetricsPoint>;
  private cur: Bucket;
  constructor(
    readonly intervalMs: number,
    readonly windowMs: number,
    private readonly levels: Levels,
    now: number,
  ) {
    this.ring = new Ring(Math.max(1, Math.ceil(windowMs / intervalMs) - 1));
    this.cur = this.bucketAt(now);
  }

  private bucketAt(now: number): Bucket {
    const t = Math.floor(now / this.intervalMs) * this.intervalMs;
    return { t, merged: 0, stagesCompleted: 0, busyMs: 0, agentMs: 0, until: Math.max(t, now) };
  }

  private integrate(b: Bucket, to: number): void {
    const dt = to - b.until;
    if (dt <= 0) return;
    b.busyMs += this.levels.busy() * dt;
    b.agentMs += this.levels.agents() * dt;
    b.until = to;
  }

  private point(b: Bucket): MetricsPoint {
    return {
      t: b.t,
      merged: b.merged,
      stagesCompleted: b.stagesCompleted,
      queueDepth: this.levels.queueDepth(),
      busyAgents: this.levels.busy(),
      agents: this.levels.agents(),
      utilisation: b.agentMs > 0 ? Math.min(1, b.busyMs / b.agentMs) : 0,
    };
  }

  /** Brings the series up to `now` with the levels as they were until now. Call before a level changes. */
  advance(now: number): void {
    const end = this.cur.t + this.intervalMs;
    if (now < end) {
      this.integrate(this.cur, now);
      return;
    }
    this.integrate(this.cur, end);
    this.ring.push(this.point(this.cur));
    const target = Math.floor(now / this.intervalMs) * this.intervalMs;
    // Empty intervals in between carry the levels; no more of them than the window holds.
    const gaps = Math.min((target - end) / this.intervalMs, this.ring.capacity);
    for (let i = gaps; i > 0; i--) {
      const b: Bucket = {
        t: target - i * this.intervalMs,
        merged: 0,
        stagesCompleted: 0,
        busyMs: 0,
        agentMs: 0,
        until: target - i * this.intervalMs,
      };
      this.integrate(b, b.t + this.intervalMs);
      this.ring.push(this.point(b));
    }
    this.cur = { t: target, merged: 0, stagesCompleted: 0, busyMs: 0, agentMs: 0, until: target };
    this.integrate(this.cur, now);
  }

  addMerged(now: number): void {
    this.advance(now);
    this.cur.merged++;
  }

  addStageCompleted(now: number): void {
    this.advance(now);
    this.cur.stagesCompleted++;
  }

  points(now: number): MetricsPoint[] {
    this.advance(now);
    return [...this.ring.toArray(), this.point(this.cur)];
  }
}

const key = (status: string, stage: string) => `${status}\u0000${stage}`;

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

export class PipelineMetrics implements Disposable {
  /** The registry every metric of this pipeline is in (and the process metrics, unless turned off). */
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly subs: Disposable[] = [];
  private readonly changed = new Emitter<void>();
  private disposed = false;

  private readonly known = new Map<string, KnownTask>();
  private readonly taskCounts = new Map<string, number>();
  private readonly knownAgents = new Map<string, { role: string; status: AgentStatus }>();
  private readonly agentCounts = new Map<string, number>();
  /** Tasks being worked: since when, at which stage. */
  private readonly working = new Map<string, { stage: string; at: number }>();
  /** Tasks handed on to a stage whose agent has not started yet. */
  private readonly handoffs = new Map<string, { from: string; to: string; at: number }>();
  private readonly series: TimeSeries;
  private readonly recentStages: Ring<DurationSample>;
  private readonly recentHandoffs: Ring<DurationSample>;
  private modes: { orchestration: string; rollout: RolloutMode; pendingSwitch: string | null };
  private readonly counts = {
    added: 0,
    attempts: 0,
    retries: 0,
    merged: 0,
    conflicts: 0,
    checksPassed: 0,
    checksFailed: 0,
    stagesCompleted: 0,
  };

  private readonly gTasks: Gauge<'status' | 'stage'>;
  private readonly cAdded: Counter;
  private readonly cTransitions: Counter<'event'>;
  private readonly cAttempts: Counter<'stage'>;
  private readonly cRetries: Counter<'stage'>;
  private readonly hStage: Histogram<'stage' | 'outcome'>;
  private readonly hHandoff: Histogram<'from_stage' | 'to_stage'>;
  private readonly cMerges: Counter;
  private readonly cConflicts: Counter;
  private readonly hMerge: Histogram<'result'>;
  private readonly cChecks: Counter<'stage' | 'result'>;
  private readonly hCheck: Histogram<'stage'>;
  private readonly gAgents: Gauge<'role' | 'status'>;
  private readonly gBusy: Gauge;
  private readonly gIdle: Gauge;
  private readonly cAgentStarts: Counter<'stage'>;
  private readonly cAgentExits: Counter<'agent' | 'result'>;
  private readonly gOrchestration: Gauge<'mode'>;
  private readonly gPendingSwitch: Gauge<'mode'>;
  private readonly gRollout: Gauge<'mode'>;
  private readonly cWarnings: Counter;
  private readonly cEvents: Counter<'event'>;

  /** Starts collecting from `source` (a `Pipeline`); `dispose` stops. */
  static attach(source: MetricsSource, opts: PipelineMetricsOptions = {}): PipelineMetrics {
    return new PipelineMetrics(source, opts);
  }

  private constructor(
    private readonly source: MetricsSource,
    opts: PipelineMetricsOptions,
  ) {
    this.now = opts.now ?? Date.now;
    const registers = [this.registry];

    this.gTasks = new Gauge({
      name: 'pipeline_tasks',
      help: 'Tasks by status and stage.',
      labelNames: ['status', 'stage'],
      registers,
    });
    this.cAdded = new Counter({ name: 'pipeline_tasks_added_total', help: 'Tasks added.', registers });
    this.cTransitions = new Counter({
      name: 'pipeline_task_transitions_total',
      help: 'Task transitions by lifecycle event (assign, complete, fail, block, merged, conflict, ...).',
      labelNames: ['event'],
      registers,
    });
    this.cAttempts = new Counter({
      name: 'pipeline_task_attempts_total',
      help: 'Attempts started (a task assigned to an agent), by stage.',
      labelNames: ['stage'],
      registers,
    });
    this.cRetries = new Counter({
      name: 'pipeline_task_retries_total',
      help: 'Failed attempts that will be retried, by stage.',
      labelNames: ['stage'],
      registers,
    });
    this.hStage = new Histogram({
      name: 'pipeline_stage_duration_seconds',
      help: 'Time from the assignment of a stage to leaving it, by stage and outcome.',
      labelNames: ['stage', 'outcome'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.hHandoff = new Histogram({
      name: 'pipeline_handoff_latency_seconds',
      help: "Time from a stage's completion (or a merge conflict) to the next stage's agent starting on the task.",
      labelNames: ['from_stage', 'to_stage'],
      buckets: HANDOFF_BUCKETS,
      registers,
    });
    this.cMerges = new Counter({
      name: 'pipeline_merges_total',
      help: 'Tasks merged into the target (or pilot) branch.',
      registers,
    });
    this.cConflicts = new Counter({
      name: 'pipeline_merge_conflicts_total',
      help: 'Merges that would conflict (the task went back to rework).',
      registers,
    });
    this.hMerge = new Histogram({
      name: 'pipeline_merge_duration_seconds',
      help: 'Duration of merge attempts, by result (merged, conflict). Leader only.',
      labelNames: ['result'],
      buckets: MERGE_BUCKETS,
      registers,
    });
    this.cChecks = new Counter({
      name: 'pipeline_checks_total',
      help: 'Stage checks run, by stage and result (passed, failed). Leader only.',
      labelNames: ['stage', 'result'],
      registers,
    });
    this.hCheck = new Histogram({
      name: 'pipeline_check_duration_seconds',
      help: 'Duration of stage checks. Leader only.',
      labelNames: ['stage'],
      buckets: CHECK_BUCKETS,
      registers,
    });
    this.gAgents = new Gauge({
      name: 'pipeline_agents',
      help: 'Agents by role and status.',
      labelNames: ['role', 'status'],
      registers,
    });
    this.gBusy = new Gauge({ name: 'pipeline_agents_busy', help: 'Agents working on a task.', registers });
    this.gIdle = new Gauge({ name: 'pipeline_agents_idle', help: 'Agents waiting for work.', registers });
    this.cAgentStarts = new Counter({
      name: 'pipeline_agent_starts_total',
      help: "Agents' commands started, by stage. Leader only.",
      labelNames: ['stage'],
      registers,
    });
    this.cAgentExits = new Counter({
      name: 'pipeline_agent_exits_total',
      help: "Agents' commands ended, by agent and result (marker: left a completion marker; no_marker). Leader only.",
      labelNames: ['agent', 'result'],
      registers,
    });
    this.gOrchestration = new Gauge({
      name: 'pipeline_orchestration_mode',
      help: 'The current orchestration mode (1 for the current one).',
      labelNames: ['mode'],
      registers,
    });
    this.gPendingSwitch = new Gauge({
      name: 'pipeline_orchestration_switch_pending',
      help: 'An orchestration switch waiting for in-flight work to drain (1 for its mode).',
      labelNames: ['mode'],
      registers,
    });
    this.gRollout = new Gauge({
      name: 'pipeline_rollout_mode',
      help: 'The current rollout mode (1 for the current one).',
      labelNames: ['mode'],
      registers,
    });
    this.cWarnings = new Counter({
      name: 'pipeline_monitor_warnings_total',
      help: 'Problems the monitor handled (git errors, agents that could not start).',
      registers,
    });
    this.cEvents = new Counter({
      name: 'pipeline_events_total',
      help: 'Pipeline events seen by this process, by name.',
      labelNames: ['event'],
      registers,
    });

    // Read when scraped: these are properties of the pipeline, not of its state.
    const leaderInfo: Gauge<'pid' | 'host' | 'label' | 'epoch'> = new Gauge({
      name: 'pipeline_leader_info',
      help: 'The process that leads the pipeline (1), with its pid, host, label and lease epoch.',
      labelNames: ['pid', 'host', 'label', 'epoch'],
      registers,
      collect: () => {
        leaderInfo.reset();
        const l = this.source.leader;
        if (l) leaderInfo.set({ pid: String(l.pid), host: l.host, label: l.label, epoch: String(l.epoch) }, 1);
      },
    });
    const uptime: Gauge = new Gauge({
      name: 'pipeline_leader_uptime_seconds',
      help: 'Seconds since the current leader took the lead (0 when nobody leads).',
      registers,
      collect: () => uptime.set(this.leaderUptime(this.source.leader)),
    });
    const isLeader: Gauge = new Gauge({
      name: 'pipeline_is_leader',
      help: 'Whether this process leads the pipeline (1) or follows it (0).',
      registers,
      collect: () => isLeader.set(this.source.isLeader ? 1 : 0),
    });
    const warnings: Gauge = new Gauge({
      name: 'pipeline_store_warnings',
      help: "Warnings of this process's state store (a torn journal tail, a skipped record).",
      registers,
      collect: () => warnings.set(this.source.storeWarnings.length),
    });
    if (opts.processMetrics !== false) {
      const shared = processMetricsRegistry();
      for (const { name } of shared.getMetricsAsArray()) {
        const m = shared.getSingleMetric(name);
        if (m) this.registry.registerMetric(m);
      }
    }

    const state = source.state;
    this.modes = { orchestration: state.orchestration_mode, rollout: state.mode, pendingSwitch: state.pending_switch };
    const levels: Levels = {
      busy: () => this.agentCounts.get('working') ?? 0,
      agents: () => this.knownAgents.size,
      queueDepth: () => this.queueDepth(),
    };
    this.series = new TimeSeries(opts.intervalMs ?? 5_000, opts.windowMs ?? 30 * 60_000, levels, this.now());
    this.recentStages = new Ring(opts.recent ?? 100);
    this.recentHandoffs = new Ring(opts.recent ?? 100);
    this.initialise(state);
    this.subscribe();
  }

  // ------------------------------------------------------------------------------------------
  // Reading.

  /** The Prometheus text exposition of the registry. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of `metricsText()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Fires after every event that changed a figure (synchronously; throttle when redrawing). */
  get onDidChange(): Event<void> {
    return this.changed.event;
  }

  /** The time series and the current figures, for the metrics panel and `/snapshot.json`. */
  metricsSnapshot(): MetricsSnapshot {
    const now = this.now();
    const byStatus = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const byStage: Record<string, Partial<Record<TaskStatus, number>>> = {};
    let total = 0;
    for (const [k, n] of this.taskCounts) {
      if (n === 0) continue;
      const [status, stage] = k.split('\u0000') as [TaskStatus, string];
      byStatus[status] += n;
      (byStage[stage] ??= {})[status] = n;
      total += n;
    }
    const agentsByStatus = Object.fromEntries(AGENT_STATUSES.map((s) => [s, this.agentCounts.get(s) ?? 0])) as Record<
      AgentStatus,
      number
    >;
    const leader = this.source.leader;
    return {
      at: now,
      intervalMs: this.series.intervalMs,
      windowMs: this.series.windowMs,
      stages: this.source.config.stages.map((s) => s.name),
      series: this.series.points(now),
      tasks: { byStatus, byStage, total },
      agents: {
        byStatus: agentsByStatus,
        busy: agentsByStatus.working,
        idle: agentsByStatus.idle,
        total: this.knownAgents.size,
      },
      counters: { ...this.counts },
      modes: { ...this.modes },
      isLeader: this.source.isLeader,
      leader: leader ? { ...leader, uptimeSeconds: this.leaderUptime(leader) } : null,
      storeWarnings: [...this.source.storeWarnings],
      recent: { stages: this.recentStages.toArray(), handoffs: this.recentHandoffs.toArray() },
    };
  }

  private leaderUptime(l: LeaderInfo | null): number {
    if (!l) return 0;
    const since = Date.parse(l.since);
    return Number.isFinite(since) ? Math.max(0, (this.now() - since) / 1000) : 0;
  }

  private queueDepth(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.source.config.stages) out[s.name] = this.taskCounts.get(key('queued', s.name)) ?? 0;
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Keeping the counts.

  private initialise(state: Readonly<PipelineState>): void {
    for (const s of this.source.config.stages) for (const st of TASK_STATUSES) this.setTaskCount(st, s.name, 0);
    for (const t of Object.values(state.tasks)) {
      this.known.set(t.id, { status: t.status, stage: t.stage, history: t.history.length });
      this.bumpTask(t.status, t.stage, 1);
      this.recoverTiming(t);
    }
    const roles = new Set(this.source.config.stages.map((s) => s.role));
    for (const r of roles) for (const st of AGENT_STATUSES) this.gAgents.set({ role: r, status: st }, 0);
    for (const a of Object.values(state.agents)) this.agentArrived(a);
    this.updateAgentTotals();
    this.setModes(state.orchestration_mode, state.mode, state.pending_switch);
  }

  /** For a task found at attach or on a refresh: since when it works, or waits for its next agent. */
  private recoverTiming(t: Task): void {
    const last = t.history[t.history.length - 1];
    if (!last) return;
    const at = Date.parse(last.at);
    if (!Number.isFinite(at)) return;
    if (t.status === 'working' && last.event === 'assign') this.working.set(t.id, { stage: t.stage, at });
    if (
      t.status === 'queued' &&
      (last.event === 'complete' || last.event === 'changes_requested' || last.event === 'conflict')
    ) {
      const prev = t.history[t.history.length - 2];
      this.handoffs.set(t.id, {
        from: last.event === 'conflict' ? 'merge' : (prev?.stage ?? t.stage),
        to: t.stage,
        at,
      });
    }
  }

  private setTaskCount(status: string, stage: string, n: number): void {
    this.taskCounts.set(key(status, stage), n);
    this.gTasks.set({ status, stage }, n);
  }

  private bumpTask(status: string, stage: string, by: number): void {
    this.setTaskCount(status, stage, Math.max(0, (this.taskCounts.get(key(status, stage)) ?? 0) + by));
  }

  private moveTask(id: string, status: TaskStatus, stage: string, history: number): void {
    const k = this.known.get(id);
    if (k && (k.status !== status || k.stage !== stage)) this.bumpTask(k.status, k.stage, -1);
    if (!k || k.status !== status || k.stage !== stage) this.bumpTask(status, stage, 1);
    this.known.set(id, { status, stage, history });
  }

  private agentArrived(a: Agent): void {
    this.knownAgents.set(a.id, { role: a.role, status: a.status });
    this.agentCounts.set(a.status, (this.agentCounts.get(a.status) ?? 0) + 1);
    this.gAgents.inc({ role: a.role, status: a.status });
  }

  private agentLeft(id: string): void {
    const k = this.knownAgents.get(id);
    if (!k) return;
    this.knownAgents.delete(id);
    this.agentCounts.set(k.status, Math.max(0, (this.agentCounts.get(k.status) ?? 0) - 1));
    this.gAgents.dec({ role: k.role, status: k.status });
  }

  private updateAgentTotals(): void {
    this.gBusy.set(this.agentCounts.get('working') ?? 0);
    this.gIdle.set(this.agentCounts.get('idle') ?? 0);
  }

  private setModes(orchestration: string, rollout: RolloutMode, pendingSwitch: string | null): void {
    this.modes = { orchestration, rollout, pendingSwitch };
    this.gOrchestration.reset();
    this.gOrchestration.set({ mode: orchestration }, 1);
    this.gRollout.reset();
    this.gRollout.set({ mode: rollout }, 1);
    this.gPendingSwitch.reset();
    if (pendingSwitch) this.gPendingSwitch.set({ mode: pendingSwitch }, 1);
  }

  /**
   * What one history entry means for the counters and timings. `prevStage` is the stage the task
   * was in before it; `at` is when it happened; `viaHistory` is set when the entry was read from a
   * refreshed state (a follower), where handoffs end at the assignment for want of `agent:started`.
   */
  private applyEntry(taskId: string, prevStage: string, h: HistoryEntry, at: number, viaHistory: boolean): void {
    this.cTransitions.inc({ event: h.event });
    const outcome = LEAVING[h.event];
    if (outcome && h.from === 'working') {
      const w = this.working.get(taskId);
      this.working.delete(taskId);
      if (w) {
        const seconds = Math.max(0, (at - w.at) / 1000);
        this.hStage.observe({ stage: w.stage, outcome }, seconds);
        this.recentStages.push({ at, taskId, stage: w.stage, outcome, seconds });
      }
    }
    switch (h.event) {
      case 'assign': {
        this.cAttempts.inc({ stage: h.stage });
        this.counts.attempts++;
        this.working.set(taskId, { stage: h.stage, at });
        if (viaHistory) this.endHandoff(taskId, h.stage, at);
        break;
      }
      case 'complete':
        this.counts.stagesCompleted++;
        this.series.addStageCompleted(this.now());
        if (h.to === 'queued') this.handoffs.set(taskId, { from: prevStage, to: h.stage, at });
        break;
      case 'changes_requested':
        this.handoffs.set(taskId, { from: prevStage, to: h.stage, at });
        break;
      case 'conflict':
        this.cConflicts.inc();
        this.counts.conflicts++;
        this.handoffs.set(taskId, { from: 'merge', to: h.stage, at });
        break;
      case 'fail':
        this.cRetries.inc({ stage: prevStage });
        this.counts.retries++;
        break;
      case 'merged':
        this.cMerges.inc();
        this.counts.merged++;
        this.series.addMerged(this.now());
        break;
      case 'block':
      case 'cancel':
      case 'unblock':
        this.handoffs.delete(taskId);
        break;
    }
  }

  private endHandoff(taskId: string, stage: string, at: number): void {
    const h = this.handoffs.get(taskId);
    if (!h) return;
    this.handoffs.delete(taskId);
    if (h.to !== stage) return;
    const seconds = Math.max(0, (at - h.at) / 1000);
    this.hHandoff.observe({ from_stage: h.from, to_stage: h.to }, seconds);
    this.recentHandoffs.push({ at, taskId, stage: h.from, toStage: h.to, seconds });
  }

  /**
   * A follower's catch-up after a refresh (and anyone's after the store was reopened on a change of
   * leadership): compare each task and agent with what was known and apply the difference.
   */
  private resync(): void {
    this.series.advance(this.now());
    const state = this.source.state;
    const seen = new Set<string>();
    for (const t of Object.values(state.tasks)) {
      seen.add(t.id);
      const k = this.known.get(t.id);
      if (k && k.status === t.status && k.stage === t.stage && k.history === t.history.length) continue;
      if (!k) {
        this.cAdded.inc();
        this.counts.added++;
      }
      const from = k ? Math.min(k.history, t.history.length) : 0;
      let prevStage = k?.stage ?? t.history[0]?.stage ?? t.stage;
      for (let i = from; i < t.history.length; i++) {
        const h = t.history[i]!;
        const at = Date.parse(h.at);
        this.applyEntry(t.id, prevStage, h, Number.isFinite(at) ? at : this.now(), true);
        prevStage = h.stage;
      }
      this.moveTask(t.id, t.status, t.stage, t.history.length);
    }
    for (const [id, k] of this.known) {
      if (seen.has(id)) continue;
      this.bumpTask(k.status, k.stage, -1);
      this.known.delete(id);
      this.working.delete(id);
      this.handoffs.delete(id);
    }
    const agents = state.agents;
    for (const id of [...this.knownAgents.keys()]) {
      const a = agents[id];
      const k = this.knownAgents.get(id)!;
      if (!a || a.status !== k.status || a.role !== k.role) this.agentLeft(id);
    }
    for (const a of Object.values(agents)) if (!this.knownAgents.has(a.id)) this.agentArrived(a);
    this.updateAgentTotals();
    if (
      state.orchestration_mode !== this.modes.orchestration ||
      state.mode !== this.modes.rollout ||
      state.pending_switch !== this.modes.pendingSwitch
    ) {
      this.setModes(state.orchestration_mode, state.mode, state.pending_switch);
    }
  }

  // ------------------------------------------------------------------------------------------
  // The events.

  private subscribe(): void {
    const ev = this.source.events;
    // A handler returns false when nothing changed (no onDidChange then).
    const on = <K extends keyof PipelineEventMap & string>(type: K, fn: (e: PipelineEventMap[K]) => void | boolean) => {
      this.subs.push(
        ev.on(type, (e) => {
          if (this.disposed) return;
          this.series.advance(this.now());
          if (fn(e) !== false) this.changed.fire();
        }),
      );
    };
    on('task:added', ({ task }) => {
      this.cAdded.inc();
      this.counts.added++;
      this.moveTask(task.id, task.status, task.stage, task.history.length);
    });
    on('task:transition', ({ before, after }) => {
      const known = this.known.get(after.id);
      const from = known ? Math.min(known.history, after.history.length) : before.history.length;
      let prevStage = before.stage;
      for (let i = from; i < after.history.length; i++) {
        const h = after.history[i]!;
        this.applyEntry(after.id, prevStage, h, this.now(), false);
        prevStage = h.stage;
      }
      this.moveTask(after.id, after.status, after.stage, after.history.length);
    });
    on('agent:added', ({ agent }) => {
      this.agentArrived(agent);
      this.updateAgentTotals();
    });
    on('agent:removed', ({ agent }) => {
      this.agentLeft(agent.id);
      this.updateAgentTotals();
    });
    on('agent:changed', ({ after }) => {
      this.agentLeft(after.id);
      this.agentArrived(after);
      this.updateAgentTotals();
    });
    on('agent:started', (e) => {
      this.cAgentStarts.inc({ stage: e.stage });
      this.endHandoff(e.taskId, e.stage, e.at);
    });
    on('agent:exited', (e) => this.cAgentExits.inc({ agent: e.agentId, result: e.marker ? 'marker' : 'no_marker' }));
    on('check:finished', (e) => {
      this.cChecks.inc({ stage: e.stage, result: e.passed ? 'passed' : 'failed' });
      this.hCheck.observe({ stage: e.stage }, e.durationMs / 1000);
      if (e.passed) this.counts.checksPassed++;
      else this.counts.checksFailed++;
    });
    on('merge:finished', (e) => this.hMerge.observe({ result: e.commit ? 'merged' : 'conflict' }, e.durationMs / 1000));
    on('mode:orchestration', (e) => this.setModes(e.to, this.modes.rollout, null));
    on('mode:switchPending', (e) => this.setModes(this.modes.orchestration, this.modes.rollout, e.to));
    on('mode:rollout', (e) => this.setModes(this.modes.orchestration, e.to, this.modes.pendingSwitch));
    on('monitor:warning', () => this.cWarnings.inc());
    // The store was reopened: whatever happened meanwhile is in the state, not in events.
    on('leader:acquired', () => this.resync());
    on('leader:lost', () => this.resync());
    on('state:changed', () => {
      // A leader has seen every change as events already.
      if (this.source.isLeader) return false;
      this.resync();
    });
    this.subs.push(
      ev.onAny((e) => {
        if (!this.disposed) this.cEvents.inc({ event: String(e.type) });
      }),
    );
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.subs) s.dispose();
    this.subs.length = 0;
    this.changed.dispose();
    this.registry.clear();
  }
}
