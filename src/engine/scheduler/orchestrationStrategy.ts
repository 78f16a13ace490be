import type { PipelineConfig, StageConfig } from '../model/configSchema';
import type { PipelineState, Task } from '../model/schema';

/**
 * The contract between the scheduler and an orchestration mode. A mode is a strategy: given a view
 * of what is ready, free and claimed, it records assignments on the view. It never touches the
 * state or the index; the facade commits the assignments. Modes are registered by name in
 * strategyRegistry.ts.
 */

export interface Assignment {
  taskId: string;
  agentId: string;
  stage: string;
}

/** What a strategy sees and does during one plan: a read-only view of the index plus this plan's choices. */
export interface PlanView {
  readonly config: PipelineConfig;
  /** The state the plan is for; strategies read `current_task` and the like, never write. */
  readonly state: PipelineState;
  /** Epoch ms; back-offs are judged against it. */
  readonly now: number;
  /** The configured stages, in pipeline order. */
  readonly stages: readonly StageConfig[];

  /** The index's copy of a task. */
  task(id: string): Task | undefined;
  isEligible(task: Task): boolean;
  /** Whether every prerequisite of the task is done. */
  prerequisitesMet(taskId: string): boolean;
  /**
   * Queued tasks at `stage` that may start now (not backing off, eligible, not chosen earlier in this
   * plan), best first (priority, then oldest), produced lazily: take what you need and stop.
   */
  candidates(stage: string): Iterable<Task>;
  /** Tasks at `stage` still backing off at `now`, eligible or not, in no particular order. */
  waiting(stage: string): Task[];
  /** Idle agents of `role` not yet given work in this plan, sorted by id (a copy). */
  freeAgents(role: string): string[];
  /**
   * Whether the task may be assigned at `stage` without overlapping a path claim, counting the
   * claims taken earlier in this plan. Always true outside the conflict stages and for a task that
   * already holds its claim.
   */
  conflictFree(task: Task, stage: string): boolean;
  /** Whether the task holds a path claim now (before this plan). */
  holdsClaim(taskId: string): boolean;
  /** Tasks being worked on or merged, in no particular order. */
  inFlight(): Iterable<Task>;
  /**
   * Tasks on their way through the stages before this plan (working, merging, or queued after their
   * first assignment), in no particular order. Blocked tasks are not among them.
   */
  started(): Iterable<Task>;
  /**
   * How many more tasks may start working at `stage` in this plan: the stage's `maxAgents` less the
   * tasks working there and those assigned there earlier in this plan; Infinity without a limit.
   * `assign` refuses beyond it, so a strategy asks before it assigns.
   */
  room(stage: string): number;
  /** Records an assignment: the agent is taken and, in a conflict stage, the task's claim counts from now on. */
  assign(task: Task, agentId: string, stage: string): void;
  /** Earliest back-off end after `now` (at `stage`, or anywhere), or null. */
  nextWake(stage?: string): number | null;
}

export interface StrategyOutcome {
  /** The task that is now current, for modes that have one; leave undefined otherwise. */
  currentTask?: string | null;
  /** Overrides the view's global earliest back-off end when the mode knows better. */
  wakeAt?: number | null;
}

export interface OrchestrationStrategy {
  /** The mode's name as stored in the state and typed by users: lower case, digits and dashes. */
  readonly name: string;
  /** One line for `pipeline mode` and the editor's picker. */
  readonly summary: string;
  plan(view: PlanView): StrategyOutcome;
  /**
   * A reason specific to the mode why a queued task is not assigned (sequential: "not the current
   * task"), or null when the mode adds nothing. Used by `pipeline status`.
   */
  explainWaiting?(task: Task, state: PipelineState): string | null;
  /**
   * For `pipeline next`: of the tasks ready to enter the first stage, best first, the one this mode
   * starts first given the tasks under way (`started`), or undefined when it holds every one of them
   * back for now. Without it, the best one enters first (parallel and sequential modes).
   */
  firstToEnter?(ready: readonly Task[], underWay: readonly Task[]): Task | undefined;
}
