import { tasksAwaitingReview } from './model/humanStage';
import type { PipelineConfig, PipelineState, Task } from './model/schema';
import type { LeaderInfo } from './store/leaderLease';

/**
 * The state as `pipeline status --json` prints it: the seed's shape and words (`version`,
 * `orchestration_mode`, `mode`, `tasks`, `agents`, `queues{unassigned, <one per stage>, blocked,
 * completed}`), plus who leads and what is wrong. Queues are derived from the tasks, never stored, so
 * they cannot disagree with them.
 */
export interface StatusReport {
  version: string;
  orchestration_mode: string;
  mode: string;
  pending_switch: string | null;
  current_task: string | null;
  leader: LeaderInfo | null;
  tasks: PipelineState['tasks'];
  agents: PipelineState['agents'];
  queues: Record<string, string[]>;
  counts: Record<string, number>;
  /** Tasks queued at a human stage, waiting for `pipeline review` (model/humanStage.ts), oldest first. */
  awaiting_review: string[];
  /**
   * What a person should know about the state: damaged or lost journal records, a missing state
   * directory, requests moved aside. Empty when all is well; scripts can test its length.
   */
  warnings: string[];
}

export function queuesOf(state: PipelineState, config: PipelineConfig): Record<string, string[]> {
  const queues: Record<string, string[]> = { unassigned: [] };
  for (const s of config.stages) queues[s.name] = [];
  queues.merging = [];
  queues.blocked = [];
  queues.completed = [];
  queues.cancelled = [];
  const sorted = Object.values(state.tasks).sort((a, b) => a.seq - b.seq);
  for (const t of sorted) queueOf(t, queues).push(t.id);
  return queues;
}

function queueOf(t: Task, q: Record<string, string[]>): string[] {
  switch (t.status) {
    case 'pending':
      return q.unassigned!;
    case 'queued':
    case 'working':
      return (q[t.stage] ??= []);
    case 'merging':
      return q.merging!;
    case 'blocked':
      return q.blocked!;
    case 'done':
      return q.completed!;
    case 'cancelled':
      return q.cancelled!;
  }
}

export function statusReport(
  state: PipelineState,
  config: PipelineConfig,
  leader: LeaderInfo | null,
  warnings: readonly string[] = [],
): StatusReport {
  const counts: Record<string, number> = {};
  for (const t of Object.values(state.tasks)) counts[t.status] = (counts[t.status] ?? 0) + 1;
  return {
    version: state.version,
    orchestration_mode: state.orchestration_mode,
    mode: state.mode,
    pending_switch: state.pending_switch,
    current_task: state.current_task,
    leader,
    tasks: state.tasks,
    agents: state.agents,
    queues: queuesOf(state, config),
    counts,
    awaiting_review: tasksAwaitingReview(state.tasks, config),
    warnings: [...warnings],
  };
}
