import type { Marker } from '../agents/completionMarker';
import type { PipelineConfig, StageConfig } from '../model/configSchema';
import type { TaskEvent } from '../model/taskLifecycle';

/**
 * The task's transition for a completion marker written at `stage` by `by`: COMPLETED moves it to
 * the next stage (or to merging after the last), BLOCKED blocks it with the reason, and CHANGES
 * REQUESTED at the last (reviewing) stage sends it back to the rework stage. One function for both
 * ways a stage can answer: an agent's marker (settle.ts) and a person's review (the `reviewTask`
 * mutation), so the two cannot drift apart.
 */
export function markerTransition(
  config: Pick<PipelineConfig, 'stages' | 'reworkStage'>,
  stage: Pick<StageConfig, 'name'>,
  by: string,
  m: Marker,
): TaskEvent {
  const stages = config.stages;
  const at = stages.findIndex((s) => s.name === stage.name);
  const next = stages[at + 1]?.name ?? null;
  if (m.kind === 'completed') return { type: 'complete', nextStage: next, note: `${stage.name} done by ${by}` };
  if (m.kind === 'blocked') return { type: 'block', reason: `${by} (${stage.name}): ${m.reason}` };
  if (isLastStage(config, stage))
    return { type: 'changes_requested', reworkStage: config.reworkStage, reason: m.reason };
  return {
    type: 'complete',
    nextStage: next,
    note: `changes requested outside review, taken as done: ${m.reason}`,
  };
}

/** Whether `stage` is the last one, the stage whose approval merges. */
export function isLastStage(config: Pick<PipelineConfig, 'stages'>, stage: Pick<StageConfig, 'name'>): boolean {
  return config.stages[config.stages.length - 1]?.name === stage.name;
}
