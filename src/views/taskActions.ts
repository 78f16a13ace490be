import type { Task } from '../engine/model/schema';
import { isFinal, LEGAL_FROM } from '../engine/model/taskLifecycle';

/**
 * Which actions of the Tasks tree a task allows, derived from the task lifecycle's table of legal
 * events (src/engine/taskLifecycle.ts) rather than restated: a status that gains or loses an event
 * there gains or loses the menu entry here.
 *
 * The tree writes them into each task's context value, `task` and then the flags that hold
 * (`task canBlock canCancel canReprioritise`), and package.json's `view/item/context` menus test one
 * flag each (`viewItem =~ /\bcanRetry\b/`). The commands' quick picks filter by the same flags. No
 * `vscode` import: a plain-Node test checks every status.
 */
export const TASK_FLAGS = {
  /** Retry a blocked task where it stopped: the lifecycle's `unblock`. */
  canRetry: 'canRetry',
  /** Release a blocked task to wait for its prerequisites again: `unblock`. */
  canUnblock: 'canUnblock',
  /** A person blocks it: `block`. */
  canBlock: 'canBlock',
  /** A person withdraws it: `cancel`. */
  canCancel: 'canCancel',
  /** Its priority still matters: any status that is not final. */
  canReprioritise: 'canReprioritise',
  /** An agent has had it (attempt 1 or later), so a task file exists. */
  hasTaskFile: 'hasTaskFile',
  /** Its title, description, priority, labels and paths may still change: any status that is not final. */
  canEdit: 'canEdit',
  /** It waits for a person's review at a human stage (engine/model/humanStage.ts): Review, Approve, Request Changes. */
  canReview: 'canReview',
} as const;
export type TaskFlag = keyof typeof TASK_FLAGS;

/** The context value of a task that is not a prerequisite row. */
export const TASK_CONTEXT = 'task';

/** `awaitingReview`: whether the task is queued at a human stage, which the status alone does not tell. */
export function taskActions(t: Pick<Task, 'status' | 'attempt'>, awaitingReview = false): Record<TaskFlag, boolean> {
  return {
    canRetry: LEGAL_FROM.unblock.includes(t.status),
    canUnblock: LEGAL_FROM.unblock.includes(t.status),
    canBlock: LEGAL_FROM.block.includes(t.status),
    canCancel: LEGAL_FROM.cancel.includes(t.status),
    canReprioritise: !isFinal(t.status),
    hasTaskFile: t.attempt > 0,
    canEdit: !isFinal(t.status),
    canReview: awaitingReview && t.status === 'queued',
  };
}

/** `task` and the flags that hold, in the order of TASK_FLAGS. */
export function taskContextValue(t: Pick<Task, 'status' | 'attempt'>, awaitingReview = false): string {
  const actions = taskActions(t, awaitingReview);
  return [TASK_CONTEXT, ...Object.values(TASK_FLAGS).filter((f) => actions[f])].join(' ');
}
