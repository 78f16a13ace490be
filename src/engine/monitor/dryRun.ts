import { taskWith } from '../model/lazySnapshot';
import type { PlanResult } from '../scheduler/schedulerIndex';
import { decide, type DecideInput } from './decide';

/** What `pipeline run --dry` shows: the tasks that would enter the pipeline, the plan, and one line each. */
export interface DryRun {
  promote: string[];
  plan: PlanResult;
  lines: string[];
}

/**
 * What the scheduler would do now, without doing it: tasks that would enter the pipeline and the
 * assignments it would make, from the same `decide()` the monitor's tick asks. Works on a view of
 * the state, so it is safe in any process.
 */
export function dryRun(input: DecideInput): DryRun {
  const { config, scheduler, now } = input;
  const tasks = input.state.tasks;
  let d = decide({ ...input, idleReport: false });
  const promote = d.promote;
  if (promote.length) {
    // Plan as if the promoted tasks were queued: the state's task record and the index hold them
    // queued for the length of this synchronous call, and their own versions are put back after it,
    // whatever happens (as `withChanges` does for the index; no other code can run meanwhile).
    // Nothing is written, and neither the state nor the index is copied: a copy of a 6 000-task
    // record cost more than the plan.
    const before = promote.map((id) => tasks[id]!);
    const queued = before.map((t) => taskWith(t, { status: 'queued' }));
    try {
      for (const t of queued) tasks[t.id] = t;
      d = scheduler.withChanges(queued, () =>
        decide({ state: input.state, config, scheduler, now, idleReport: false }),
      );
    } finally {
      for (const t of before) tasks[t.id] = t;
    }
  }
  const lines = [
    ...promote.map((id) => `would queue ${id} for ${tasks[id]!.stage} (prerequisites merged)`),
    ...d.plan.assignments.map((a) => `would start ${a.agentId} (${a.stage}) on ${a.taskId}: ${tasks[a.taskId]!.title}`),
  ];
  if (d.draining)
    lines.push(`a switch to ${input.state.pending_switch} mode waits for in-flight work to drain: no new work starts`);
  return { promote, plan: d.plan, lines };
}
