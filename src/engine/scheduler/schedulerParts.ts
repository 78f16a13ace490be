import type { PipelineConfig, StageConfig } from '../model/configSchema';
import type { Task } from '../model/schema';
import type { AgentPool } from './agentPool';
import type { PathClaims } from './pathClaims';
import type { PrerequisiteGraph } from './prerequisiteGraph';
import type { TaskQueues } from './taskQueues';

/**
 * The structures the scheduler index maintains, handed read-only to the plan context and to
 * `explain`, which live in their own files so the index file stays about keeping them up to date.
 */
export interface SchedulerParts {
  readonly config: PipelineConfig;
  readonly stageByName: ReadonlyMap<string, StageConfig>;
  readonly conflictStages: ReadonlySet<string>;
  readonly tasks: ReadonlyMap<string, Task>;
  readonly graph: PrerequisiteGraph;
  readonly queues: TaskQueues;
  readonly agents: AgentPool;
  readonly claims: PathClaims;
  /** Ids of the tasks that are working or merging. */
  readonly inFlight: ReadonlySet<string>;
  /**
   * Ids of the tasks on their way through the stages: working, merging, or queued after their first
   * assignment (between stages, or waiting to retry). Blocked tasks are not: they wait for a person.
   */
  readonly started: ReadonlySet<string>;
}
