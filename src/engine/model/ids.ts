import { PipelineError } from '../errors';

/**
 * Ids become branch names (`pipeline/TASK-001`), file names and arguments of git commands, so they
 * are validated before they are used anywhere and never taken raw from input.
 */

/** `TASK-001`, `TM-12`, `TM-12.3` (a Task Master subtask): a prefix, a dash, numbers with dots. */
export const TASK_ID_PATTERN = /^[A-Z][A-Z0-9]{0,15}-[0-9]{1,9}(\.[0-9]{1,9}){0,4}$/;
/** Agent ids and role names: lower case, digits and dashes, starting with a letter. */
export const NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

export function isTaskId(s: string): boolean {
  return TASK_ID_PATTERN.test(s);
}

export function assertTaskId(s: string, where = 'task id'): string {
  if (!isTaskId(s)) {
    throw new PipelineError('invalid-id', `Invalid task id ${JSON.stringify(s)}.`, {
      where,
      fix: 'Use an upper-case prefix, a dash and a number, such as TASK-001 (subtasks: TASK-001.2).',
    });
  }
  return s;
}

export function isName(s: string): boolean {
  return NAME_PATTERN.test(s);
}

export function assertName(s: string, what: 'agent id' | 'role' | 'stage', where: string = what): string {
  if (!isName(s)) {
    throw new PipelineError('invalid-id', `Invalid ${what} ${JSON.stringify(s)}.`, {
      where,
      fix: 'Use lower-case letters, digits and dashes, starting with a letter (at most 32 characters), such as "implementer-2".',
    });
  }
  return s;
}

/** The branch a task's work lives on. */
export function taskBranch(taskId: string): string {
  return `pipeline/${assertTaskId(taskId)}`;
}

/** Formats the n-th generated id with a prefix: `TASK-007`. */
export function formatTaskId(prefix: string, n: number): string {
  return `${prefix}-${String(n).padStart(3, '0')}`;
}
