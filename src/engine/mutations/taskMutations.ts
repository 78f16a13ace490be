import { z } from 'zod';
import { PipelineError } from '../errors';
import { describeZodError, taskSpecSchema, type Task } from '../model/schema';
import type { StateBatch } from '../model/stateBatch';
import { taskEditSchema, type TaskEdit } from '../model/stateRecords';
import { isFinal } from '../model/taskLifecycle';
import { assertTaskPaths, buildTasks, type NewTask } from '../model/taskFactory';
import { idArg, mutation, type MutationHost } from './mutationHost';

/**
 * A person's changes to tasks: adding, editing and removing them, blocking, unblocking, retrying and
 * cancelling. A review's answer is in reviewMutation.ts.
 */

// The envelope is checked here; what is inside (a task's spec) is validated by buildTasks, with the
// messages a person sees for their own input.
const newTaskSchema = z.object({
  spec: z.unknown(),
  status: z.enum(['pending', 'done', 'cancelled', 'blocked']).optional(),
  reason: z.string().optional(),
  source: z.string().optional(),
});

export const addTasks = mutation(z.tuple([z.array(newTaskSchema)]), async (h, [items]) => {
  const batch = h.newBatch();
  const tasks = buildTasks(items as NewTask[], h.state, h.config, batch.at);
  h.scheduler.checkNewTasks(tasks);
  for (const t of tasks) batch.addTask(t);
  await h.commit(batch);
  return tasks;
});

/**
 * Changes a task's fields. New prerequisites must exist and must not close a cycle. A task that
 * has entered the pipeline (queued, working, merging) can only get prerequisites that are merged
 * already, since it cannot go back to waiting; block it first (it waits again once unblocked). A
 * finished task's prerequisites no longer matter and are not changed.
 */
export const editTask = mutation(z.tuple([idArg, taskEditSchema]), async (h, [taskId, raw]): Promise<Task> => {
  const batch = h.newBatch();
  const cur = batch.task(taskId);
  const changes = checkEdit(taskId, raw);
  if (changes.prerequisites) {
    const prerequisites = [...new Set(changes.prerequisites)];
    changes.prerequisites = prerequisites;
    if (isFinal(cur.status) && !sameList(prerequisites, cur.prerequisites))
      throw new PipelineError(
        'illegal-transition',
        `Task ${taskId} is ${cur.status}; its prerequisites no longer matter and are kept as they were.`,
        { where: '--depends-on', fix: 'Leave --depends-on out when editing a finished task.' },
      );
    h.scheduler.checkPrerequisiteEdit(taskId, prerequisites);
    const unmet = prerequisites.filter((p) => h.state.tasks[p]?.status !== 'done');
    const entered = cur.status === 'queued' || cur.status === 'working' || cur.status === 'merging';
    const added = unmet.filter((p) => !cur.prerequisites.includes(p));
    if (entered && added.length > 0)
      throw new PipelineError(
        'illegal-transition',
        `Task ${taskId} has entered the pipeline (${cur.status} at ${cur.stage}), so it cannot wait for ${added.join(', ')}, which ${added.length === 1 ? 'is' : 'are'} not merged yet.`,
        {
          where: '--depends-on',
          fix: `Block it first (\`pipeline task block ${taskId}\`), edit it, then unblock it: it waits for its prerequisites again.`,
        },
      );
  }
  const t = batch.editTask(taskId, changes);
  await h.commit(batch);
  return t;
});

/**
 * Removes a task that no agent has worked on yet (attempt 0; pending, queued or blocked): work
 * that has started has a branch and a history, and is cancelled instead. A task that other
 * unfinished tasks wait for is not removed, and they are named, unless `force`: then it is also
 * taken out of their prerequisites (in the same commit), so they no longer wait for it.
 */
export const removeTask = mutation(
  z.tuple([idArg, z.boolean()]),
  async (h, [taskId, force]): Promise<{ task: Task; released: string[] }> => {
    const batch = h.newBatch();
    const t = batch.task(taskId);
    if (isFinal(t.status))
      throw new PipelineError('illegal-transition', `Task ${taskId} is ${t.status}; finished tasks stay as a record.`, {
        where: taskId,
        fix: 'Nothing to do: it takes no part in scheduling any more.',
      });
    if (t.attempt > 0 || t.status === 'working' || t.status === 'merging')
      throw new PipelineError(
        'illegal-transition',
        `Task ${taskId} has started (${t.status} at ${t.stage}, attempt ${t.attempt}); only a task no agent has worked on can be removed.`,
        {
          where: taskId,
          fix: `Cancel it instead: \`pipeline task cancel ${taskId}\` (its branch and history are kept).`,
        },
      );
    const waiting = h.scheduler.dependentsOf(taskId).filter((d) => !isFinal(batch.task(d).status));
    if (waiting.length > 0 && !force)
      throw new PipelineError(
        'busy',
        `Task ${taskId} cannot be removed: ${waiting.join(', ')} ${waiting.length === 1 ? 'waits' : 'wait'} for it.`,
        {
          where: taskId,
          fix: `Take ${taskId} out of their prerequisites first (\`pipeline task edit ${waiting[0]} --depends-on …\`), or pass --force to do that as part of the removal.`,
        },
      );
    for (const d of waiting)
      batch.editTask(d, { prerequisites: batch.task(d).prerequisites.filter((p) => p !== taskId) });
    const removed = batch.removeTask(taskId);
    await h.commit(batch);
    return { task: removed, released: waiting };
  },
);

export const blockTask = mutation(z.tuple([idArg, z.string()]), async (h, [taskId, reason]) => {
  const batch = h.newBatch();
  freeAgentOf(h, batch, taskId);
  const t = batch.transition(taskId, { type: 'block', reason });
  await h.commit(batch);
  return t;
});

export const unblockTask = mutation(z.tuple([idArg]), async (h, [taskId]) => {
  const batch = h.newBatch();
  const t = batch.transition(taskId, { type: 'unblock' });
  await h.commit(batch);
  return t;
});

/** A blocked task re-enters at the stage where it stopped, with its failures forgotten. */
export const retryTask = mutation(z.tuple([idArg]), async (h, [taskId]) => {
  const batch = h.newBatch();
  const cur = batch.task(taskId);
  if (cur.status !== 'blocked') {
    const { why, fix } = notRetryable(cur);
    throw new PipelineError('illegal-transition', `Task ${taskId} is ${cur.status}: ${why}.`, {
      where: taskId,
      fix,
    });
  }
  const t = batch.transition(taskId, { type: 'unblock' });
  await h.commit(batch);
  return t;
});

export const cancelTask = mutation(z.tuple([idArg, z.string()]), async (h, [taskId, reason]) => {
  const batch = h.newBatch();
  freeAgentOf(h, batch, taskId);
  const t = batch.transition(taskId, { type: 'cancel', reason });
  await h.commit(batch);
  return t;
});

/** Why a task that is not blocked cannot be retried, and what to do instead, by its status. */
function notRetryable(t: Task): { why: string; fix: string } {
  const show = `\`pipeline task show ${t.id}\` says what it waits for`;
  switch (t.status) {
    case 'done':
      return {
        why: `a done task cannot be retried${t.merged_commit ? ` (it was merged as ${t.merged_commit.slice(0, 10)})` : ''}`,
        fix: 'For more work on the same thing, add a new task (`pipeline task add <title>`).',
      };
    case 'cancelled':
      return {
        why: 'a cancelled task cannot be retried',
        fix: 'To do the work after all, add a new task (`pipeline task add <title>`).',
      };
    case 'pending':
      return {
        why: 'it has not started yet (it waits for its prerequisites), so there is nothing to retry',
        fix: `Nothing to do: it starts by itself once its prerequisites are merged; ${show}.`,
      };
    case 'queued':
      return {
        why: `it waits at ${t.stage} for an agent, so there is nothing to retry`,
        fix: `Nothing to do: it starts when an agent is free; ${show}.`,
      };
    case 'working':
      return {
        why: `${t.assigned_to ?? 'an agent'} is working on it at ${t.stage}; only a blocked task can be retried`,
        fix: `Wait for the attempt to end (a failed attempt is retried by itself); to start it over now, block it (\`pipeline task block ${t.id}\`), then retry it.`,
      };
    case 'merging':
      return {
        why: 'it was approved and is being merged; only a blocked task can be retried',
        fix: 'Wait for the merge to end.',
      };
    case 'blocked':
      return { why: 'it is blocked', fix: `Retry it: \`pipeline task retry ${t.id}\`.` };
  }
}

/** A person's edit, checked with the limits a new task has (the journal's record is more lenient). */
const spec = taskSpecSchema.shape;
// Each field without its default: a field left out of an edit is left as it is.
const personEditSchema = z.strictObject({
  title: spec.title.optional(),
  description: spec.description.unwrap().optional(),
  priority: spec.priority.unwrap().optional(),
  paths: spec.paths.unwrap().optional(),
  labels: spec.labels.unwrap().optional(),
  prerequisites: spec.prerequisites.unwrap().optional(),
});
function checkEdit(taskId: string, raw: TaskEdit): TaskEdit {
  const r = personEditSchema.safeParse(stripUndefined(raw));
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = String(issue?.path[0] ?? '');
    throw new PipelineError('invalid-task', `Invalid change to ${taskId}: ${describeZodError(r.error)}.`, {
      where: field === 'prerequisites' ? '--depends-on' : field ? `--${field}` : taskId,
      fix: 'Correct the value and run the edit again.',
    });
  }
  const changes: TaskEdit = {};
  for (const [k, v] of Object.entries(r.data)) if (v !== undefined) (changes as Record<string, unknown>)[k] = v;
  // The path rule every new task follows (the editor's Edit Task reaches this without the CLI's check).
  if (changes.paths) assertTaskPaths(changes.paths, '--paths');
  if (Object.keys(changes).length === 0)
    throw new PipelineError('usage', `Nothing to change in ${taskId}.`, {
      where: taskId,
      fix: 'Give at least one of --title, --description, --priority, --paths, --labels, --depends-on.',
    });
  return changes;
}

function stripUndefined(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** When a task leaves `working` by a person's hand, its agent is free again. */
function freeAgentOf(h: MutationHost, batch: StateBatch, taskId: string): void {
  const t = batch.task(taskId);
  if (t.status === 'working' && t.assigned_to && h.state.agents[t.assigned_to]) {
    batch.agentEvent(t.assigned_to, { type: 'release', task: taskId });
  }
}
