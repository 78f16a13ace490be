import type { PipelineConfig, StageConfig } from '../model/configSchema';
import type { PipelineState, Task } from '../model/schema';
import { HUMAN_ROLE } from '../model/humanStage';
import { firstOverlap } from './globOverlap';
import type { Assignment, PlanView } from './orchestrationStrategy';
import type { SchedulerParts } from './schedulerParts';
import { backoffUntil } from './taskQueues';

/**
 * One plan's view of the index (see PlanView). It reads the index's structures and keeps this plan's
 * choices to itself (agents taken, tasks chosen, claims taken), so the index and the state are left
 * as they were: the facade commits the assignments and reports them back through taskChanged.
 */
export class PlanContext implements PlanView {
  readonly assignments: Assignment[] = [];
  private readonly takenAgents = new Set<string>();
  private readonly chosenTasks = new Set<string>();
  /** Queued tasks found behind a claim held before this plan; the index parks them once the plan is done. */
  readonly parkings: { taskId: string; stage: string; holder: string }[] = [];
  /** Claims taken in this plan: few (at most one per free agent), so a list is enough. */
  private readonly newClaims: { taskId: string; paths: readonly string[] }[] = [];
  /** Tasks working per stage, counted once per plan on first use (only stages with maxAgents ask). */
  private working: Map<string, number> | undefined;
  readonly config: PipelineConfig;
  readonly stages: readonly StageConfig[];

  constructor(
    private readonly parts: SchedulerParts,
    readonly state: PipelineState,
    readonly now: number,
    private readonly eligible: ((t: Task) => boolean) | undefined,
    private readonly unavailable?: (agentId: string) => boolean,
  ) {
    this.config = parts.config;
    this.stages = parts.config.stages;
  }

  task(id: string): Task | undefined {
    return this.parts.tasks.get(id);
  }

  isEligible(task: Task): boolean {
    return this.eligible ? this.eligible(task) : true;
  }

  prerequisitesMet(taskId: string): boolean {
    return this.parts.graph.unmetCount(taskId) === 0;
  }

  *candidates(stage: string): Generator<Task, void, undefined> {
    for (const entry of this.parts.queues.ordered(stage)) {
      const task = this.parts.tasks.get(entry.key);
      if (!task || this.chosenTasks.has(task.id)) continue;
      // The queues were promoted with this plan's clock; a clock that went backwards (a test, a
      // corrected system clock) must still not start a task before its time.
      const until = backoffUntil(task);
      if (until !== null && until > this.now) continue;
      if (!this.isEligible(task)) continue;
      yield task;
    }
  }

  waiting(stage: string): Task[] {
    const out: Task[] = [];
    for (const id of this.parts.queues.waiting(stage)) {
      const t = this.parts.tasks.get(id);
      if (t) out.push(t);
    }
    return out;
  }

  freeAgents(role: string): string[] {
    // People work human stages (model/humanStage.ts): no agent is ever given their tasks.
    if (role === HUMAN_ROLE) return [];
    return this.parts.agents.idle(role).filter((a) => !this.takenAgents.has(a) && !(this.unavailable?.(a) ?? false));
  }

  conflictFree(task: Task, stage: string): boolean {
    if (!this.parts.conflictStages.has(stage) || task.paths.length === 0) return true;
    if (this.parts.claims.holds(task.id)) return true;
    const held = this.parts.claims.conflicts(task.id, task.paths, 1)[0];
    if (held) {
      // Held claims only change through taskChanged, so the task can wait out of the queue until
      // this one ends. Claims taken in this plan are not committed yet (a dry run never commits
      // them), so conflicts with those are only skipped.
      if (task.stage === stage) this.parkings.push({ taskId: task.id, stage, holder: held.holder });
      return false;
    }
    return !this.newClaims.some((c) => c.taskId !== task.id && firstOverlap(c.paths, task.paths) !== null);
  }

  holdsClaim(taskId: string): boolean {
    return this.parts.claims.holds(taskId);
  }

  *inFlight(): Generator<Task, void, undefined> {
    for (const id of this.parts.inFlight) {
      const t = this.parts.tasks.get(id);
      if (t) yield t;
    }
  }

  *started(): Generator<Task, void, undefined> {
    for (const id of this.parts.started) {
      const t = this.parts.tasks.get(id);
      if (t) yield t;
    }
  }

  room(stage: string): number {
    const max = this.parts.stageByName.get(stage)?.maxAgents;
    if (max === undefined) return Infinity;
    if (!this.working) {
      // In-flight tasks are few (at most one per agent, plus merges), so counting them is cheap.
      this.working = new Map();
      for (const id of this.parts.inFlight) {
        const t = this.parts.tasks.get(id);
        if (t?.status === 'working') this.working.set(t.stage, (this.working.get(t.stage) ?? 0) + 1);
      }
    }
    return Math.max(0, max - (this.working.get(stage) ?? 0));
  }

  assign(task: Task, agentId: string, stage: string): void {
    // These are strategy bugs, not user errors: fail loudly rather than hand the facade a bad plan.
    const agent = this.parts.agents.get(agentId);
    const stageConfig = this.parts.stageByName.get(stage);
    if (!agent || agent.status !== 'idle' || this.takenAgents.has(agentId))
      throw new Error(`scheduler: agent ${agentId} is not free`);
    if (!stageConfig || stageConfig.role !== agent.role)
      throw new Error(`scheduler: agent ${agentId} (${agent.role}) cannot work stage ${stage}`);
    if (task.status !== 'queued' || task.stage !== stage || this.chosenTasks.has(task.id))
      throw new Error(`scheduler: task ${task.id} is not queued at ${stage}`);
    if (this.room(stage) <= 0) throw new Error(`scheduler: stage ${stage} is at its maxAgents limit`);
    this.takenAgents.add(agentId);
    this.chosenTasks.add(task.id);
    if (this.working) this.working.set(stage, (this.working.get(stage) ?? 0) + 1);
    if (this.parts.conflictStages.has(stage) && task.paths.length > 0)
      this.newClaims.push({ taskId: task.id, paths: task.paths });
    this.assignments.push({ taskId: task.id, agentId, stage });
  }

  nextWake(stage?: string): number | null {
    return this.parts.queues.nextWake(this.now, stage);
  }
}
