import type { Agent, AttemptUsage, RolloutMode, Task } from './schema';
import type { TaskEvent } from './taskLifecycle';
import type { LeaderInfo } from '../store/leaderLease';
import type { AgentProgress } from '../progress/progressBoard';
import type { TypedEvents } from './events';
import type { StateBatch } from './stateBatch';

/**
 * Every event the engine emits, one line each. The trees, the status bar, the metrics, the CLI's
 * progress printer and the logs all subscribe here. Events fire after the change is durable.
 */
export interface PipelineEventMap extends Record<string, unknown> {
  /** A task was added (by a person, an import, or the inbox). */
  'task:added': { task: Task };
  /** Any change of a task's status or stage; `event` says which. */
  'task:transition': { before: Task; after: Task; event: TaskEvent };
  /** A task's title, description, priority, paths, labels or prerequisites changed. */
  'task:edited': { task: Task };
  /** A task that had not started was removed (as it was before). */
  'task:removed': { task: Task };
  /** An agent was registered. */
  'agent:added': { agent: Agent };
  /** An agent was removed. */
  'agent:removed': { agent: Agent };
  /** An agent's status or current task changed. */
  'agent:changed': { before: Agent; after: Agent };
  /** The orchestration mode changed (`from` → `to`). */
  'mode:orchestration': { from: string; to: string };
  /** An orchestration switch waits for in-flight work to drain. */
  'mode:switchPending': { to: string; busy: string[] };
  /** The rollout mode changed. */
  'mode:rollout': { from: RolloutMode; to: RolloutMode };
  /** A decision the engine took or, in shadow mode, would have taken. */
  'pipeline:decision': { text: string; shadow: boolean };
  /** The state changed (after any commit): views that redraw everything listen here. */
  'state:changed': { seq: number };
  /** An agent's command was started for a stage of a task (the agent was notified). */
  'agent:started': { agentId: string; taskId: string; stage: string; attempt: number; command: string; at: number };
  /** An agent's command ended; `marker` says whether it left a completion marker. */
  'agent:exited': {
    agentId: string;
    taskId: string;
    attempt: number;
    code: number | null;
    signal: string | null;
    marker: boolean;
  };
  /**
   * What a working agent does now (its step, its last words, its tokens so far); null when its
   * attempt ended. `line` is the step as one readable line, when this news is a new step. Not state:
   * never journaled, only the leader emits it.
   */
  'agent:progress': { agentId: string; progress: AgentProgress | null; line?: string };
  /** What an attempt spent, recorded in the journal ('attempt.usage'). */
  'attempt:usage': { taskId: string; usage: AttemptUsage };
  /** Agents paused by a usage or rate limit of their CLI, until `until` (ISO time). */
  'agent:paused': { agentIds: string[]; until: string; reason: string; taskId: string };
  /** A stage's check command ran; its output is kept in `evidence`. */
  'check:finished': { taskId: string; stage: string; passed: boolean; evidence: string; durationMs: number };
  /** A merge was attempted: `commit` when it landed, `conflicts` when it did not. */
  'merge:finished': { taskId: string; into: string; commit: string | null; conflicts: string[]; durationMs: number };
  /** The monitor has nothing left to do: every task is final, blocked, or waiting on one that is. */
  'monitor:idle': { done: number; blocked: string[]; waiting: string[] };
  /** Something the monitor did on its own that a person may want to know (a worktree created at start). */
  'monitor:info': { message: string };
  /** A problem the monitor handled (a git error, an agent that could not start), for logs and notifications. */
  'monitor:warning': { message: string; taskId?: string; agentId?: string };
  /** This process lost the leadership; it follows read-only from now on. */
  'leader:lost': { leader: LeaderInfo | null };
  /** This process became the leader (at open or by taking over a lapsed lease). */
  'leader:acquired': { leader: LeaderInfo };
}

/** Announces a committed batch's changes, one event each, then the state's new `seq`. */
export function announceBatch(events: TypedEvents<PipelineEventMap>, batch: StateBatch, seq: number): void {
  for (const c of batch.taskChanges) {
    if (!c.before) events.emit('task:added', { task: c.after });
    else if (c.event) events.emit('task:transition', { before: c.before, after: c.after, event: c.event });
    else events.emit('task:edited', { task: c.after });
  }
  for (const t of batch.removedTasks) events.emit('task:removed', { task: t });
  for (const c of batch.agentChanges) {
    if (!c.before && c.after) events.emit('agent:added', { agent: c.after });
    else if (c.before && !c.after) events.emit('agent:removed', { agent: c.before });
    else if (c.before && c.after) events.emit('agent:changed', { before: c.before, after: c.after });
  }
  events.emit('state:changed', { seq });
}
