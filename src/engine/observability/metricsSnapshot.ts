import type { AgentStatus, RolloutMode, TaskStatus, UsageTotals } from '../model/schema';
import type { LeaderInfo } from '../store/leaderLease';

/**
 * The metrics snapshot: what `/snapshot.json` serves and the metrics panel draws, as one plain
 * JSON-able object (`PipelineMetrics.metricsSnapshot()` builds it). Types only, so the webview page
 * that imports them bundles no engine code.
 */
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
  counters: MetricsCounters;
  modes: { orchestration: string; rollout: RolloutMode; pendingSwitch: string | null };
  isLeader: boolean;
  leader: (LeaderInfo & { uptimeSeconds: number }) | null;
  storeWarnings: string[];
  /** The most recent stage durations and handoff latencies, oldest first. */
  recent: { stages: DurationSample[]; handoffs: DurationSample[] };
  /**
   * Tokens and cost of every recorded attempt (the figures of `status --json`): in total, by stage,
   * and of the merged tasks together; `unpriced` counts model uses that had no price.
   */
  usage: {
    total: UsageTotals;
    byStage: Record<string, UsageTotals>;
    merged: { tasks: number; costUsd: number };
    unpriced: number;
  };
}

export interface MetricsCounters {
  added: number;
  attempts: number;
  retries: number;
  merged: number;
  conflicts: number;
  checksPassed: number;
  checksFailed: number;
  stagesCompleted: number;
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
