import type { PipelineState } from '../model/schema';
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
  let d = decide(input);
  const promote = d.promote;
  if (promote.length) {
    // Plan as if the promoted tasks were queued: on a view of the state with those tasks replaced,
    // and on the index with them changed for the length of the call. Nothing is written, and
    // neither the state nor the index is copied whole.
    const state = input.state;
    const queued = promote.map((id) => taskWith(state.tasks[id]!, { status: 'queued' }));
    const view: PipelineState = { ...state, tasks: { ...state.tasks } };
    for (const t of queued) view.tasks[t.id] = t;
    d = scheduler.withChanges(queued, () => decide({ state: view, config, scheduler, now }));
  }
  const tasks = input.state.tasks;
  const lines = [
    ...promote.map((id) => `would queue ${id} for ${tasks[id]!.stage} (prerequisites merged)`),
    ...d.plan.assignments.map((a) => `would start ${a.agentId} (${a.stage}) on ${a.taskId}: ${tasks[a.taskId]!.title}`),
  ];
  if (d.draining)
    lines.push(`a switch to ${input.state.pending_switch} mode waits for in-flight work to drain: no new work starts`);
  return { promote, plan: d.plan, lines };
}
