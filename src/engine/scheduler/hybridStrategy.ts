import { globsOverlap } from './globOverlap';
import { PRIORITY_RANK, type PipelineState, type Task } from '../model/schema';
import type { OrchestrationStrategy, PlanView, StrategyOutcome } from './orchestrationStrategy';
import { fillStage } from './parallelStrategy';

/**
 * Hybrid mode: the seed names it as the example of a mode added beside sequential and parallel
 * (`hybrid: hybridHandler`). Here it is parallel where that is safe and sequential where it is not:
 *
 * - Tasks run as in parallel mode, each stage on a different task at once, with every rule of
 *   parallel mode (prerequisites, priorities, conflict stages, maxAgents, pilot eligibility).
 * - A task whose `paths` overlap those of a task already on its way through the stages does not
 *   enter the pipeline until that task is finished (merged, blocked or cancelled): overlapping work
 *   goes one task at a time through every stage, not only through the conflict stages, so the later
 *   task's architect and tester start from the earlier one's merged result.
 * - A task labelled `sequential` runs alone: it enters only when no other task is on its way, and
 *   no task enters while it is. When it is the best task ready to enter, nothing else enters before
 *   it (the pipeline drains, then it runs), so it cannot be starved by a stream of smaller tasks.
 *   A task with no `paths` can overlap anything unseen; label it `sequential` to keep it apart.
 *
 * Only entry into the first stage is held back; a task already under way always moves on, so
 * switching to hybrid mode with work in flight never stalls that work.
 */

/** The label that makes a task run alone in hybrid mode. */
export const SEQUENTIAL_LABEL = 'sequential';

function runsAlone(t: Task): boolean {
  return t.labels.includes(SEQUENTIAL_LABEL);
}

/** Whether `a` comes before `b` in a stage's queue (priority, then age). */
function ahead(a: Task, b: Task): boolean {
  const ra = PRIORITY_RANK[a.priority];
  const rb = PRIORITY_RANK[b.priority];
  return ra !== rb ? ra > rb : a.seq < b.seq;
}

function overlaps(a: Task, b: Task): boolean {
  return a.paths.some((p) => b.paths.some((q) => globsOverlap(p, q)));
}

export const hybridStrategy: OrchestrationStrategy = {
  name: 'hybrid',
  summary: 'parallel, except that tasks labelled "sequential" run alone and overlapping tasks one at a time',

  plan(view: PlanView): StrategyOutcome {
    // Downstream of the first stage, exactly parallel mode: only tasks under way are there.
    for (let s = view.stages.length - 1; s >= 1; s--) {
      const stage = view.stages[s];
      if (stage) fillStage(view, stage);
    }
    const first = view.stages[0];
    if (!first) return {};
    const underWay = [...view.started()];
    const lone = underWay.some(runsAlone);
    const entered: Task[] = [];
    let closed = false;
    fillStage(view, first, {
      admit: (t) => {
        if (t.attempt > 0) return true; // a retry of a task already under way
        if (lone || closed) return false;
        if (runsAlone(t)) {
          // The best task ready to enter runs alone: now if nothing else is under way; otherwise
          // nothing else enters before it, and it goes once the pipeline has drained.
          closed = true;
          return underWay.length === 0 && entered.length === 0;
        }
        return !underWay.some((u) => overlaps(t, u)) && !entered.some((e) => overlaps(t, e));
      },
      assigned: (t) => entered.push(t),
    });
    return {};
  },

  firstToEnter(ready: readonly Task[], underWay: readonly Task[]): Task | undefined {
    // The same rules as `admit` in plan() above, for the first task to enter.
    if (underWay.some(runsAlone)) return undefined;
    for (const t of ready) {
      // A lone task closes the entry to everything behind it: it is next, once the pipeline drains.
      if (runsAlone(t)) return t;
      if (!underWay.some((u) => overlaps(t, u))) return t;
    }
    return undefined;
  },

  explainWaiting(task: Task, state: PipelineState): string | null {
    if (task.attempt > 0 || task.status !== 'queued') return null;
    const underWay = Object.values(state.tasks).filter(
      (t) =>
        t.id !== task.id &&
        (t.status === 'working' || t.status === 'merging' || (t.status === 'queued' && t.attempt > 0)),
    );
    const alone = underWay.find(runsAlone);
    if (alone) return `hybrid mode runs ${alone.id} (labelled "${SEQUENTIAL_LABEL}") alone; new tasks enter after it`;
    if (runsAlone(task) && underWay.length > 0)
      return `hybrid mode runs it alone (labelled "${SEQUENTIAL_LABEL}"): it enters once the ${underWay.length} task${underWay.length === 1 ? '' : 's'} under way (${underWay
        .map((t) => t.id)
        .sort()
        .join(', ')}) ${underWay.length === 1 ? 'is' : 'are'} finished`;
    // A task not started is queued at the first stage, as is any lone task that would enter before it.
    const barrier = Object.values(state.tasks).find(
      (t) =>
        t.id !== task.id &&
        runsAlone(t) &&
        t.status === 'queued' &&
        t.attempt === 0 &&
        t.stage === task.stage &&
        ahead(t, task),
    );
    if (barrier && !runsAlone(task))
      return `hybrid mode lets ${barrier.id} (labelled "${SEQUENTIAL_LABEL}", ahead of it in the queue) enter first, alone, once the tasks under way are finished`;
    const overlap = underWay.filter((u) => overlaps(task, u));
    if (overlap.length > 0)
      return `hybrid mode keeps overlapping tasks one at a time: its paths overlap those of ${overlap
        .map((t) => `${t.id} (${t.status} at ${t.stage})`)
        .join(', ')}, so it enters once ${overlap.length === 1 ? 'that task is' : 'they are'} finished`;
    return null;
  },
};
