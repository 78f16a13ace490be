import { PipelineError } from '../errors';
import type { Task, TaskStatus } from './schema';

/**
 * The task lifecycle: documented statuses and one pure transition function.
 *
 * - `pending`   waits for its prerequisites to be merged (or to be released after an unblock).
 * - `queued`    ready for its current `stage`, waiting for an idle agent of that stage's role
 *               (and, after a failure, for `not_before`).
 * - `working`   an agent (`assigned_to`) works on the current stage, attempt number `attempt`.
 * - `merging`   the last stage approved; the engine merges the task's branch.
 * - `blocked`   needs a person: the agent said BLOCKED, retries ran out, or a person blocked it.
 * - `done`      merged into the target (or pilot) branch. Final.
 * - `cancelled` withdrawn by a person. Final.
 *
 * Every change of a task's status goes through `transitionTask`; an event that does not apply to the
 * task's status is an error, never a silent no-op. Stage names are passed in by the caller (the
 * engine knows the configuration), which keeps this function free of anything but its arguments.
 */
export type TaskEvent =
  /** Prerequisites are merged: pending → queued at the task's stage. */
  | { type: 'ready' }
  /** An agent takes the task: queued → working. `attempt` is the new attempt number. */
  | { type: 'assign'; agent: string; attempt: number }
  /** The agent finished its stage: working → queued at `nextStage`, or → merging after the last stage. */
  | { type: 'complete'; nextStage: string | null; note?: string }
  /** The reviewer asked for changes: working → queued at `reworkStage`. */
  | { type: 'changes_requested'; reworkStage: string; reason: string }
  /** An attempt failed and will be retried after `notBefore`: working → queued at the same stage. */
  | { type: 'fail'; reason: string; notBefore: string }
  /** Needs a person: pending, queued, working or merging → blocked. */
  | { type: 'block'; reason: string }
  /**
   * A person released a blocked task, or the monitor did once the infrastructure fault that blocked
   * it was repaired (`reason` says so in the history): blocked → pending (its failures are forgotten).
   */
  | { type: 'unblock'; reason?: string }
  /**
   * In-flight work is put back without counting a failure (a forced mode switch, a lost agent); with
   * `notBefore`, not taken again before then (a git lock another process holds: transient).
   */
  | { type: 'requeue'; reason: string; notBefore?: string }
  /** The merge landed: merging → done. */
  | { type: 'merged'; commit: string }
  /** The merge would conflict: merging → queued at `reworkStage`. */
  | { type: 'conflict'; reworkStage: string; files: string[] }
  /** Withdrawn by a person: any status that is not final → cancelled. */
  | { type: 'cancel'; reason: string };

export type TaskEventType = TaskEvent['type'];

/** For each event, the statuses it applies to. The table is the documentation and the check. */
export const LEGAL_FROM: Record<TaskEventType, readonly TaskStatus[]> = {
  ready: ['pending'],
  assign: ['queued'],
  complete: ['working'],
  changes_requested: ['working'],
  fail: ['working'],
  block: ['pending', 'queued', 'working', 'merging'],
  unblock: ['blocked'],
  requeue: ['working', 'merging'],
  merged: ['merging'],
  conflict: ['merging'],
  cancel: ['pending', 'queued', 'working', 'merging', 'blocked'],
};

export const FINAL_STATUSES: readonly TaskStatus[] = ['done', 'cancelled'];

export function isFinal(status: TaskStatus): boolean {
  return status === 'done' || status === 'cancelled';
}

export function canApply(task: Pick<Task, 'status'>, event: TaskEvent): boolean {
  return LEGAL_FROM[event.type].includes(task.status);
}

/**
 * Returns the task after `event`, with a history entry; throws `illegal-transition` when the event
 * does not apply to the task's status. The input is not modified.
 */
export function transitionTask(task: Task, event: TaskEvent, at: string): Task {
  if (!canApply(task, event)) {
    throw new PipelineError(
      'illegal-transition',
      `Task ${task.id} is ${task.status}; "${event.type}" applies only to ${LEGAL_FROM[event.type].join(', ')} tasks.`,
      {
        where: task.id,
        fix: `Check the task's status with \`pipeline task show ${task.id}\`.`,
      },
    );
  }
  const next: Task = { ...task, updated_at: at };
  let note: string | undefined;
  switch (event.type) {
    case 'ready':
      next.status = 'queued';
      break;
    case 'assign':
      if (event.attempt <= task.attempt) {
        throw new PipelineError(
          'illegal-transition',
          `Task ${task.id}: attempt ${event.attempt} is not after attempt ${task.attempt}.`,
          { where: task.id },
        );
      }
      next.status = 'working';
      next.assigned_to = event.agent;
      next.attempt = event.attempt;
      break;
    case 'complete':
      next.assigned_to = null;
      next.failures = 0;
      next.not_before = null;
      note = event.note;
      if (event.nextStage === null) {
        next.status = 'merging';
      } else {
        next.status = 'queued';
        next.stage = event.nextStage;
      }
      break;
    case 'changes_requested':
      next.status = 'queued';
      next.stage = event.reworkStage;
      next.assigned_to = null;
      next.failures = 0;
      next.not_before = null;
      note = event.reason;
      break;
    case 'fail':
      next.status = 'queued';
      next.assigned_to = null;
      next.failures = task.failures + 1;
      next.not_before = event.notBefore;
      note = event.reason;
      break;
    case 'block':
      next.status = 'blocked';
      next.assigned_to = null;
      next.blocked_reason = event.reason;
      note = event.reason;
      break;
    case 'unblock':
      next.status = 'pending';
      next.blocked_reason = null;
      next.failures = 0;
      next.not_before = null;
      note = event.reason;
      break;
    case 'requeue':
      next.status = 'queued';
      next.assigned_to = null;
      if (event.notBefore !== undefined) next.not_before = event.notBefore;
      note = event.reason;
      break;
    case 'merged':
      next.status = 'done';
      next.merged_commit = event.commit;
      break;
    case 'conflict':
      next.status = 'queued';
      next.stage = event.reworkStage;
      note = `merge conflict in ${event.files.join(', ') || 'unknown files'}`;
      break;
    case 'cancel':
      next.status = 'cancelled';
      next.assigned_to = null;
      note = event.reason;
      break;
  }
  const entry: Task['history'][number] = {
    at,
    event: event.type,
    from: task.status,
    to: next.status,
    stage: next.stage,
  };
  const agent = event.type === 'assign' ? event.agent : task.assigned_to;
  if (agent) entry.agent = agent;
  if (note) entry.note = note;
  next.history = [...task.history, entry];
  return next;
}
