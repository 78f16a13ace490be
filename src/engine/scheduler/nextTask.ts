import { PRIORITY_RANK, type Priority, type Task, type TaskStatus } from '../model/schema';
import type { OrchestrationStrategy } from './orchestrationStrategy';
import type { SchedulerParts } from './schedulerParts';

/**
 * `pipeline next`: the task that would enter the pipeline next, and why. Task Master users ask this
 * of their task list; here the answer follows the scheduler's own order (priority, then age) and its
 * rules (prerequisites merged, the rollout mode's eligibility), and says in the scheduler's words
 * (`explain`) what happens to the task now.
 *
 * A task enters the pipeline when its first stage takes it, so the candidates are the tasks that no
 * agent has worked on yet (attempt 0) and that are not finished. Of those, the ready ones (pending
 * with every prerequisite merged, or already queued at the first stage) and eligible ones compete,
 * in the mode's own order when it has one (hybrid mode lets a task in before better ones whose paths
 * overlap work under way); when none is ready, the best few of the rest are listed with what holds
 * each back.
 *
 * One pass over the tasks (a 10 000-task state takes a few milliseconds), with no clock of its own:
 * the explanations come from the caller, who knows the time.
 */

export interface NextCandidate {
  id: string;
  title: string;
  priority: Priority;
  status: TaskStatus;
  stage: string;
  /** What happens to it now, or what holds it back: the scheduler's explanation. */
  explanation: string;
}

export interface NextTaskReport {
  /** The task that enters next, with why it is the one; null when no task is ready to enter. */
  next: (NextCandidate & { why: string }) | null;
  /** How many tasks are ready to enter (the next one included). */
  ready: number;
  /** When none is ready: the best candidates that are not, best first, each with what holds it back. */
  waiting: NextCandidate[];
  /** Tasks not started yet and not finished: the ready ones and those that wait. */
  notStarted: number;
  /** Tasks on their way through the stages now. */
  inFlight: number;
}

function better(a: Task, b: Task): boolean {
  const ra = PRIORITY_RANK[a.priority];
  const rb = PRIORITY_RANK[b.priority];
  if (ra !== rb) return ra > rb;
  if (a.seq !== b.seq) return a.seq < b.seq;
  return a.id < b.id;
}

function candidate(t: Task, explanation: string): NextCandidate {
  return { id: t.id, title: t.title, priority: t.priority, status: t.status, stage: t.stage, explanation };
}

export function nextTask(
  parts: SchedulerParts,
  limit: number,
  eligible: ((t: Task) => boolean) | undefined,
  explain: (id: string) => string,
  strategy?: Pick<OrchestrationStrategy, 'name' | 'firstToEnter'>,
): NextTaskReport {
  const firstStage = parts.config.stages[0]?.name;
  const ready: Task[] = [];
  const others: Task[] = [];
  for (const t of parts.tasks.values()) {
    if (t.attempt > 0 || t.status === 'done' || t.status === 'cancelled') continue;
    const isReady =
      (t.status === 'pending' && parts.graph.unmetCount(t.id) === 0) ||
      (t.status === 'queued' && t.stage === firstStage);
    if (isReady && (!eligible || eligible(t))) ready.push(t);
    else others.push(t);
  }
  const report: NextTaskReport = {
    next: null,
    ready: ready.length,
    waiting: [],
    notStarted: ready.length + others.length,
    inFlight: parts.started.size,
  };

  let best: Task | undefined;
  for (const t of ready) if (!best || better(t, best)) best = t;
  // A mode may let a later task in first (hybrid: the best ones overlap work under way). Only then is
  // the ready list sorted; the usual answer stays one pass.
  let heldAhead: Task[] = [];
  if (best && strategy?.firstToEnter && ready.length > 1) {
    const order = [...ready].sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
    const underWay = [...parts.started].flatMap((id) => parts.tasks.get(id) ?? []);
    const first = strategy.firstToEnter(order, underWay);
    if (first && first !== best) {
      heldAhead = order.slice(0, order.indexOf(first));
      best = first;
    }
  }
  if (best) {
    const b = best;
    const samePriority = ready.filter((t) => t.priority === b.priority).length;
    let why: string;
    if (ready.length === 1) why = 'the only task ready to enter the pipeline';
    else if (heldAhead.length > 0) {
      const named = heldAhead.slice(0, 3).map((t) => t.id);
      if (heldAhead.length > 3) named.push(`${heldAhead.length - 3} more`);
      why =
        `the first of the ${ready.length} tasks ready to enter that ${strategy?.name ?? 'this'} mode lets in now; ` +
        `the ${heldAhead.length} ahead of it (${named.join(', ')}) wait for work under way`;
    } else
      why =
        `the highest priority (${b.priority}) of the ${ready.length} tasks ready to enter` +
        (samePriority > 1 ? `, and the oldest of the ${samePriority} with that priority` : '');
    report.next = { ...candidate(b, explain(b.id)), why };
    return report;
  }

  // Nothing is ready: the best of the rest (a partial selection, not a sort of all of them).
  const top: Task[] = [];
  for (const t of others) {
    if (top.length === limit && !better(t, top[top.length - 1]!)) continue;
    let i = top.length;
    while (i > 0 && better(t, top[i - 1]!)) i--;
    top.splice(i, 0, t);
    if (top.length > limit) top.pop();
  }
  const pilot = eligible ? parts.config.pilotLabel : undefined;
  report.waiting = top.map((t) => {
    let text = explain(t.id);
    // explain() judges eligibility for queued tasks only; a pending one is held back by it too.
    if (pilot !== undefined && eligible && !eligible(t) && t.status !== 'queued')
      text += ` In pilot mode it would not run anyway: it lacks the "${pilot}" label.`;
    return candidate(t, text);
  });
  return report;
}
