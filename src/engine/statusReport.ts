import { tasksAwaitingReview } from './model/humanStage';
import type { PipelineConfig } from './model/configSchema';
import type { PipelineState, Task } from './model/schema';
import type { LeaderInfo } from './store/leaderLease';
import type { AgentProgress } from './progress/progressBoard';
import { usageSummary, type UsageSummary } from './usage/usageSummary';
import { NO_WORKERS, type WorkersStatus } from './workers/workerStatus';

/**
 * The state as `pipeline status --json` prints it: the seed's shape and words (`version`,
 * `orchestration_mode`, `mode`, `tasks`, `agents`, `queues{unassigned, <one per stage>, blocked,
 * completed}`), plus who leads and what is wrong. Queues are derived from the tasks, never stored, so
 * they cannot disagree with them. The workers' part (`workers`, `agent_workers`, `waiting_for_workers`,
 * `offers_not_taken`; workers/workerStatus.ts) is always there, empty on a pipeline kept in files.
 */
export interface StatusReport extends WorkersStatus {
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
   * What each working agent does now (its step, tokens and cost so far), as the leader last published
   * it; only agents the state shows at work on the same task (a file left by a leader that died says nothing).
   */
  progress: Record<string, AgentProgress>;
  /** Tokens and cost of every recorded attempt, in total and by stage, agent and model. */
  usage: Omit<UsageSummary, 'byAgentModel'>;
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
  progress: Record<string, AgentProgress> = {},
  workers: WorkersStatus = NO_WORKERS,
): StatusReport {
  const { byAgentModel, ...usage } = usageSummary(state);
  void byAgentModel; // Prometheus's breakdown; the agents and models apart say the same here.
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
    progress: currentProgress(state, progress),
    usage,
    awaiting_review: tasksAwaitingReview(state.tasks, config),
    warnings: [...warnings],
    ...workers,
  };
}

/** The progress of agents that still work on the task it is about, in agent order. */
export function currentProgress(
  state: PipelineState,
  progress: Record<string, AgentProgress>,
): Record<string, AgentProgress> {
  const out: Record<string, AgentProgress> = {};
  for (const id of Object.keys(progress).sort()) {
    const p = progress[id]!;
    const agent = state.agents[id];
    if (agent?.status === 'working' && agent.current_task === p.taskId) out[id] = p;
  }
  return out;
}
