import type { PipelineConfig } from './configSchema';
import type { Task } from './schema';

/**
 * A person as a stage. A stage whose role is `human` (`{ "name": "supervisor", "role": "human" }`)
 * is worked by people, not agents: a task that reaches it stays `queued` there, the scheduler never
 * gives it to an agent, and it waits "awaiting your review" until a person answers with
 * `pipeline review` or the editor's Approve / Request Changes. The answer is applied as the same
 * transition an agent's completion marker would be (monitor/markerTransition.ts), by the
 * `reviewTask` mutation.
 *
 * The answer is recorded as an attempt of the pseudo-agent `human` (an `assign` and its outcome in
 * one commit), so the task's history reads like any other stage's. Neither name can be an agent's.
 */
export const HUMAN_ROLE = 'human';
/** The name under which a person's answer appears in a task's history (`assigned_to`, `agent`). */
export const HUMAN_AGENT = 'human';

/** Whether people, not agents, work the stage `name`. */
export function isHumanStage(config: Pick<PipelineConfig, 'stages'>, name: string): boolean {
  return config.stages.some((s) => s.name === name && s.role === HUMAN_ROLE);
}

/** Whether the task waits for a person's review: queued at a human stage. */
export function awaitingReview(task: Pick<Task, 'status' | 'stage'>, config: Pick<PipelineConfig, 'stages'>): boolean {
  return task.status === 'queued' && isHumanStage(config, task.stage);
}

/** The ids of the tasks awaiting a person's review, oldest first. */
export function tasksAwaitingReview(
  tasks: Readonly<Record<string, Task>>,
  config: Pick<PipelineConfig, 'stages'>,
): string[] {
  return Object.values(tasks)
    .filter((t) => awaitingReview(t, config))
    .sort((a, b) => a.seq - b.seq)
    .map((t) => t.id);
}

/**
 * Where a task stands after a person's review answer, as the end of a sentence: "it waits for the
 * test stage". `running`: whether a pipeline runs to move it on (an approved task is merged by it).
 */
export function whereAfterReview(t: Task, running = true): string {
  switch (t.status) {
    case 'merging':
      return running ? 'it is being merged' : 'it is merged when the pipeline runs (`pipeline run`)';
    case 'queued':
      return `it waits for the ${t.stage} stage`;
    case 'blocked':
      return `it waits for a person (${t.blocked_reason ?? 'no reason given'})`;
    default:
      return `it is ${t.status} at ${t.stage}`;
  }
}
