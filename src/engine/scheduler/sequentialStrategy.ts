import { PRIORITY_RANK, type PipelineState, type Task } from '../model/schema';
import type { OrchestrationStrategy, PlanView, StrategyOutcome } from './orchestrationStrategy';
import { backoffUntil } from './taskQueues';

/**
 * Sequential mode: one task at a time. The current task (`state.current_task`, also written to
 * `.pipeline/current-task.txt`) goes through every stage; the next one starts only once the current
 * one is merged, blocked or cancelled. The plan reports the current task so the facade can record a
 * change.
 *
 * Choosing a new current task, in order of preference:
 * 1. a task still working or merging (left over from parallel mode): wait for it rather than start a
 *    second task beside it;
 * 2. a task already queued past the first stage (also left over): work in the pipeline drains
 *    before new work starts. Among these, those that can enter their stage without a path conflict
 *    come first (claim holders always can), so the current task never waits for a claim held by a
 *    task sequential mode would not move; then those not backing off; then priority and age;
 * 3. the best ready task at the first stage.
 * On a pipeline that has always been sequential only rule 3 applies, and finding the task is one
 * look at the first stage's queue.
 */

/** Whether the current task keeps its place: it is still on its way through the stages. */
function continues(view: PlanView, task: Task): boolean {
  switch (task.status) {
    case 'working':
    case 'merging':
      return true;
    case 'queued':
      // Not started and no longer allowed (pilot mode began since it was chosen): let another go.
      // Once started it stays current even so, or two tasks would be in flight.
      return view.isEligible(task) || task.attempt > 0 || task.stage !== view.stages[0]?.name;
    case 'pending':
      // Released from blocked: it stays current, and the facade readies it once its prerequisites are done.
      return view.prerequisitesMet(task.id);
    default:
      return false;
  }
}

interface Leftover {
  readonly task: Task;
  readonly free: boolean;
  readonly waiting: boolean;
}

function better(a: Leftover, b: Leftover): boolean {
  if (a.free !== b.free) return a.free;
  if (a.waiting !== b.waiting) return !a.waiting;
  const ra = PRIORITY_RANK[a.task.priority];
  const rb = PRIORITY_RANK[b.task.priority];
  if (ra !== rb) return ra > rb;
  return a.task.seq < b.task.seq;
}

function chooseCurrent(view: PlanView): Task | null {
  const id = view.state.current_task;
  const kept = id === null ? undefined : view.task(id);
  if (kept && continues(view, kept)) return kept;

  let inFlight: Task | null = null;
  for (const t of view.inFlight()) if (!inFlight || t.seq < inFlight.seq) inFlight = t;
  if (inFlight) return inFlight;

  let best: Leftover | null = null;
  for (const stage of view.stages.slice(1)) {
    const ready = [...view.candidates(stage.name)].map((task) => ({ task, waiting: false }));
    const waiting = view
      .waiting(stage.name)
      .filter((t) => view.isEligible(t))
      .map((task) => ({ task, waiting: true }));
    for (const c of [...ready, ...waiting]) {
      const l: Leftover = { ...c, free: view.conflictFree(c.task, c.task.stage) };
      if (!best || better(l, best)) best = l;
    }
  }
  if (best) return best.task;

  const first = view.stages[0];
  if (!first) return null;
  for (const t of view.candidates(first.name)) return t;
  return null;
}

export const sequentialStrategy: OrchestrationStrategy = {
  name: 'sequential',
  summary: 'one task at a time through every stage; the next starts after the merge',

  plan(view: PlanView): StrategyOutcome {
    const current = chooseCurrent(view);
    // Nothing to do: the only thing that could change that by itself is a back-off at the first stage ending.
    if (!current) return { currentTask: null, wakeAt: view.nextWake(view.stages[0]?.name) };
    if (current.status !== 'queued') return { currentTask: current.id, wakeAt: null };

    const until = backoffUntil(current);
    if (until !== null && until > view.now) return { currentTask: current.id, wakeAt: until };
    const stage = view.stages.find((s) => s.name === current.stage);
    // A stage's maxAgents matters only while work left over from another mode still occupies it.
    if (stage && view.isEligible(current) && view.room(stage.name) > 0 && view.conflictFree(current, stage.name)) {
      const agent = view.freeAgents(stage.role)[0];
      if (agent !== undefined) view.assign(current, agent, stage.name);
    }
    return { currentTask: current.id, wakeAt: null };
  },

  explainWaiting(task: Task, state: PipelineState): string | null {
    if (state.current_task === null || state.current_task === task.id) return null;
    const current = state.tasks[state.current_task];
    return `sequential mode works on one task at a time, and the current one is ${state.current_task}${current ? ` (${current.status} at ${current.stage})` : ''}`;
  },
};
