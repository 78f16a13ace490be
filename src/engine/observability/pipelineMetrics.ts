import type { Registry } from 'prom-client';
import { Emitter, type Disposable, type Event, type TypedEvents } from '../model/events';
import type { PipelineEventMap } from '../model/pipelineEvents';
import type { PipelineConfig } from '../model/configSchema';
import type { PipelineState } from '../model/schema';
import type { LeaderInfo } from '../store/leaderLease';
import { usageSummary } from '../usage/usageSummary';
import type { WorkersStatus } from '../workers/workerStatus';
import { MetricsLedger } from './metricsLedger';
import type { MetricsSnapshot } from './metricsSnapshot';
import { leaderUptimeSeconds, PrometheusMetrics } from './prometheusMetrics';

/**
 * The pipeline's metrics: what `/metrics` and `/snapshot.json` serve and the metrics panel draws.
 * `attach` subscribes to a pipeline's events; the pieces have files of their own:
 *
 * - `prometheusMetrics.ts` declares every Prometheus metric, in a registry of this pipeline's own;
 * - `statusCounts.ts` keeps the levels: tasks by status and stage, agents by status;
 * - `metricsLedger.ts` keeps the timings and counters, from events (a leader) or from a refreshed
 *   state (a follower), and moves the Prometheus metrics with them;
 * - `timeSeries.ts` keeps the short history the panel draws;
 * - `metricsSnapshot.ts` is the JSON shape of the snapshot.
 *
 * Only the leader sees agents start, checks and merges run; those metrics stay at zero elsewhere.
 */

/** What the metrics read of a pipeline: `Pipeline` has all of it. */
export interface MetricsSource {
  readonly events: TypedEvents<PipelineEventMap>;
  readonly state: Readonly<PipelineState>;
  readonly config: PipelineConfig;
  readonly isLeader: boolean;
  readonly leader: LeaderInfo | null;
  readonly storeWarnings: readonly string[];
  /** A pipeline in PostgreSQL also has workers, read when scraped (`workerMetrics.ts`). */
  readonly storeLocation?: { readonly kind: string };
  readonly workers?: () => Promise<WorkersStatus>;
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

export class PipelineMetrics implements Disposable {
  private readonly prom: PrometheusMetrics;
  private readonly ledger: MetricsLedger;
  private readonly now: () => number;
  private readonly subs: Disposable[] = [];
  private readonly changed = new Emitter<void>();
  private disposed = false;

  /** Starts collecting from `source` (a `Pipeline`); `dispose` stops. */
  static attach(source: MetricsSource, opts: PipelineMetricsOptions = {}): PipelineMetrics {
    return new PipelineMetrics(source, opts);
  }

  private constructor(
    private readonly source: MetricsSource,
    opts: PipelineMetricsOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.prom = new PrometheusMetrics(source, this.now, opts.processMetrics !== false);
    this.ledger = new MetricsLedger(source, this.prom, this.now, {
      intervalMs: opts.intervalMs ?? 5_000,
      windowMs: opts.windowMs ?? 30 * 60_000,
      recent: opts.recent ?? 100,
    });
    this.subscribe();
  }

  /** The registry every metric of this pipeline is in (and the process metrics, unless turned off). */
  get registry(): Registry {
    return this.prom.registry;
  }

  /** The Prometheus text exposition of the registry. */
  metricsText(): Promise<string> {
    return this.prom.registry.metrics();
  }

  /** The content type of `metricsText()`. */
  get contentType(): string {
    return this.prom.registry.contentType;
  }

  /** Fires after every event that changed a figure (synchronously; throttle when redrawing). */
  get onDidChange(): Event<void> {
    return this.changed.event;
  }

  /** The time series and the current figures, for the metrics panel and `/snapshot.json`. */
  metricsSnapshot(): MetricsSnapshot {
    const now = this.now();
    const l = this.ledger;
    const leader = this.source.leader;
    const u = usageSummary(this.source.state);
    return {
      at: now,
      intervalMs: l.series.intervalMs,
      windowMs: l.series.windowMs,
      stages: this.source.config.stages.map((s) => s.name),
      series: l.series.points(now),
      tasks: l.levels.tasks(),
      agents: l.levels.agents(),
      counters: { ...l.counts },
      modes: { ...l.modes },
      isLeader: this.source.isLeader,
      leader: leader ? { ...leader, uptimeSeconds: leaderUptimeSeconds(leader, now) } : null,
      storeWarnings: [...this.source.storeWarnings],
      recent: l.recent(),
      usage: { total: u.total, byStage: u.byStage, merged: u.merged, unpriced: u.unpriced },
    };
  }

  private subscribe(): void {
    const ev = this.source.events;
    const l = this.ledger;
    // A handler returns false when nothing changed (no onDidChange then).
    const on = <K extends keyof PipelineEventMap & string>(type: K, fn: (e: PipelineEventMap[K]) => void | boolean) => {
      this.subs.push(
        ev.on(type, (e) => {
          if (this.disposed) return;
          l.series.advance(this.now());
          if (fn(e) !== false) this.changed.fire();
        }),
      );
    };
    on('task:added', ({ task }) => l.taskAdded(task));
    on('task:transition', ({ before, after }) => l.taskTransition(before, after));
    // Rare (a person removing a task not started): the catch-up from the state forgets it.
    on('task:removed', () => l.resync());
    on('agent:added', ({ agent }) => l.levels.addAgent(agent));
    on('agent:removed', ({ agent }) => l.levels.removeAgent(agent.id));
    on('agent:changed', ({ after }) => l.levels.changeAgent(after));
    on('agent:started', (e) => l.agentStarted(e.taskId, e.stage, e.at));
    on('agent:exited', (e) =>
      this.prom.agentExits.inc({ agent: e.agentId, result: e.marker ? 'marker' : 'no_marker' }),
    );
    on('check:finished', (e) => l.checkFinished(e.stage, e.passed, e.durationMs));
    on('merge:finished', (e) =>
      this.prom.mergeDuration.observe({ result: e.commit ? 'merged' : 'conflict' }, e.durationMs / 1000),
    );
    on('mode:orchestration', (e) => l.setModes(e.to, l.modes.rollout, null));
    on('mode:switchPending', (e) => l.setModes(l.modes.orchestration, l.modes.rollout, e.to));
    on('mode:rollout', (e) => l.setModes(l.modes.orchestration, e.to, l.modes.pendingSwitch));
    on('monitor:warning', () => this.prom.monitorWarnings.inc());
    // The store was reopened: whatever happened meanwhile is in the state, not in events.
    on('leader:acquired', () => l.resync());
    on('leader:lost', () => l.resync());
    on('state:changed', () => {
      // A leader has seen every change as events already.
      if (this.source.isLeader) return false;
      l.resync();
    });
    this.subs.push(
      ev.onAny((e) => {
        if (!this.disposed) this.prom.events.inc({ event: String(e.type) });
      }),
    );
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.subs) s.dispose();
    this.subs.length = 0;
    this.changed.dispose();
    this.prom.registry.clear();
  }
}
