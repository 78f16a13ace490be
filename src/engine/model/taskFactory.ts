import { PipelineError } from '../errors';
import { formatTaskId, taskBranch } from './ids';
import { describeZodError, taskSpecSchema, type PipelineState, type Task, type TaskSpec } from './schema';
import { type PipelineConfig } from './configSchema';

/**
 * Turns what a user or an import gives (a TaskSpec) into a Task as stored: validated, with an id
 * (generated when absent), its branch, its first stage and empty history.
 */

/** A task to add, optionally in a status other than pending (an import of finished work). */
export interface NewTask {
  spec: TaskSpec;
  status?: 'pending' | 'done' | 'cancelled' | 'blocked';
  reason?: string;
  /** Where it came from, for error messages: "argument", "tasks.json master.tasks[3]". */
  source?: string;
}

/**
 * What is wrong with a task's path (a glob such as `src/config/**`), or undefined when it is fine.
 * Paths are relative to the repository root and stay inside it: they are matched against the files
 * a task touches there, so `/etc/**` or `../other/**` could never match and would only mislead the
 * conflict check. The one rule for the CLI, the editor's Add Task and imports alike.
 */
export function taskPathProblem(path: string): string | undefined {
  const p = path.trim();
  if (!p) return 'a path is empty';
  if (p.startsWith('/') || p.startsWith('\\') || /^[A-Za-z]:/.test(p) || p.startsWith('~'))
    return `${JSON.stringify(p)} is not relative to the repository root`;
  let depth = 0;
  for (const segment of p.split(/[\\/]/)) {
    if (segment === '..') depth--;
    else if (segment !== '.' && segment !== '') depth++;
    if (depth < 0) return `${JSON.stringify(p)} leaves the repository (through "..")`;
  }
  return undefined;
}

/** Throws for the first path that breaks the rule above, naming the argument or field (`where`). */
export function assertTaskPaths(
  paths: readonly string[],
  where: string,
  code: 'invalid-task' | 'usage' = 'invalid-task',
): void {
  for (const path of paths) {
    const problem = taskPathProblem(path);
    if (problem) {
      throw new PipelineError(code, `Invalid task path: ${problem}.`, {
        where,
        fix: 'Give globs relative to the repository root that stay inside it, such as src/config/** or docs/*.md.',
      });
    }
  }
}

export function buildTasks(
  items: readonly NewTask[],
  state: PipelineState,
  config: PipelineConfig,
  at: string,
): Task[] {
  let nextNumber = state.next_task_number;
  let seq = state.next_seq;
  const taken = new Set<string>();
  const firstStage = config.stages[0]?.name ?? 'architect';
  return items.map((item, i) => {
    const r = taskSpecSchema.safeParse(item.spec);
    const where = item.source ?? `task ${i + 1}`;
    if (!r.success) {
      throw new PipelineError('invalid-task', `Invalid task (${where}): ${describeZodError(r.error)}.`, {
        where,
        fix: 'Correct the task and add it again.',
      });
    }
    const spec = r.data;
    assertTaskPaths(spec.paths, `${where}, paths`);
    let id = spec.id;
    if (!id) {
      do id = formatTaskId(config.taskPrefix, nextNumber++);
      while (state.tasks[id] || taken.has(id));
    }
    if (state.tasks[id] || taken.has(id)) {
      throw new PipelineError('duplicate-id', `Task ${id} exists already (${where}).`, {
        where,
        fix: 'Choose another id, or leave it out to have one generated.',
      });
    }
    taken.add(id);
    const status = item.status ?? 'pending';
    const task: Task = {
      id,
      title: spec.title,
      description: spec.description,
      prerequisites: [...new Set(spec.prerequisites)],
      priority: spec.priority,
      paths: spec.paths,
      labels: spec.labels,
      status,
      stage: firstStage,
      assigned_to: null,
      branch: taskBranch(id),
      attempt: 0,
      failures: 0,
      not_before: null,
      blocked_reason: status === 'blocked' ? (item.reason ?? 'imported as blocked') : null,
      created_at: at,
      updated_at: at,
      seq: seq++,
      merged_commit: null,
      history:
        status === 'pending'
          ? []
          : [
              {
                at,
                event: 'import',
                from: 'pending',
                to: status,
                stage: firstStage,
                note: item.reason ?? `imported as ${status}`,
              },
            ],
    };
    return task;
  });
}
