/**
 * Scheduler benchmark: the cost of the next assignment at 10 000 tasks and 30 000 prerequisite
 * edges (a random DAG), amortised over a full simulated parallel run (every task through the four
 * stages and merged), against a naive rescan-all scheduler written here for comparison only.
 *
 * Budget (shared/engineering.md): ≤ 50 µs per assignment, amortised. What is timed is the
 * scheduler's own work, the facade's share of it included: readyPending, plan, and the
 * taskChanged / agentChanged calls after every change. The simulated facade's own work (building
 * the next task with transitionTask) is not timed, for either scheduler.
 *
 * The naive baseline makes exactly the same decisions (the run checks that the two assignment logs
 * agree), so the comparison is of cost alone.
 *
 * Run: node --expose-gc --import tsx bench/scheduler.bench.ts [--quick] [--indexed-only]
 * Writes bench/results/scheduler.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { globsOverlap } from '../src/engine/scheduler/globOverlap';
import { holdsClaim } from '../src/engine/scheduler/pathClaims';
import { SchedulerIndex } from '../src/engine/scheduler/schedulerIndex';
import { backoffUntil } from '../src/engine/scheduler/taskQueues';
import { configSchema, type PipelineConfig } from '../src/engine/model/configSchema';
import {
  emptyState,
  PRIORITY_RANK,
  type Agent,
  type PipelineState,
  type Priority,
  type Task,
} from '../src/engine/model/schema';
import { transitionTask } from '../src/engine/model/taskLifecycle';
import { mulberry32 as prng } from '../test/support/prng';
import { newTask } from '../test/support/taskFixtures';
import { reportFigure } from './figures';

const QUICK = process.argv.includes('--quick');
/** Skips the naive baseline: for profiling the index. */
const INDEXED_ONLY = process.argv.includes('--indexed-only');
const TASKS = QUICK ? 2_000 : 10_000;
const EDGES = TASKS * 3;
const AGENTS_PER_ROLE = 2;
/** The naive scheduler rescans everything per decision; cap its run so the bench ends in reasonable time. */
const NAIVE_MAX_STEPS = QUICK ? Infinity : 10_000;
const AT = '2025-01-01T00:00:00.000Z';

function taskId(n: number): string {
  return `TASK-${String(n).padStart(5, '0')}`;
}

function buildState(config: PipelineConfig): PipelineState {
  const rnd = prng(42);
  const prereqs: Set<number>[] = Array.from({ length: TASKS }, () => new Set<number>());
  // Random DAG: an edge always points to an earlier task, so there is no cycle. Most edges are
  // local (a task depends on recent work, as in a real backlog), some reach far back.
  for (let e = 0; e < EDGES;) {
    const i = 1 + Math.floor(rnd() * (TASKS - 1));
    const j = rnd() < 0.8 ? Math.max(0, i - 1 - Math.floor(rnd() * 200)) : Math.floor(rnd() * i);
    const set = prereqs[i] as Set<number>;
    if (!set.has(j)) {
      set.add(j);
      e++;
    }
  }
  const priorities: Priority[] = ['critical', 'high', 'medium', 'medium', 'medium', 'low'];
  const state = emptyState();
  for (let i = 0; i < TASKS; i++) {
    const module = Math.floor(rnd() * 300);
    const paths =
      rnd() < 0.5
        ? [`src/mod${module}/**`]
        : [`src/mod${module}/file${Math.floor(rnd() * 5)}.ts`, `test/mod${module}/**`];
    if (rnd() < 0.002) paths.push('**/*.json');
    const id = taskId(i + 1);
    state.tasks[id] = newTask(
      id,
      i,
      {
        title: id,
        prerequisites: [...(prereqs[i] as Set<number>)].map((p) => taskId(p + 1)),
        priority: priorities[Math.floor(rnd() * priorities.length)] as Priority,
        paths,
        stage: config.stages[0]?.name ?? 'architect',
      },
      AT,
    );
  }
  for (const stage of config.stages) {
    for (let k = 1; k <= AGENTS_PER_ROLE; k++) {
      const agent: Agent = {
        id: `${stage.role}-${k}`,
        role: stage.role,
        command: 'scripted',
        status: 'idle',
        current_task: null,
        since: null,
        created_at: AT,
      };
      state.agents[agent.id] = agent;
    }
  }
  return state;
}

interface Scheduler {
  readyPending(): string[];
  taskChanged(before: Task | undefined, after: Task): void;
  agentChanged(before: Agent | undefined, after: Agent): void;
  plan(state: PipelineState, now: number): { taskId: string; agentId: string; stage: string }[];
}

class IndexedScheduler implements Scheduler {
  constructor(private readonly index: SchedulerIndex) {}
  readyPending(): string[] {
    return this.index.readyPending();
  }
  taskChanged(before: Task | undefined, after: Task): void {
    this.index.taskChanged(before, after);
  }
  agentChanged(before: Agent | undefined, after: Agent): void {
    this.index.agentChanged(before, after);
  }
  plan(state: PipelineState, now: number): { taskId: string; agentId: string; stage: string }[] {
    return this.index.plan('parallel', state, { now }).assignments;
  }
}

/**
 * The rescan-all baseline: what a scheduler without an index does, reading the state afresh for
 * every decision. Same rules and same tie-breaks as the parallel strategy.
 */
class NaiveScheduler implements Scheduler {
  private readonly conflictStages: Set<string>;
  constructor(
    private readonly state: PipelineState,
    private readonly config: PipelineConfig,
  ) {
    this.conflictStages = new Set(config.conflictStages);
  }
  readyPending(): string[] {
    const tasks = this.state.tasks;
    return Object.values(tasks)
      .filter((t) => t.status === 'pending' && t.prerequisites.every((p) => tasks[p]?.status === 'done'))
      .sort((a, b) => a.seq - b.seq)
      .map((t) => t.id);
  }
  taskChanged(): void {}
  agentChanged(): void {}
  plan(state: PipelineState, now: number): { taskId: string; agentId: string; stage: string }[] {
    // One pass over every task collects the claims and each stage's queue; then each free agent
    // takes the best conflict-free task of its stage's queue.
    const claims: (readonly string[])[] = [];
    const queued = new Map<string, Task[]>();
    for (const t of Object.values(state.tasks)) {
      if (this.conflictStages.has(t.stage) && holdsClaim(t, this.conflictStages)) claims.push(t.paths);
      if (t.status !== 'queued') continue;
      const until = backoffUntil(t);
      if (until !== null && until > now) continue;
      let list = queued.get(t.stage);
      if (!list) queued.set(t.stage, (list = []));
      list.push(t);
    }
    const out: { taskId: string; agentId: string; stage: string }[] = [];
    const taken = new Set<string>();
    const chosen = new Set<string>();
    for (const stage of [...this.config.stages].reverse()) {
      const agents = Object.values(state.agents)
        .filter((a) => a.role === stage.role && a.status === 'idle' && !taken.has(a.id))
        .map((a) => a.id)
        .sort();
      const conflictStage = this.conflictStages.has(stage.name);
      for (const agentId of agents) {
        let best: Task | undefined;
        for (const t of queued.get(stage.name) ?? []) {
          if (chosen.has(t.id)) continue;
          if (
            best &&
            (PRIORITY_RANK[t.priority] < PRIORITY_RANK[best.priority] ||
              (PRIORITY_RANK[t.priority] === PRIORITY_RANK[best.priority] && t.seq > best.seq))
          )
            continue;
          if (
            conflictStage &&
            !holdsClaim(t, this.conflictStages) &&
            claims.some((c) => c.some((p) => t.paths.some((q) => globsOverlap(p, q))))
          )
            continue;
          best = t;
        }
        if (!best) break;
        taken.add(agentId);
        chosen.add(best.id);
        if (conflictStage) claims.push(best.paths);
        out.push({ taskId: best.id, agentId, stage: stage.name });
      }
    }
    return out;
  }
}

interface RunResult {
  assignments: number;
  steps: number;
  schedulerMs: number;
  planMs: number;
  planSamplesUs: number[];
  log: string[];
  complete: boolean;
}

/**
 * The simulated facade: promote ready tasks, plan, commit the assignments, then finish the stage of
 * the task in flight the longest (stages take equal time). Only scheduler calls are timed.
 */
function simulate(state: PipelineState, config: PipelineConfig, scheduler: Scheduler, maxSteps: number): RunResult {
  const stageIndex = new Map(config.stages.map((s, i) => [s.name, i]));
  const inFlight: string[] = [];
  const log: string[] = [];
  const planSamplesUs: number[] = [];
  let schedulerMs = 0;
  let planMs = 0;
  let done = 0;
  let steps = 0;
  let t0 = 0;
  const setTask = (next: Task): void => {
    const before = state.tasks[next.id];
    state.tasks[next.id] = next;
    t0 = performance.now();
    scheduler.taskChanged(before, next);
    schedulerMs += performance.now() - t0;
  };
  const setAgent = (next: Agent): void => {
    const before = state.agents[next.id];
    state.agents[next.id] = next;
    t0 = performance.now();
    scheduler.agentChanged(before, next);
    schedulerMs += performance.now() - t0;
  };
  while (done < TASKS && steps < maxSteps) {
    steps++;
    t0 = performance.now();
    const ready = scheduler.readyPending();
    schedulerMs += performance.now() - t0;
    for (const id of ready) setTask(transitionTask(state.tasks[id] as Task, { type: 'ready' }, AT));

    t0 = performance.now();
    const assignments = scheduler.plan(state, 0);
    const dt = performance.now() - t0;
    schedulerMs += dt;
    planMs += dt;
    planSamplesUs.push(dt * 1000);

    for (const a of assignments) {
      const task = state.tasks[a.taskId] as Task;
      setTask(transitionTask(task, { type: 'assign', agent: a.agentId, attempt: task.attempt + 1 }, AT));
      setAgent({ ...(state.agents[a.agentId] as Agent), status: 'working', current_task: a.taskId });
      inFlight.push(a.taskId);
      log.push(`${a.taskId}@${a.stage}:${a.agentId}`);
    }

    const id = inFlight.shift();
    if (id === undefined) throw new Error(`stuck after ${steps} steps with ${done} tasks done`);
    const task = state.tasks[id] as Task;
    const agentId = task.assigned_to as string;
    const next = config.stages[(stageIndex.get(task.stage) ?? 0) + 1]?.name ?? null;
    setAgent({ ...(state.agents[agentId] as Agent), status: 'idle', current_task: null });
    const completed = transitionTask(task, { type: 'complete', nextStage: next }, AT);
    if (next === null) {
      setTask(completed);
      setTask(transitionTask(completed, { type: 'merged', commit: 'c' }, AT));
      done++;
    } else setTask(completed);
  }
  return { assignments: log.length, steps, schedulerMs, planMs, planSamplesUs, log, complete: done === TASKS };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

const config = configSchema.parse({});

// Index construction (what recovery after a crash pays) and a whole-backlog cycle check.
const fresh = buildState(config);
gc();
let t = performance.now();
SchedulerIndex.build(fresh, config);
const buildMs = performance.now() - t;
const empty = SchedulerIndex.build(emptyState(), config);
t = performance.now();
empty.checkNewTasks(Object.values(fresh.tasks));
const cycleCheckMs = performance.now() - t;

// The indexed scheduler over a full run, several times: the machine is shared (other builds and
// tests run beside the bench), so the best run is the figure and the spread is reported with it.
const RUNS = 3;
const indexedRuns: RunResult[] = [];
for (let i = 0; i < RUNS; i++) {
  const indexedState = buildState(config);
  const index = SchedulerIndex.build(indexedState, config);
  gc();
  const run = simulate(indexedState, config, new IndexedScheduler(index), Infinity);
  if (!run.complete) throw new Error('the indexed run did not finish');
  indexedRuns.push(run);
}
indexedRuns.sort((a, b) => a.schedulerMs - b.schedulerMs);
const indexed = indexedRuns[0] as RunResult;

// The naive baseline, on the same backlog and the same decisions.
const naiveState = buildState(config);
gc();
const naive = simulate(naiveState, config, new NaiveScheduler(naiveState, config), INDEXED_ONLY ? 1 : NAIVE_MAX_STEPS);
const agreeUpTo = naive.log.length;
for (let i = 0; i < agreeUpTo; i++) {
  if (naive.log[i] !== indexed.log[i])
    throw new Error(`decision ${i} differs: indexed ${indexed.log[i]}, naive ${naive.log[i]}`);
}

const perAssignmentUs = (r: RunResult): number => (r.schedulerMs * 1000) / r.assignments;
const planStats = (r: RunResult): string =>
  [(r.planMs * 1000) / r.steps, percentile(r.planSamplesUs, 50), percentile(r.planSamplesUs, 99)]
    .map((x) => x.toFixed(1))
    .join(' / ');
const rows: [string, string, string][] = [
  ['tasks / edges / agents', `${TASKS} / ${EDGES} / ${AGENTS_PER_ROLE * config.stages.length}`, ''],
  ['indexed: assignments (full run)', String(indexed.assignments), `${indexed.steps} plans`],
  [
    'indexed: µs per assignment, amortised',
    perAssignmentUs(indexed).toFixed(2),
    `budget ≤ 50; best of ${RUNS}, all: ${indexedRuns.map((r) => perAssignmentUs(r).toFixed(1)).join(', ')}`,
  ],
  ['indexed: plan() mean / p50 / p99 µs', planStats(indexed), ''],
  [
    'indexed: upkeep µs per assignment',
    (((indexed.schedulerMs - indexed.planMs) * 1000) / indexed.assignments).toFixed(2),
    'readyPending + taskChanged + agentChanged',
  ],
  [
    'naive: assignments measured',
    String(naive.assignments),
    naive.complete ? 'full run' : `first ${naive.steps} plans`,
  ],
  ['naive: µs per assignment, amortised', perAssignmentUs(naive).toFixed(2), 'rescan-all'],
  ['naive: plan() mean / p50 / p99 µs', planStats(naive), ''],
  [
    'speed-up',
    `${(perAssignmentUs(naive) / perAssignmentUs(indexed)).toFixed(0)}×`,
    `decisions identical for ${agreeUpTo}`,
  ],
  ['SchedulerIndex.build (recovery), ms', buildMs.toFixed(1), ''],
  ['checkNewTasks, whole backlog, ms', cycleCheckMs.toFixed(1), ''],
  ['load average at the end (1 min)', loadavg()[0]?.toFixed(2) ?? '?', `${cpus().length} cores`],
];
const width = Math.max(...rows.map((r) => r[0].length));
console.log(`scheduler: next assignment at ${TASKS} tasks / ${EDGES} edges${QUICK ? ' (quick)' : ''}`);
for (const [k, v, note] of rows) console.log(`  ${k.padEnd(width)}  ${v.padStart(12)}  ${note}`);

const verdict = perAssignmentUs(indexed) <= 50;
console.log(verdict ? '  within budget' : '  OVER BUDGET');
reportFigure({
  figure: `next assignment at ${TASKS} tasks / ${EDGES} edges, amortised`,
  measured: `${perAssignmentUs(indexed).toFixed(1)} µs`,
  budget: '≤ 50 µs',
  met: verdict,
  ...(QUICK ? { note: 'quick' } : {}),
});
mkdirSync(join('bench', 'results'), { recursive: true });
writeFileSync(
  join('bench', 'results', 'scheduler.json'),
  `${JSON.stringify(
    {
      at: new Date().toISOString(),
      node: process.version,
      tasks: TASKS,
      edges: EDGES,
      agents: AGENTS_PER_ROLE * config.stages.length,
      indexed: {
        assignments: indexed.assignments,
        plans: indexed.steps,
        usPerAssignment: perAssignmentUs(indexed),
        planP50Us: percentile(indexed.planSamplesUs, 50),
        planP99Us: percentile(indexed.planSamplesUs, 99),
      },
      naive: {
        assignments: naive.assignments,
        plans: naive.steps,
        fullRun: naive.complete,
        usPerAssignment: perAssignmentUs(naive),
        planP50Us: percentile(naive.planSamplesUs, 50),
        planP99Us: percentile(naive.planSamplesUs, 99),
      },
      indexedRunsUsPerAssignment: indexedRuns.map(perAssignmentUs),
      buildMs,
      cycleCheckMs,
      loadAverage: loadavg(),
      budgetUs: 50,
      withinBudget: verdict,
    },
    null,
    2,
  )}\n`,
);
if (!verdict) process.exitCode = 1;
