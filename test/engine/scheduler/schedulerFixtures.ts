import assert from 'node:assert/strict';
import { configSchema, type PipelineConfig } from '../../../src/engine/model/configSchema';
import {
  emptyState,
  type Agent,
  type PipelineState,
  type Priority,
  type Task,
  type TaskStatus,
} from '../../../src/engine/model/schema';
import { transitionTask } from '../../../src/engine/model/taskLifecycle';
import { globsOverlap } from '../../../src/engine/scheduler/globOverlap';
import { SchedulerIndex, type PlanResult } from '../../../src/engine/scheduler/schedulerIndex';
import { mulberry32 } from '../../support/prng';
import { newTask } from '../../support/taskFixtures';

/** A seeded PRNG, so property tests are reproducible from their seed. */
export const prng = mulberry32;

/**
 * Builders and a small simulated engine for the scheduler tests: it plays the facade's part (apply
 * the plan, move tasks along with transitionTask, report every change to the index) so tests can
 * run whole pipelines and check invariants at every step.
 */

export const T0 = Date.parse('2025-01-01T00:00:00.000Z');

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function testConfig(overrides: Record<string, unknown> = {}): PipelineConfig {
  return configSchema.parse(overrides);
}

export interface TaskOptions {
  prerequisites?: string[];
  priority?: Priority;
  paths?: string[];
  labels?: string[];
  seq?: number;
  status?: TaskStatus;
  stage?: string;
}

export function tid(n: number): string {
  return `TASK-${String(n).padStart(3, '0')}`;
}

export function makeTask(id: string, o: TaskOptions = {}, config: PipelineConfig = testConfig()): Task {
  const n = Number(id.split('-')[1] ?? 0);
  return newTask(
    id,
    o.seq ?? n,
    {
      title: `task ${id}`,
      prerequisites: o.prerequisites ?? [],
      priority: o.priority ?? 'medium',
      paths: o.paths ?? [],
      labels: o.labels ?? [],
      status: o.status ?? 'pending',
      stage: o.stage ?? config.stages[0]?.name ?? 'architect',
    },
    iso(T0),
  );
}

export function makeAgent(id: string, role: string): Agent {
  return { id, role, command: 'scripted', status: 'idle', current_task: null, since: null, created_at: iso(T0) };
}

/** One agent per default role, or `count` per role. */
export function defaultAgents(count = 1): Agent[] {
  const roles = ['architect', 'tester', 'implementer', 'supervisor'];
  return roles.flatMap((r) => Array.from({ length: count }, (_, i) => makeAgent(count === 1 ? r : `${r}-${i + 1}`, r)));
}

export class Sim {
  readonly state: PipelineState = emptyState();
  index: SchedulerIndex;
  now = T0;
  /** Every plan's assignments, in order, with the plan's number. */
  readonly log: { step: number; taskId: string; agentId: string; stage: string }[] = [];
  step = 0;
  /** The test's own record of which tasks are in the conflict region (independent of pathClaims). */
  readonly inConflictRegion = new Set<string>();

  constructor(
    readonly config: PipelineConfig = testConfig(),
    agents: Agent[] = defaultAgents(),
  ) {
    for (const a of agents) this.state.agents[a.id] = a;
    this.index = SchedulerIndex.build(this.state, config);
  }

  task(id: string): Task {
    const t = this.state.tasks[id];
    assert.ok(t, `no task ${id}`);
    return t;
  }

  add(...tasks: Task[]): void {
    this.index.checkNewTasks(tasks);
    for (const t of tasks) {
      this.state.tasks[t.id] = t;
      this.index.taskChanged(undefined, t);
    }
  }

  setTask(next: Task): void {
    const before = this.state.tasks[next.id];
    this.state.tasks[next.id] = next;
    this.index.taskChanged(before, next);
    const conflict = new Set(this.config.conflictStages);
    const last = next.history[next.history.length - 1];
    if (last?.event === 'assign' && conflict.has(next.stage)) this.inConflictRegion.add(next.id);
    if (!conflict.has(next.stage) || ['pending', 'blocked', 'done', 'cancelled'].includes(next.status))
      this.inConflictRegion.delete(next.id);
  }

  setAgent(next: Agent): void {
    const before = this.state.agents[next.id];
    this.state.agents[next.id] = next;
    this.index.agentChanged(before, next);
  }

  /** The facade's part: move every ready pending task to queued. */
  promoteReady(): string[] {
    const ready = this.index.readyPending();
    for (const id of ready) this.setTask(transitionTask(this.task(id), { type: 'ready' }, iso(this.now)));
    return ready;
  }

  plan(mode: string, eligible?: (t: Task) => boolean): PlanResult {
    this.step++;
    const r = this.index.plan(mode, this.state, eligible ? { now: this.now, eligible } : { now: this.now });
    for (const a of r.assignments) {
      const t = this.task(a.taskId);
      assert.equal(t.status, 'queued');
      assert.equal(t.stage, a.stage);
      this.setTask(transitionTask(t, { type: 'assign', agent: a.agentId, attempt: t.attempt + 1 }, iso(this.now)));
      const agent = this.state.agents[a.agentId];
      assert.ok(agent && agent.status === 'idle', `agent ${a.agentId} is not idle`);
      this.setAgent({ ...agent, status: 'working', current_task: a.taskId, since: iso(this.now) });
      this.log.push({ step: this.step, ...a });
    }
    if (r.currentTask !== undefined) this.state.current_task = r.currentTask;
    return r;
  }

  private freeAgentOf(t: Task): void {
    const agentId = t.assigned_to;
    if (!agentId) return;
    const agent = this.state.agents[agentId];
    if (agent) this.setAgent({ ...agent, status: 'idle', current_task: null, since: null });
  }

  /** The agent finished the task's stage: on to the next stage, or to merging after the last. */
  complete(id: string): void {
    const t = this.task(id);
    const i = this.config.stages.findIndex((s) => s.name === t.stage);
    const next = this.config.stages[i + 1]?.name ?? null;
    this.freeAgentOf(t);
    this.setTask(transitionTask(t, { type: 'complete', nextStage: next }, iso(this.now)));
  }

  merge(id: string): void {
    this.setTask(transitionTask(this.task(id), { type: 'merged', commit: `c-${id}` }, iso(this.now)));
  }

  fail(id: string, backoffMs: number): void {
    const t = this.task(id);
    this.freeAgentOf(t);
    this.setTask(
      transitionTask(t, { type: 'fail', reason: 'exit 1', notBefore: iso(this.now + backoffMs) }, iso(this.now)),
    );
  }

  /** The reviewer sends the task back to the rework stage. */
  changesRequested(id: string): void {
    const t = this.task(id);
    this.freeAgentOf(t);
    this.setTask(
      transitionTask(
        t,
        { type: 'changes_requested', reworkStage: this.config.reworkStage, reason: 'fix the tests' },
        iso(this.now),
      ),
    );
  }

  /** The merge would conflict: back to the rework stage. */
  mergeConflict(id: string): void {
    this.setTask(
      transitionTask(
        this.task(id),
        { type: 'conflict', reworkStage: this.config.reworkStage, files: ['src/a.ts'] },
        iso(this.now),
      ),
    );
  }

  block(id: string): void {
    const t = this.task(id);
    this.freeAgentOf(t);
    this.setTask(transitionTask(t, { type: 'block', reason: 'needs a person' }, iso(this.now)));
  }

  /** Advances one task in flight: working → next stage (or merging), merging → done. */
  advance(id: string): void {
    const t = this.task(id);
    if (t.status === 'working') this.complete(id);
    else if (t.status === 'merging') this.merge(id);
    else assert.fail(`${id} is ${t.status}, not in flight`);
  }

  inFlight(): Task[] {
    return Object.values(this.state.tasks).filter((t) => t.status === 'working' || t.status === 'merging');
  }

  allFinal(): boolean {
    return Object.values(this.state.tasks).every(
      (t) => t.status === 'done' || t.status === 'cancelled' || t.status === 'blocked',
    );
  }

  /** Tasks working at each stage right now. */
  workingByStage(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const t of Object.values(this.state.tasks)) if (t.status === 'working') out[t.stage] = t.id;
    return out;
  }

  /** Checks the invariants that must hold after every step. */
  checkInvariants(): void {
    const region = [...this.inConflictRegion].sort();
    for (let i = 0; i < region.length; i++) {
      for (let j = i + 1; j < region.length; j++) {
        const a = this.task(region[i] as string);
        const b = this.task(region[j] as string);
        const clash = a.paths.find((p) => b.paths.some((q) => globsOverlap(p, q)));
        assert.equal(
          clash,
          undefined,
          `step ${this.step}: ${a.id} (${a.stage}) and ${b.id} (${b.stage}) overlap in the conflict stages`,
        );
      }
    }
    for (const id of Object.keys(this.state.tasks)) {
      assert.equal(
        this.index.holdsClaim(id),
        this.inConflictRegion.has(id),
        `step ${this.step}: claim of ${id} disagrees with the simulation`,
      );
    }
  }

  /**
   * Runs until every task is final (or `until`): plan, then advance one task in flight chosen by
   * `pick` (the oldest by default) or let `act` move things, jumping the clock to `wakeAt` when
   * only back-offs remain.
   */
  run(
    mode: string,
    opts: {
      pick?: (inFlight: Task[]) => Task;
      /** Replaces "advance the picked task": the test moves tasks itself. */
      act?: (inFlight: Task[]) => void;
      eligible?: (t: Task) => boolean;
      maxSteps?: number;
      onStep?: (r: PlanResult) => void;
      until?: () => boolean;
    } = {},
  ): void {
    const maxSteps = opts.maxSteps ?? 100_000;
    const finished = opts.until ?? ((): boolean => this.allFinal());
    while (!finished()) {
      assert.ok(this.step < maxSteps, `no progress after ${maxSteps} steps`);
      this.promoteReady();
      const r = this.plan(mode, opts.eligible);
      this.checkInvariants();
      opts.onStep?.(r);
      const inFlight = this.inFlight().sort((a, b) => a.seq - b.seq);
      if (inFlight.length === 0) {
        if (finished()) break;
        // onStep may have changed the state since the plan: ask again (plan changes nothing).
        const fresh = this.index.plan(
          mode,
          this.state,
          opts.eligible ? { now: this.now, eligible: opts.eligible } : { now: this.now },
        );
        if (fresh.assignments.length > 0) continue;
        assert.ok(
          fresh.wakeAt !== null,
          `stuck at step ${this.step}: nothing in flight, nothing to wake for; ${JSON.stringify(this.index.snapshot())}`,
        );
        assert.ok(fresh.wakeAt > this.now, 'wakeAt lies in the future');
        this.now = fresh.wakeAt;
        continue;
      }
      if (opts.act) opts.act(inFlight);
      else this.advance((opts.pick ? opts.pick(inFlight) : inFlight[0])?.id ?? '');
    }
  }
}
