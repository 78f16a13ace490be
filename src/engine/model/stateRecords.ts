import { z } from 'zod';
import { PipelineError } from '../errors';
import {
  agentSchema,
  attemptUsageSchema,
  nameSchema,
  prioritySchema,
  rolloutModeSchema,
  taskIdSchema,
  taskSchema,
  type AttemptUsage,
  type PipelineState,
  type Task,
  type TaskUsage,
} from './schema';
import { transitionTask, type TaskEvent } from './taskLifecycle';

/**
 * The journal's records: every change to the state is one of these, appended and synced before it
 * counts as done. `applyRecord` is the one reducer; recovery replays records through it, so the
 * state after a crash is exactly the state the records describe.
 */

const taskEventSchema: z.ZodType<TaskEvent> = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('assign'), agent: nameSchema, attempt: z.number().int().min(1) }),
  z.strictObject({ type: z.literal('complete'), nextStage: nameSchema.nullable(), note: z.string().optional() }),
  z.strictObject({ type: z.literal('changes_requested'), reworkStage: nameSchema, reason: z.string() }),
  z.strictObject({ type: z.literal('fail'), reason: z.string(), notBefore: z.string() }),
  z.strictObject({ type: z.literal('block'), reason: z.string() }),
  z.strictObject({ type: z.literal('unblock'), reason: z.string().optional() }),
  z.strictObject({ type: z.literal('requeue'), reason: z.string(), notBefore: z.string().optional() }),
  z.strictObject({ type: z.literal('merged'), commit: z.string() }),
  z.strictObject({ type: z.literal('conflict'), reworkStage: nameSchema, files: z.array(z.string()) }),
  z.strictObject({ type: z.literal('cancel'), reason: z.string() }),
]);

/**
 * A change of a task's fields. `prerequisites` replaces the whole list; it is optional, so journals
 * written before it could be edited still read the same (no new state schema version). The record
 * stays as lenient as journals already written need; a person's edit is checked more strictly by
 * the mutation (pipelineMutations.ts), with the same limits as a new task.
 */
export const taskEditSchema = z.strictObject({
  title: z.string().trim().min(1).optional(),
  description: z.string().optional(),
  priority: prioritySchema.optional(),
  paths: z.array(z.string()).optional(),
  labels: z.array(nameSchema).optional(),
  prerequisites: z.array(taskIdSchema).optional(),
});
export type TaskEdit = z.infer<typeof taskEditSchema>;

export const agentChangeSchema = z.strictObject({
  status: agentSchema.shape.status.optional(),
  current_task: taskIdSchema.nullable().optional(),
  since: z.string().nullable().optional(),
  command: z.string().min(1).optional(),
  paused_until: z.string().nullable().optional(),
  paused_reason: z.string().nullable().optional(),
  interactive: z.boolean().optional(),
});
export type AgentChange = z.infer<typeof agentChangeSchema>;

export const stateRecordSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('task.added'), task: taskSchema }),
  z.strictObject({ type: z.literal('task.transition'), id: taskIdSchema, event: taskEventSchema, at: z.string() }),
  z.strictObject({ type: z.literal('task.edited'), id: taskIdSchema, changes: taskEditSchema, at: z.string() }),
  /** A task that never started, withdrawn by a person (see removeTask in mutations/taskMutations.ts). */
  z.strictObject({ type: z.literal('task.removed'), id: taskIdSchema, at: z.string() }),
  z.strictObject({ type: z.literal('agent.added'), agent: agentSchema }),
  z.strictObject({ type: z.literal('agent.removed'), id: nameSchema }),
  z.strictObject({ type: z.literal('agent.updated'), id: nameSchema, changes: agentChangeSchema }),
  z.strictObject({ type: z.literal('mode.orchestration'), mode: nameSchema }),
  z.strictObject({ type: z.literal('mode.rollout'), mode: rolloutModeSchema }),
  z.strictObject({ type: z.literal('mode.pending_switch'), mode: nameSchema.nullable() }),
  z.strictObject({ type: z.literal('sequential.current'), id: taskIdSchema.nullable() }),
  z.strictObject({ type: z.literal('decision'), text: z.string(), at: z.string() }),
  /** What one attempt spent (tokens, cost) and its CLI's session id, once its command finished its output. */
  z.strictObject({ type: z.literal('attempt.usage'), id: taskIdSchema, usage: attemptUsageSchema }),
]);
export type StateRecord = z.infer<typeof stateRecordSchema>;

/** How many decisions the state keeps; older ones stay in the journal's history only. */
export const MAX_DECISIONS = 200;

function requireTask(state: PipelineState, id: string) {
  const t = state.tasks[id];
  if (!t)
    throw new PipelineError('unknown-task', `Unknown task ${id}.`, {
      where: id,
      fix: 'List the tasks with `pipeline task list`.',
    });
  return t;
}

/**
 * Applies one record to the state, in place (a commit must not copy a 10 000-task state). Throws,
 * leaving the state unchanged, when the record does not apply: callers validate before they append.
 */
export function applyRecord(state: PipelineState, rec: StateRecord): void {
  switch (rec.type) {
    case 'task.added': {
      if (state.tasks[rec.task.id])
        throw new PipelineError('duplicate-id', `Task ${rec.task.id} exists already.`, { where: rec.task.id });
      state.tasks[rec.task.id] = rec.task;
      state.next_seq = Math.max(state.next_seq, rec.task.seq + 1);
      // Generated ids take the next number; an imported or explicit id (TM-10, FIX-7) must not
      // make the generated ones jump. A collision is skipped when an id is generated.
      const m = /-(\d+)$/.exec(rec.task.id);
      if (m?.[1] && Number(m[1]) === state.next_task_number) state.next_task_number++;
      return;
    }
    case 'task.transition': {
      const t = requireTask(state, rec.id);
      state.tasks[rec.id] = transitionTask(t, rec.event, rec.at);
      return;
    }
    case 'task.edited': {
      const t = requireTask(state, rec.id);
      state.tasks[rec.id] = { ...t, ...stripUndefined(rec.changes), updated_at: rec.at };
      return;
    }
    case 'task.removed':
      requireTask(state, rec.id);
      delete state.tasks[rec.id];
      if (state.current_task === rec.id) state.current_task = null;
      return;
    case 'agent.added':
      if (state.agents[rec.agent.id])
        throw new PipelineError('duplicate-id', `Agent ${rec.agent.id} exists already.`, { where: rec.agent.id });
      state.agents[rec.agent.id] = rec.agent;
      return;
    case 'agent.removed':
      if (!state.agents[rec.id])
        throw new PipelineError('unknown-agent', `Unknown agent ${rec.id}.`, { where: rec.id });
      delete state.agents[rec.id];
      return;
    case 'agent.updated': {
      const a = state.agents[rec.id];
      if (!a) throw new PipelineError('unknown-agent', `Unknown agent ${rec.id}.`, { where: rec.id });
      state.agents[rec.id] = { ...a, ...stripUndefined(rec.changes) };
      return;
    }
    case 'mode.orchestration':
      state.orchestration_mode = rec.mode;
      state.pending_switch = null;
      return;
    case 'mode.rollout':
      state.mode = rec.mode;
      return;
    case 'mode.pending_switch':
      state.pending_switch = rec.mode;
      return;
    case 'sequential.current':
      state.current_task = rec.id;
      return;
    case 'attempt.usage': {
      const t = requireTask(state, rec.id);
      state.tasks[rec.id] = { ...t, usage: withAttemptUsage(t.usage, rec.usage) };
      return;
    }
    case 'decision':
      state.decisions.push({ at: rec.at, text: rec.text });
      if (state.decisions.length > MAX_DECISIONS) state.decisions.splice(0, state.decisions.length - MAX_DECISIONS);
      return;
  }
}

/**
 * A task's usage with one attempt's added; a second record for the same attempt (a record applied
 * again after a restart) replaces the first, so it is never counted twice.
 */
export function withAttemptUsage(prev: Task['usage'], u: AttemptUsage): TaskUsage {
  const attempts = [...(prev?.attempts ?? []).filter((a) => a.attempt !== u.attempt), u].sort(
    (a, b) => a.attempt - b.attempt,
  );
  const total: TaskUsage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: 0, attempts };
  for (const a of attempts)
    for (const m of a.models) {
      total.input += m.input;
      total.output += m.output;
      total.cacheRead += m.cacheRead;
      total.cacheWrite += m.cacheWrite;
      total.costUsd += m.costUsd ?? 0;
    }
  return total;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
