import type { HistoryEntry, PipelineState, RolloutMode, Task } from '../model/schema';
import type { PipelineConfig } from '../model/configSchema';
import type { DurationSample, MetricsCounters, MetricsSnapshot, StageOutcome } from './metricsSnapshot';
import type { PrometheusMetrics } from './prometheusMetrics';
import { StatusCounts } from './statusCounts';
import { Ring, TimeSeries } from './timeSeries';

/**
 * The bookkeeping behind the metrics: the levels (tasks by status and stage, agents by status, in
 * `statusCounts.ts`), since when each task works or waits for its next agent, the counters and the
 * time series. Every change goes to the Prometheus metrics and the snapshot's figures at once.
 *
 * It is fed two ways. A leader sees every change as an event (`taskAdded`, `taskTransition`, the
 * agents' events on `levels`). A follower sees no transitions, only a refreshed state: `resync`
 * compares each task and agent with what it knew (one pass over the tasks) and reads the new
 * history entries for what happened in between; their timestamps give durations, and its handoff
 * latency ends at the `assign` for want of `agent:started`. Both paths meet in `applyEntry`.
 */

/** What the ledger reads of the pipeline. */
export interface LedgerSource {
  readonly state: Readonly<PipelineState>;
  readonly config: PipelineConfig;
}

/** The stage outcome of a history entry that takes a task out of `working`. */
const LEAVING: Partial<Record<HistoryEntry['event'], StageOutcome>> = {
  complete: 'completed',
  changes_requested: 'changes_requested',
  fail: 'failed',
  block: 'blocked',
  requeue: 'requeued',
  cancel: 'cancelled',
};

export class MetricsLedger {
  /** Tasks by status and stage, agents by status. */
  readonly levels: StatusCounts;
  /** Tasks being worked: since when, at which stage. */
  private readonly working = new Map<string, { stage: string; at: number }>();
  /** Tasks handed on to a stage whose agent has not started yet. */
  private readonly handoffs = new Map<string, { from: string; to: string; at: number }>();
  private readonly recentStages: Ring<DurationSample>;
  private readonly recentHandoffs: Ring<DurationSample>;
  /** Counters since the ledger was created. */
  readonly counts: MetricsCounters = {
    added: 0,
    attempts: 0,
    retries: 0,
    merged: 0,
    conflicts: 0,
    checksPassed: 0,
    checksFailed: 0,
    stagesCompleted: 0,
  };
  modes: MetricsSnapshot['modes'];
  /** Merges, completed stages, queue depth and utilisation over time, read from the counts above. */
  readonly series: TimeSeries;

  constructor(
    private readonly source: LedgerSource,
    private readonly prom: PrometheusMetrics,
    private readonly now: () => number,
    o: { intervalMs: number; windowMs: number; recent: number },
  ) {
    this.levels = new StatusCounts(source, prom);
    const levels = this.levels;
    this.series = new TimeSeries(
      o.intervalMs,
      o.windowMs,
      { busy: () => levels.busyAgents(), agents: () => levels.agentTotal(), queueDepth: () => levels.queueDepth() },
      now(),
    );
    this.recentStages = new Ring(o.recent);
    this.recentHandoffs = new Ring(o.recent);
    const state = source.state;
    for (const t of Object.values(state.tasks)) this.recoverTiming(t);
    this.modes = { orchestration: state.orchestration_mode, rollout: state.mode, pendingSwitch: state.pending_switch };
    this.setModes(state.orchestration_mode, state.mode, state.pending_switch);
  }

  recent(): MetricsSnapshot['recent'] {
    return { stages: this.recentStages.toArray(), handoffs: this.recentHandoffs.toArray() };
  }

  // ------------------------------------------------------------------------------------------
  // The leader's path: events.

  taskAdded(task: Task): void {
    this.prom.added.inc();
    this.counts.added++;
    this.levels.moveTask(task.id, task.status, task.stage, task.history.length);
  }

  taskTransition(before: Task, after: Task): void {
    const known = this.levels.knownTask(after.id);
    const from = known ? Math.min(known.history, after.history.length) : before.history.length;
    let prevStage = before.stage;
    for (let i = from; i < after.history.length; i++) {
      const h = after.history[i]!;
      this.applyEntry(after.id, prevStage, h, this.now(), false);
      prevStage = h.stage;
    }
    this.levels.moveTask(after.id, after.status, after.stage, after.history.length);
  }

  agentStarted(taskId: string, stage: string, at: number): void {
    this.prom.agentStarts.inc({ stage });
    this.endHandoff(taskId, stage, at);
  }

  checkFinished(stage: string, passed: boolean, durationMs: number): void {
    this.prom.checks.inc({ stage, result: passed ? 'passed' : 'failed' });
    this.prom.checkDuration.observe({ stage }, durationMs / 1000);
    if (passed) this.counts.checksPassed++;
    else this.counts.checksFailed++;
  }

  setModes(orchestration: string, rollout: RolloutMode, pendingSwitch: string | null): void {
    this.modes = { orchestration, rollout, pendingSwitch };
    this.prom.setModes(orchestration, rollout, pendingSwitch);
  }

  // ------------------------------------------------------------------------------------------
  // The follower's path: a refreshed state.

  /**
   * A follower's catch-up after a refresh (and anyone's after the store was reopened on a change of
   * leadership): compare each task and agent with what was known and apply the difference.
   */
  resync(): void {
    this.series.advance(this.now());
    const state = this.source.state;
    const seen = new Set<string>();
    for (const t of Object.values(state.tasks)) {
      seen.add(t.id);
      const k = this.levels.knownTask(t.id);
      if (k && k.status === t.status && k.stage === t.stage && k.history === t.history.length) continue;
      if (!k) {
        this.prom.added.inc();
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
      this.levels.moveTask(t.id, t.status, t.stage, t.history.length);
    }
    for (const id of this.levels.forgetTasksExcept(seen)) {
      this.working.delete(id);
      this.handoffs.delete(id);
    }
    this.levels.syncAgents(state.agents);
    const m = this.modes;
    if (
      state.orchestration_mode !== m.orchestration ||
      state.mode !== m.rollout ||
      state.pending_switch !== m.pendingSwitch
    ) {
      this.setModes(state.orchestration_mode, state.mode, state.pending_switch);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Both paths.

  /**
   * What one history entry means for the counters and timings. `prevStage` is the stage the task
   * was in before it; `at` is when it happened; `viaHistory` is set when the entry was read from a
   * refreshed state (a follower), where handoffs end at the assignment for want of `agent:started`.
   */
  private applyEntry(taskId: string, prevStage: string, h: HistoryEntry, at: number, viaHistory: boolean): void {
    this.prom.transitions.inc({ event: h.event });
    const outcome = LEAVING[h.event];
    if (outcome && h.from === 'working') {
      const w = this.working.get(taskId);
      this.working.delete(taskId);
      if (w) {
        const seconds = Math.max(0, (at - w.at) / 1000);
        this.prom.stageDuration.observe({ stage: w.stage, outcome }, seconds);
        this.recentStages.push({ at, taskId, stage: w.stage, outcome, seconds });
      }
    }
    switch (h.event) {
      case 'assign': {
        this.prom.attempts.inc({ stage: h.stage });
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
        this.prom.conflicts.inc();
        this.counts.conflicts++;
        this.handoffs.set(taskId, { from: 'merge', to: h.stage, at });
        break;
      case 'fail':
        this.prom.retries.inc({ stage: prevStage });
        this.counts.retries++;
        break;
      case 'merged':
        this.prom.merges.inc();
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
    this.prom.handoffLatency.observe({ from_stage: h.from, to_stage: h.to }, seconds);
    this.recentHandoffs.push({ at, taskId, stage: h.from, toStage: h.to, seconds });
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
}
