import { PipelineError } from '../errors';

/**
 * The attempt lifecycle: one run of one agent on one stage of one task, as the monitor tracks it in
 * memory (the journal records only its start, the task's `assign`, and its outcome).
 *
 * - `preparing`   the worktree is being put on the task's branch and the task file written; no
 *                 process yet.
 * - `running`     the agent's command runs; a completion marker or its exit ends this.
 * - `checking`    the agent wrote COMPLETED and the stage's check command runs.
 * - `committing`  the outcome is known; what the agent left uncommitted is being committed.
 * - `settled`     the outcome is recorded (or nothing is, because the state moved on). Final.
 *
 * Races are part of the table, not special cases in the code: an exit after the marker was read,
 * a second marker read by the rescan, a timeout while the outcome is being committed: each is
 * `ignore`d in the status where it can happen, and every other unexpected event is an error.
 * Every path that ends an attempt (marker, exit, check failure, timeout, stop, requeue, a person's
 * block or cancel) goes through the monitor's one `settle()`.
 */
export type AttemptStatus = 'preparing' | 'running' | 'checking' | 'committing' | 'settled';

export const ATTEMPT_STATUSES: readonly AttemptStatus[] = ['preparing', 'running', 'checking', 'committing', 'settled'];

export type AttemptEvent =
  /** The agent's command started. */
  | { type: 'started' }
  /** A completion marker was read; `check` says whether a check must pass first. */
  | { type: 'marker'; check: boolean }
  /** The check passed (a failed check settles instead). */
  | { type: 'checked' }
  /** The outcome was recorded: the attempt is over. */
  | { type: 'settle' };

export type AttemptEventType = AttemptEvent['type'];

/** What an event does in each status: the next status, or `ignore` for a known, harmless race. */
type Move = AttemptStatus | 'ignore' | 'illegal';

const TABLE: Record<AttemptEventType, Record<AttemptStatus, Move>> = {
  started: { preparing: 'running', running: 'illegal', checking: 'illegal', committing: 'illegal', settled: 'ignore' },
  // A marker read again (the watcher and the rescan both saw it) while it is being applied is ignored.
  marker: { preparing: 'illegal', running: 'committing', checking: 'ignore', committing: 'ignore', settled: 'ignore' },
  checked: {
    preparing: 'illegal',
    running: 'illegal',
    checking: 'committing',
    committing: 'illegal',
    settled: 'ignore',
  },
  // Settling twice is the race of an exit, a timeout and a stop arriving together: the first wins.
  settle: { preparing: 'settled', running: 'settled', checking: 'settled', committing: 'settled', settled: 'ignore' },
};

/**
 * The status after `event`, or null when the event is a known race to ignore. Throws
 * `illegal-transition` for an event that cannot happen in `status` (a bug, never user input).
 */
export function transitionAttempt(status: AttemptStatus, event: AttemptEvent): AttemptStatus | null {
  let move = TABLE[event.type][status];
  if (event.type === 'marker' && move === 'committing' && event.check) move = 'checking';
  if (move === 'ignore') return null;
  if (move === 'illegal') {
    throw new PipelineError('illegal-transition', `An attempt that is ${status} cannot take "${event.type}".`);
  }
  return move;
}

/** Whether an attempt in this status still owns its agent and its task. */
export function isLiveAttempt(status: AttemptStatus): boolean {
  return status !== 'settled';
}
