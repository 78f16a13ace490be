import { PipelineError } from '../errors';
import { formatTaskId, taskBranch } from './ids';
import {
  describeZodError,
  taskSpecSchema,
  type PipelineConfig,
  type PipelineState,
  type Task,
  type TaskSpec,
} from './schema';

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
