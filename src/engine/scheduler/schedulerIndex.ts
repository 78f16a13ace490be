// src/engine/scheduler/ — deciding who works on what: the prerequisite graph, ready queues, path claims and
// the orchestration strategies. Main file: this one. It imports only the model and ../errors: no I/O.
import { PipelineError } from '../errors';
import type { Agent, PipelineState, Task } from '../model/schema';
import type { PipelineConfig, StageConfig } from '../model/configSchema';
import { AgentPool } from './agentPool';
import { rolloutEligibility } from './eligibility';
import { explainTask } from './explainTask';
import type { Assignment, OrchestrationStrategy } from './orchestrationStrategy';
import { nextTask, type NextTaskReport } from './nextTask';
import { holdsClaim, PathClaims } from './pathClaims';
import { PlanContext } from './planContext';
import { checkPrerequisiteEdit, PrerequisiteGraph } from './prerequisiteGraph';
import type { SchedulerParts } from './schedulerParts';
import { getStrategy } from './strategyRegistry';
import { TaskQueues } from './taskQueues';

/**
 * The task scheduler: decides which agent works on which task next.
 *
 * Orchestration modes (how tasks are assigned) are strategies registered by name in
 * strategyRegistry.ts:
 * - `sequential`: one task at a time goes through every stage (architect → test → implementation →
 *   supervisor); the next starts only after the current one is merged, blocked or cancelled.
 * - `parallel`: a pipeline; each stage works on a different task at once, downstream stages served
 *   first so work in flight drains.
 * Both honour the same rules: a task enters the pipeline only when its prerequisites are merged;
 * ready tasks go by priority, then age; two tasks whose paths overlap are never in the conflict
 * stages together (pathClaims.ts); in pilot rollout mode only eligible tasks run; a task backing off
 * after a failure waits for its `not_before`.
 *
 * The index keeps everything a decision needs up to date incrementally, so deciding never rescans
 * the tasks: per-stage priority heaps of queued tasks (taskQueues.ts), unmet-prerequisite counters
 * and a dependents map (prerequisiteGraph.ts), the path claims, and the idle agents per role. The
 * facade calls `taskChanged` / `agentChanged` after every change it commits; `build` replays a whole
 * state through the same calls, so an index rebuilt after a crash equals the one kept up to date.
 * The index keeps its own copies of tasks and agents (from those calls) and trusts them over the
 * `before` arguments. A change of configuration means a new index.
 */

export type { Assignment } from './orchestrationStrategy';

export interface PlanResult {
  assignments: Assignment[];
  /** sequential mode: the task that is now current (null = none); undefined in modes without one */
  currentTask?: string | null;
  /** earliest epoch-ms at which a task held back by not_before becomes assignable, or null */
  wakeAt: number | null;
}

export interface PlanOptions {
  now: number;
  /** Which tasks may run (pilot mode: see rolloutEligibility); all when omitted. */
  eligible?: (t: Task) => boolean;
  /**
   * Idle agents that cannot start yet: their previous command is still in its grace after its
   * marker (monitor/agentStream.ts). They get no work in this plan, so a task goes to an agent of
   * its stage that can start now, or waits for one; none when omitted.
   */
  unavailable?: (agentId: string) => boolean;
}

/** A canonical picture of the index, equal for equal states whatever the history: for tests and debugging. */
export interface SchedulerSnapshot {
  readyPending: string[];
  /** Queued task ids per stage, best first, backing-off ones included. */
  queues: Record<string, string[]>;
  claims: string[];
  inFlight: string[];
  unmet: Record<string, number>;
  idleAgents: Record<string, string[]>;
}

export class SchedulerIndex {
  private readonly tasks = new Map<string, Task>();
  private readonly graph = new PrerequisiteGraph(this.tasks);
  private readonly queues = new TaskQueues();
  private readonly agents = new AgentPool();
  private readonly claims = new PathClaims();
  private readonly inFlight = new Set<string>();
  private readonly started = new Set<string>();
  private readonly conflictStages: ReadonlySet<string>;
  private readonly stageByName: ReadonlyMap<string, StageConfig>;
  private readonly parts: SchedulerParts;

  private constructor(private readonly config: PipelineConfig) {
    this.conflictStages = new Set(config.conflictStages);
    this.stageByName = new Map(config.stages.map((s) => [s.name, s]));
    this.parts = {
      config,
      stageByName: this.stageByName,
      conflictStages: this.conflictStages,
      tasks: this.tasks,
      graph: this.graph,
      queues: this.queues,
      agents: this.agents,
      claims: this.claims,
      inFlight: this.inFlight,
      started: this.started,
    };
  }

  /**
   * The index of a whole state: what `taskChanged` for every task would build, in one pass per part
   * (the graph from the final statuses; queues, claims and the in-flight set from the tasks still
   * on their way), since a read-only command on a large import pays for this at every start.
   */
  static build(state: PipelineState, config: PipelineConfig): SchedulerIndex {
    const index = new SchedulerIndex(config);
    for (const task of Object.values(state.tasks)) index.tasks.set(task.id, task);
    index.graph.addAll();
    for (const task of index.tasks.values()) if (!isFinal(task)) index.place(task);
    for (const agent of Object.values(state.agents)) index.agentChanged(undefined, agent);
    return index;
  }

  /** What `taskChanged` does for a task new to the index, besides the graph. */
  private place(task: Task): void {
    const id = task.id;
    if (task.status === 'queued') this.queues.add(task);
    if (task.status === 'working' || task.status === 'merging') this.inFlight.add(id);
    if (isStarted(task)) this.started.add(id);
    if (holdsClaim(task, this.conflictStages)) this.claims.take(id, task.paths);
  }

  /** throws 'cycle' / 'unknown-task' / 'duplicate-id' for tasks about to be added (batch, may reference each other); changes nothing */
  checkNewTasks(tasks: readonly Pick<Task, 'id' | 'prerequisites'>[]): void {
    this.graph.checkNewTasks(tasks);
  }

  /**
   * throws 'cycle' / 'unknown-task' when an existing task's prerequisites would change to
   * `prerequisites` (a prerequisite that does not exist, the task itself, or one that waits for it);
   * changes nothing
   */
  checkPrerequisiteEdit(taskId: string, prerequisites: readonly string[]): void {
    checkPrerequisiteEdit(
      taskId,
      prerequisites,
      (id) => this.tasks.has(id),
      (id) => this.tasks.get(id)?.prerequisites ?? [],
    );
  }

  /** The existing tasks that list `taskId` among their prerequisites, sorted by id. */
  dependentsOf(taskId: string): string[] {
    return this.graph.dependentsOf(taskId).sort();
  }

  /** call after every change to a task (before = undefined when added) and for agents */
  taskChanged(_before: Task | undefined, after: Task): void {
    const id = after.id;
    const prev = this.tasks.get(id);
    if (prev) {
      this.queues.remove(id, prev.stage);
      this.inFlight.delete(id);
    }
    this.graph.update(prev, after);
    this.tasks.set(id, after);
    if (after.status === 'queued') this.queues.add(after);
    if (after.status === 'working' || after.status === 'merging') this.inFlight.add(id);
    if (isStarted(after)) this.started.add(id);
    else this.started.delete(id);
    const heldClaim = this.claims.holds(id);
    if (holdsClaim(after, this.conflictStages)) {
      // Same claim (the usual case: test → implementation) keeps what is parked behind it.
      if (heldClaim && prev && sameList(prev.paths, after.paths)) return;
      this.claims.take(id, after.paths);
    } else this.claims.release(id);
    if (heldClaim) this.queues.unpark(id);
  }

  /** call after a task was removed from the state (`task` as it was) */
  taskRemoved(task: Task): void {
    const id = task.id;
    const prev = this.tasks.get(id);
    if (!prev) return;
    this.queues.remove(id, prev.stage);
    this.inFlight.delete(id);
    this.started.delete(id);
    const heldClaim = this.claims.holds(id);
    this.claims.release(id);
    if (heldClaim) this.queues.unpark(id);
    this.graph.remove(prev);
    this.tasks.delete(id);
  }

  /**
   * Runs `fn` on the index as if `tasks` had replaced the tasks with their ids, then puts those tasks
   * back: a dry run plans on the state it would reach without copying the state or the index. Each
   * task must already be in the index.
   */
  withChanges<T>(tasks: readonly Task[], fn: () => T): T {
    const before = tasks.map((t) => {
      const b = this.tasks.get(t.id);
      if (!b) throw new PipelineError('unknown-task', `There is no task ${t.id}.`, { where: t.id });
      return b;
    });
    let changed = 0;
    try {
      for (const t of tasks) {
        this.taskChanged(undefined, t);
        changed++;
      }
      return fn();
    } finally {
      for (let i = changed - 1; i >= 0; i--) this.taskChanged(undefined, before[i]!);
    }
  }

  agentChanged(before: Agent | undefined, after: Agent | undefined): void {
    const id = after?.id ?? before?.id;
    if (id === undefined) return;
    this.agents.change(id, after);
  }

  /** pending tasks whose prerequisites are all done, oldest first (maintained incrementally) */
  readyPending(): string[] {
    return this.graph.readyPending();
  }

  /** decide assignments now with the named strategy (throws PipelineError 'usage' for an unknown mode, listing the known ones) */
  plan(mode: string, state: PipelineState, opts: PlanOptions): PlanResult {
    const strategy = getStrategy(mode);
    this.queues.promote(opts.now);
    const context = new PlanContext(this.parts, state, opts.now, opts.eligible, opts.unavailable);
    const outcome = strategy.plan(context);
    // After the strategy, not during: parking changes the heaps its lazy walks were reading.
    for (const p of context.parkings) this.queues.park(p.taskId, p.stage, p.holder);
    const result: PlanResult = {
      assignments: context.assignments,
      wakeAt: outcome.wakeAt !== undefined ? outcome.wakeAt : context.nextWake(),
    };
    if (outcome.currentTask !== undefined) result.currentTask = outcome.currentTask;
    return result;
  }

  /**
   * for `pipeline status`: why a task is not assigned (conflict with X, waiting for a <role>, backoff
   * until, not eligible in pilot). Eligibility defaults to the state's rollout mode.
   */
  explain(taskId: string, state: PipelineState, now: number, eligible?: (t: Task) => boolean): string {
    let strategy: OrchestrationStrategy | undefined;
    try {
      strategy = getStrategy(state.orchestration_mode);
    } catch {
      // An unknown stored mode is reported by the mode commands; the other reasons still apply.
      strategy = undefined;
    }
    return explainTask(this.parts, taskId, state, now, eligible ?? rolloutEligibility(state, this.config), strategy);
  }

  /**
   * for `pipeline next`: the task that would enter the pipeline next and why, or what holds back the
   * best candidates when none can (at most `limit` of them). Eligibility defaults to the state's
   * rollout mode.
   */
  next(state: PipelineState, now: number, limit = 3, eligible?: (t: Task) => boolean): NextTaskReport {
    let strategy: OrchestrationStrategy | undefined;
    try {
      strategy = getStrategy(state.orchestration_mode);
    } catch {
      // An unknown stored mode is reported by the mode commands; the best ready task is still named.
      strategy = undefined;
    }
    return nextTask(
      this.parts,
      limit,
      eligible ?? rolloutEligibility(state, this.config),
      (id) => this.explain(id, state, now, eligible),
      strategy,
    );
  }

  /** The unmet prerequisites of a task, in its own order: for `pipeline task show`. */
  unmetPrerequisites(taskId: string): string[] {
    if (!this.tasks.has(taskId))
      throw new PipelineError('unknown-task', `There is no task ${taskId}.`, { where: taskId });
    return this.graph.unmetPrerequisites(taskId);
  }

  /** Tasks being worked on or merged, from the index (no scan of every task). */
  inFlightTasks(): Task[] {
    return [...this.inFlight].map((id) => this.tasks.get(id)!);
  }

  /** Whether the task holds a path claim (it is in, or between, the conflict stages). */
  holdsClaim(taskId: string): boolean {
    return this.claims.holds(taskId);
  }

  snapshot(): SchedulerSnapshot {
    return {
      readyPending: this.readyPending(),
      queues: this.queues.contents(),
      claims: this.claims.holderIds(),
      inFlight: [...this.inFlight].sort(),
      unmet: this.graph.unmetCounts(),
      idleAgents: this.agents.idleSnapshot(),
    };
  }
}

/** Done or cancelled: in the graph (a done task meets its dependents' prerequisites) and nowhere else. */
function isFinal(t: Task): boolean {
  return t.status === 'done' || t.status === 'cancelled';
}

/** On its way through the stages: see SchedulerParts.started. */
function isStarted(t: Task): boolean {
  return t.status === 'working' || t.status === 'merging' || (t.status === 'queued' && t.attempt > 0);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}
