import type { StageConfig } from '../model/configSchema';
import type { Task } from '../model/schema';
import type { OrchestrationStrategy, PlanView, StrategyOutcome } from './orchestrationStrategy';

/**
 * Parallel mode: the pipeline. Every stage works on a different task at the same time (architect on
 * D, tester on C, implementer on B, supervisor merging A). Each idle agent takes the best ready task
 * of its role's stage: eligible, not backing off, and not overlapping a path claim in the conflict
 * stages (claims taken earlier in the same plan included). A stage with `maxAgents` takes no more
 * tasks at once than that, however many agents are idle.
 *
 * Stages are filled from the last to the first. Work near the end of the pipeline is closest to
 * being merged, and merged work is what unlocks dependents and releases claims; starting new work
 * first would let the queues between stages grow while finished work waits for review.
 */
export const parallelStrategy: OrchestrationStrategy = {
  name: 'parallel',
  summary: 'a pipeline: every stage works on a different task at once',

  plan(view: PlanView): StrategyOutcome {
    for (let s = view.stages.length - 1; s >= 0; s--) {
      const stage = view.stages[s];
      if (stage) fillStage(view, stage);
    }
    return {};
  },
};

export interface FillOptions {
  /** Whether a candidate may go now; asked in queue order, before its conflict check. */
  admit?: (task: Task) => boolean;
  /** Told of each assignment made. */
  assigned?: (task: Task) => void;
}

/**
 * Gives the stage's free agents (up to its `maxAgents` room) the best candidates that are free of
 * path conflicts and that `admit` lets in. Shared by the modes built on parallel mode.
 */
export function fillStage(view: PlanView, stage: StageConfig, o: FillOptions = {}): void {
  const agents = view.freeAgents(stage.role);
  const slots = Math.min(agents.length, view.room(stage.name));
  if (slots === 0) return;
  let next = 0;
  // One pass over the stage's queue serves all its free agents: a task skipped for a conflict
  // stays in conflict for the rest of the plan, since claims only grow within a plan.
  for (const task of view.candidates(stage.name)) {
    if (o.admit && !o.admit(task)) continue;
    if (!view.conflictFree(task, stage.name)) continue;
    view.assign(task, agents[next] as string, stage.name);
    o.assigned?.(task);
    if (++next === slots) break;
  }
}
