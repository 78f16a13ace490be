import type { OrchestrationStrategy, PlanView, StrategyOutcome } from './orchestrationStrategy';

/**
 * Parallel mode: the pipeline. Every stage works on a different task at the same time (architect on
 * D, tester on C, implementer on B, supervisor merging A). Each idle agent takes the best ready task
 * of its role's stage: eligible, not backing off, and not overlapping a path claim in the conflict
 * stages (claims taken earlier in the same plan included).
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
      if (!stage) continue;
      const agents = view.freeAgents(stage.role);
      if (agents.length === 0) continue;
      let next = 0;
      // One pass over the stage's queue serves all its free agents: a task skipped for a conflict
      // stays in conflict for the rest of the plan, since claims only grow within a plan.
      for (const task of view.candidates(stage.name)) {
        if (!view.conflictFree(task, stage.name)) continue;
        view.assign(task, agents[next] as string, stage.name);
        if (++next === agents.length) break;
      }
    }
    return {};
  },
};
