import { z } from 'zod';
import { validateCommand } from './agents/commandTemplate';
import { PipelineError } from './errors';
import type { TypedEvents } from './model/events';
import { awaitingReview, HUMAN_AGENT, HUMAN_ROLE } from './model/humanStage';
import { assertName } from './model/ids';
import type { PipelineEventMap } from './model/pipelineEvents';
import {
  describeZodError,
  rolloutModeSchema,
  taskSpecSchema,
  type Agent,
  type PipelineState,
  type RolloutMode,
  type Task,
} from './model/schema';
import { type PipelineConfig } from './model/configSchema';
import type { StateBatch } from './model/stateBatch';
import { taskEditSchema, type TaskEdit } from './model/stateRecords';
import { isFinal } from './model/taskLifecycle';
import { assertTaskPaths, buildTasks, type NewTask } from './model/taskFactory';
import type { PipelineHome } from './home/pipelineHome';
import type { SchedulerIndex } from './scheduler/schedulerIndex';
import { getStrategy } from './scheduler/strategyRegistry';
import { isLastStage, markerTransition } from './monitor/markerTransition';
import type { Marker } from './agents/completionMarker';

/**
 * Every change a person (or a script) can ask of a pipeline, as one table: the arguments' schema
 * and the change, run by the leader. The facade's methods and the inbox (requests forwarded from
 * other processes) both go through this table, so a request from another process is validated and
 * dispatched by name, never by reflection, and cannot call anything that is not listed here.
 */

/** What a mutation may use: the leader's state, its batches and its commit. */
export interface MutationHost {
  readonly state: Readonly<PipelineState>;
  readonly config: PipelineConfig;
  readonly home: PipelineHome;
  readonly scheduler: SchedulerIndex;
  readonly events: TypedEvents<PipelineEventMap>;
  newBatch(): StateBatch;
  commit(batch: StateBatch): Promise<void>;
}

export interface SwitchOptions {
  drain?: boolean;
  force?: boolean;
}

export interface SwitchResult {
  /**
   * `switched`: done now; `pending`: applies once in-flight work drains; `unchanged`: already in that
   * mode; `cancelled`: already in that mode, and the switch that was pending is called off.
   */
  outcome: 'switched' | 'pending' | 'unchanged' | 'cancelled';
  /** With `cancelled`: the mode the pending switch would have gone to. */
  cancelled?: string;
  mode: string;
  requeued: string[];
}

export interface AddAgentOptions {
  id: string;
  role: string;
  command: string;
}

// The envelopes are checked here; what is inside (a task's spec, a mode's name) is validated by the
// mutation itself, with the messages a person sees for their own input.
const newTaskSchema = z.object({
  spec: z.unknown(),
  status: z.enum(['pending', 'done', 'cancelled', 'blocked']).optional(),
  reason: z.string().optional(),
  source: z.string().optional(),
});
const switchOptionsSchema = z.strictObject({ drain: z.boolean().optional(), force: z.boolean().optional() });
const id = z.string();

/** A person's answer to a task awaiting review: what `pipeline review <id> approve|changes|block` says. */
export const reviewAnswerSchema = z.discriminatedUnion('verdict', [
  z.strictObject({ verdict: z.literal('approve') }),
  z.strictObject({ verdict: z.literal('changes'), text: z.string() }),
  z.strictObject({ verdict: z.literal('block'), reason: z.string() }),
]);
export type ReviewAnswer = z.infer<typeof reviewAnswerSchema>;

function mutation<A extends z.ZodTuple, R>(args: A, run: (h: MutationHost, args: z.infer<A>) => Promise<R>) {
  return { args, run };
}

export const MUTATIONS = {
  addTasks: mutation(z.tuple([z.array(newTaskSchema)]), async (h, [items]) => {
    const batch = h.newBatch();
    const tasks = buildTasks(items as NewTask[], h.state, h.config, batch.at);
    h.scheduler.checkNewTasks(tasks);
    for (const t of tasks) batch.addTask(t);
    await h.commit(batch);
    return tasks;
  }),

  addAgent: mutation(
    z.tuple([z.strictObject({ id: z.string(), role: z.string(), command: z.string() })]),
    async (h, [o]): Promise<Agent> => {
      assertName(o.id, 'agent id', 'agent id');
      assertName(o.role, 'role', '--role');
      if (o.role === HUMAN_ROLE || o.id === HUMAN_AGENT)
        throw new PipelineError('usage', `"${HUMAN_ROLE}" is kept for people: no agent plays it or takes its name.`, {
          where: o.role === HUMAN_ROLE ? '--role' : o.id,
          fix:
            o.role === HUMAN_ROLE
              ? 'A stage with the role human needs no agent: its tasks wait for `pipeline review <id> approve|changes|block`.'
              : 'Choose another agent id.',
        });
      const roles = [...new Set(h.config.stages.map((s) => s.role))];
      if (!roles.includes(o.role)) {
        throw new PipelineError('unknown-role', `No stage is worked by the role "${o.role}".`, {
          where: '--role',
          fix: `Use one of ${roles.join(', ')}, or add a stage with this role to ${h.home.configFile}.`,
        });
      }
      if (h.state.agents[o.id])
        throw new PipelineError('duplicate-id', `Agent ${o.id} exists already.`, {
          where: o.id,
          fix: 'Choose another id, or remove the agent first.',
        });
      if (!o.command.trim())
        throw new PipelineError('usage', 'An agent needs a command (a preset name or a template).', {
          where: '--command',
        });
      // An unknown placeholder or an open quote is refused now, not when a task first reaches the agent.
      validateCommand(o.command);
      const batch = h.newBatch();
      const agent: Agent = {
        id: o.id,
        role: o.role,
        command: o.command,
        status: 'idle',
        current_task: null,
        since: null,
        created_at: batch.at,
      };
      batch.addAgent(agent);
      await h.commit(batch);
      return agent;
    },
  ),

  removeAgent: mutation(z.tuple([id, z.boolean()]), async (h, [agentId, force]) => {
    const batch = h.newBatch();
    const a = batch.agent(agentId);
    if (a.status === 'working' && a.current_task) {
      if (!force)
        throw new PipelineError('busy', `Agent ${agentId} is working on ${a.current_task}.`, {
          where: agentId,
          fix: 'Wait for it to finish, or pass --force to requeue its task.',
        });
      batch.transition(a.current_task, { type: 'requeue', reason: `agent ${agentId} removed` });
    }
    batch.removeAgent(agentId);
    await h.commit(batch);
  }),

  /**
   * Changes a task's fields. New prerequisites must exist and must not close a cycle. A task that
   * has entered the pipeline (queued, working, merging) can only get prerequisites that are merged
   * already, since it cannot go back to waiting; block it first (it waits again once unblocked). A
   * finished task's prerequisites no longer matter and are not changed.
   */
  editTask: mutation(z.tuple([id, taskEditSchema]), async (h, [taskId, raw]): Promise<Task> => {
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
  }),

  /**
   * Removes a task that no agent has worked on yet (attempt 0; pending, queued or blocked): work
   * that has started has a branch and a history, and is cancelled instead. A task that other
   * unfinished tasks wait for is not removed, and they are named, unless `force`: then it is also
   * taken out of their prerequisites (in the same commit), so they no longer wait for it.
   */
  removeTask: mutation(
    z.tuple([id, z.boolean()]),
    async (h, [taskId, force]): Promise<{ task: Task; released: string[] }> => {
      const batch = h.newBatch();
      const t = batch.task(taskId);
      if (isFinal(t.status))
        throw new PipelineError(
          'illegal-transition',
          `Task ${taskId} is ${t.status}; finished tasks stay as a record.`,
          {
            where: taskId,
            fix: 'Nothing to do: it takes no part in scheduling any more.',
          },
        );
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
  ),

  blockTask: mutation(z.tuple([id, z.string()]), async (h, [taskId, reason]) => {
    const batch = h.newBatch();
    freeAgentOf(h, batch, taskId);
    const t = batch.transition(taskId, { type: 'block', reason });
    await h.commit(batch);
    return t;
  }),

  unblockTask: mutation(z.tuple([id]), async (h, [taskId]) => {
    const batch = h.newBatch();
    const t = batch.transition(taskId, { type: 'unblock' });
    await h.commit(batch);
    return t;
  }),

  /** A blocked task re-enters at the stage where it stopped, with its failures forgotten. */
  retryTask: mutation(z.tuple([id]), async (h, [taskId]) => {
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
  }),

  cancelTask: mutation(z.tuple([id, z.string()]), async (h, [taskId, reason]) => {
    const batch = h.newBatch();
    freeAgentOf(h, batch, taskId);
    const t = batch.transition(taskId, { type: 'cancel', reason });
    await h.commit(batch);
    return t;
  }),

  /**
   * A person's answer to a task awaiting review at a human stage, applied as the transition the
   * same marker from an agent would be (markerTransition): approve = COMPLETED (the next stage, or
   * the merge after the last), changes = CHANGES REQUESTED (back to the rework stage), block =
   * BLOCKED. Recorded as an attempt of the pseudo-agent `human`, in one commit.
   */
  reviewTask: mutation(z.tuple([id, reviewAnswerSchema]), async (h, [taskId, answer]): Promise<Task> => {
    const batch = h.newBatch();
    const t = batch.task(taskId);
    if (!awaitingReview(t, h.config)) throw notAwaitingReview(h, t);
    const stage = h.config.stages.find((s) => s.name === t.stage)!;
    const marker = reviewMarker(answer);
    if (marker.kind === 'changes_requested' && !isLastStage(h.config, stage)) {
      throw new PipelineError(
        'usage',
        `Changes can be requested only at the last stage (${h.config.stages.at(-1)!.name}); ${taskId} is at ${stage.name}.`,
        { where: taskId, fix: `Approve it, or block it with the reason: pipeline review ${taskId} block "<reason>".` },
      );
    }
    batch.transition(taskId, { type: 'assign', agent: HUMAN_AGENT, attempt: t.attempt + 1 });
    const after = batch.transition(taskId, markerTransition(h.config, stage, HUMAN_AGENT, marker));
    await h.commit(batch);
    return after;
  }),

  setOrchestrationMode: mutation(
    z.tuple([z.string(), switchOptionsSchema]),
    async (h, [mode, opts]): Promise<SwitchResult> => {
      getStrategy(mode);
      const state = h.state;
      if (state.orchestration_mode === mode && !state.pending_switch)
        return { outcome: 'unchanged', mode, requeued: [] };
      if (state.orchestration_mode === mode && state.pending_switch) {
        // Asking for the mode it is in while a drained switch waits: the way to call that switch off.
        const cancelled = state.pending_switch;
        const batch = h.newBatch();
        batch.record({ type: 'mode.pending_switch', mode: null });
        await h.commit(batch);
        // The mode stays, but what follows it (metrics, a monitor holding new work back) must know.
        h.events.emit('mode:orchestration', { from: mode, to: mode });
        return { outcome: 'cancelled', mode, cancelled, requeued: [] };
      }
      const busy = busyAgents(state);
      const batch = h.newBatch();
      if (busy.length > 0 && !opts.force) {
        if (!opts.drain) {
          throw new PipelineError(
            'busy',
            `Cannot switch to ${mode} mode: agents have work in progress: ${describeBusy(busy)}.`,
            {
              fix: 'Pass --drain to switch once their current stage work is finished, or --force to requeue their work now.',
            },
          );
        }
        batch.record({ type: 'mode.pending_switch', mode });
        await h.commit(batch);
        h.events.emit('mode:switchPending', { to: mode, busy: busy.map((a) => a.id) });
        return { outcome: 'pending', mode, requeued: [] };
      }
      const requeued = requeueAll(batch, busy, `forced switch to ${mode} mode`);
      const from = state.orchestration_mode;
      switchRecords(h, batch, mode);
      await h.commit(batch);
      h.events.emit('mode:orchestration', { from, to: mode });
      return { outcome: 'switched', mode, requeued };
    },
  ),

  /**
   * Shadow mode changes no git state, so a switch to it while agents work is refused (their work
   * would otherwise be merged under shadow), unless `force` requeues that work now.
   */
  setRolloutMode: mutation(
    z.tuple([z.string(), z.strictObject({ force: z.boolean().optional() })]),
    async (h, [mode, opts]): Promise<{ from: RolloutMode; to: RolloutMode; requeued: string[] }> => {
      const m = rolloutModeSchema.safeParse(mode);
      if (!m.success)
        throw new PipelineError('usage', `Unknown rollout mode ${JSON.stringify(mode)}.`, {
          fix: 'Use shadow, pilot or production.',
        });
      const from = h.state.mode;
      if (from === m.data) return { from, to: m.data, requeued: [] };
      const batch = h.newBatch();
      let requeued: string[] = [];
      if (m.data === 'shadow') {
        const busy = busyAgents(h.state);
        if (busy.length > 0 && !opts.force) {
          throw new PipelineError(
            'busy',
            `Cannot switch to shadow mode: agents have work in progress: ${describeBusy(busy)}.`,
            { fix: 'Wait for their current stage to finish, or pass --force to requeue their work now.' },
          );
        }
        requeued = requeueAll(batch, busy, 'forced switch to shadow mode');
      }
      batch.record({ type: 'mode.rollout', mode: m.data });
      await h.commit(batch);
      h.events.emit('mode:rollout', { from, to: m.data });
      return { from, to: m.data, requeued };
    },
  ),
};

export type MutationName = keyof typeof MUTATIONS;
export type MutationArgs<K extends MutationName> = z.infer<(typeof MUTATIONS)[K]['args']>;
export type MutationResult<K extends MutationName> = Awaited<ReturnType<(typeof MUTATIONS)[K]['run']>>;

/** Runs a mutation with arguments typed for it (this process's own calls). */
export function runMutation<K extends MutationName>(
  h: MutationHost,
  name: K,
  args: MutationArgs<K>,
): Promise<MutationResult<K>> {
  // TypeScript cannot correlate a name with its entry's own types through the table's union.
  const run = MUTATIONS[name].run as unknown as (h: MutationHost, a: MutationArgs<K>) => Promise<MutationResult<K>>;
  return run(h, args);
}

/** Runs a mutation by name with arguments from another process: validated, or a usage error. */
export async function dispatchMutation(h: MutationHost, name: string, args: unknown[]): Promise<unknown> {
  if (!Object.hasOwn(MUTATIONS, name)) throw new PipelineError('usage', `Unknown request ${name}.`);
  const m = MUTATIONS[name as MutationName];
  const parsed = m.args.safeParse(args);
  if (!parsed.success) throw new PipelineError('usage', `Malformed arguments for ${name}: ${parsed.error.message}`);
  return (m.run as (h: MutationHost, a: unknown) => Promise<unknown>)(h, parsed.data);
}

/** Applies a drained switch once no agent works any more; the monitor asks on every tick. */
export async function applyPendingSwitch(h: MutationHost): Promise<boolean> {
  const to = h.state.pending_switch;
  if (!to || busyAgents(h.state).length > 0) return false;
  const from = h.state.orchestration_mode;
  const batch = h.newBatch();
  switchRecords(h, batch, to);
  await h.commit(batch);
  h.events.emit('mode:orchestration', { from, to });
  return true;
}

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

export function busyAgents(state: Readonly<PipelineState>): Agent[] {
  return Object.values(state.agents).filter((a) => a.status === 'working' && a.current_task);
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

function describeBusy(busy: Agent[]): string {
  return busy.map((a) => `${a.id} (${a.current_task})`).join(', ');
}

function requeueAll(batch: StateBatch, busy: Agent[], reason: string): string[] {
  for (const a of busy) {
    batch.transition(a.current_task!, { type: 'requeue', reason });
    batch.agentEvent(a.id, { type: 'release' });
  }
  return busy.map((a) => a.current_task!);
}

function switchRecords(h: MutationHost, batch: StateBatch, mode: string): void {
  batch.record({ type: 'mode.orchestration', mode });
  // Sequential mode picks its current task afresh, preferring work already in flight.
  if (h.state.current_task !== null) batch.record({ type: 'sequential.current', id: null });
}

/** The completion marker a review answer stands for; an answer without its words is refused. */
function reviewMarker(answer: ReviewAnswer): Marker {
  if (answer.verdict === 'approve') return { kind: 'completed' };
  const text = (answer.verdict === 'changes' ? answer.text : answer.reason).trim();
  if (!text)
    throw new PipelineError(
      'usage',
      answer.verdict === 'changes' ? 'Say what should change.' : 'Say why the task is blocked.',
      {
        where: answer.verdict,
        fix:
          answer.verdict === 'changes'
            ? 'pipeline review <id> changes "<what to change>"'
            : 'pipeline review <id> block "<reason>"',
      },
    );
  return answer.verdict === 'changes' ? { kind: 'changes_requested', reason: text } : { kind: 'blocked', reason: text };
}

/** Why a review answer does not apply to `t`, and what would. */
function notAwaitingReview(h: MutationHost, t: Task): PipelineError {
  const human = h.config.stages.filter((s) => s.role === HUMAN_ROLE).map((s) => s.name);
  const where =
    t.status === 'queued' || t.status === 'working'
      ? `${t.status} at ${t.stage}${t.assigned_to ? ` (${t.assigned_to})` : ''}`
      : t.status;
  return new PipelineError('illegal-transition', `${t.id} is not awaiting review: it is ${where}.`, {
    where: t.id,
    fix: human.length
      ? `A review answers a task queued at a human stage (${human.join(', ')}); \`pipeline review\` lists those that wait.`
      : `No stage of ${h.home.configFile} is worked by people: give the reviewing stage the role "${HUMAN_ROLE}" ({ "name": "supervisor", "role": "${HUMAN_ROLE}" }).`,
  });
}

/** When a task leaves `working` by a person's hand, its agent is free again. */
function freeAgentOf(h: MutationHost, batch: StateBatch, taskId: string): void {
  const t = batch.task(taskId);
  if (t.status === 'working' && t.assigned_to && h.state.agents[t.assigned_to]) {
    batch.agentEvent(t.assigned_to, { type: 'release', task: taskId });
  }
}
