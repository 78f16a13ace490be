/**
 * Scale benchmark: many tasks with prerequisites through the whole pipeline, by scripted agents that
 * each take a fixed time, with 4, 8 and 16 agents (1, 2 and 4 per stage). Budget
 * (shared/engineering.md): with 16 agents and 1 000 tasks, throughput (tasks merged per minute) ≥ 90 %
 * of what the agents' own time allows.
 *
 * Everything is real: a clone of the benchmark repository (3 000 files, 3 000 commits;
 * bench/handoffRepo.ts; `--small`: one file), the pipeline as it ships (`node dist/cli.js run
 * --until-idle --json`, a process of its own, in parallel mode), git worktrees, and each stage a
 * process: a small shell script that waits the fixed time, commits one file in its worktree,
 * appends the completion marker and exits, noting when it started and when its marker was written.
 *
 * The ideal (bench/scaleIdeal.ts) is the makespan of an engine that costs nothing on the same task
 * graph with the same agents: a stage takes exactly the agents' own time, a task enters as soon as
 * its prerequisites are merged and a first-stage agent is free. Two ideals are reported: with the
 * fixed time the agents are told to take, and with the time they really took (start to marker,
 * averaged per stage: the wait plus the agent's own commit). The budget is judged on the second.
 * The shortfall is the engine's: detecting a marker, committing, merging, preparing the next
 * worktree and starting the next process.
 *
 * The task graph: task n needs task n − 32 and, for two tasks in three, one more task chosen at
 * random (fixed seed) between n − 64 and n − 33: a graph wide enough that 16 agents are never short
 * of ready work in the ideal. Each task names its own paths, so none is held back by overlap.
 *
 * Results: bench/results/scale.json and bench/results/scale.svg (throughput against agents, with the
 * ideal), both gitignored. Nothing is asserted.
 *
 * Run: node --import tsx bench/scale.bench.ts [--full] [--tasks N] [--agent-ms MS] [--agents 4,8,16] [--small] [--profile]
 *   default (quick): 48 tasks, 2 000 ms a stage; --full: 1 000 tasks (about an hour and a half on two cores).
 *   --profile: the pipeline process runs with `--cpu-prof` and a git trace (PIPELINE_GIT_TRACE); each
 *   run prints its top self-time functions, its longest busy stretches, its git commands and its lock
 *   waits (bench/scaleProfile.ts), and keeps the profile as bench/results/scale-<agents>.cpuprofile.
 *   Profiling slows the process a little: compare unprofiled runs with the budget.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { COMPLETED_LINE } from '../src/engine/agents/completionMarker';
import { parseTaskFileName } from '../src/engine/agents/taskFile';
import { GIT_TRACE_ENV } from '../src/engine/git/gitTrace';
import { initRepo } from '../src/engine/git/initRepo';
import { initHome } from '../src/engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../src/engine/model/configSchema';
import { Pipeline } from '../src/engine/pipeline';
import { cachedRepo, cloneRepo, REALISTIC } from './handoffRepo';
import { reportFigure } from './figures';
import { describeExtraCaCerts, dropExtraCaCerts } from './nodeStartEnv';
import { idealMakespanMs } from './scaleIdeal';
import { writePng, writeScaleChart } from './scaleChart';
import {
  describeProfile,
  describeWindows,
  summariseGitTrace,
  summariseProfile,
  summariseWindows,
} from './scaleProfile';

const STAGES = DEFAULT_STAGES.map((s) => s.name);
const ROLES = DEFAULT_STAGES.map((s) => s.role);
const FULL = process.argv.includes('--full');
const SMALL = process.argv.includes('--small');
const PROFILE = process.argv.includes('--profile');
const TASKS = numberArg('--tasks', FULL ? 1000 : 48);
const AGENT_MS = numberArg('--agent-ms', 2000);
const AGENT_COUNTS = listArg('--agents', [4, 8, 16]);
const BUDGET_FRACTION = 0.9;
/** The task count and agent count the budget is stated for. */
const BUDGET_TASKS = 1000;
const BUDGET_AGENTS = 16;
const ROOT = resolve(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
/** The bundle the CLI loads, where the engine's code is (for naming profile frames). */
const CLI_BUNDLE = join(ROOT, 'dist', 'cliMain.js');
const RESULTS = join(__dirname, 'results');
/** The nearest prerequisite of task n is n − WIDTH. */
const WIDTH = 32;

function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : NaN;
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

function listArg(name: string, fallback: number[]): number[] {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const xs = (process.argv[i + 1] ?? '').split(',').map(Number);
  if (!xs.every((x) => Number.isSafeInteger(x) && x > 0 && x % STAGES.length === 0))
    throw new Error(`${name} takes agent counts that are multiples of ${STAGES.length} (one per stage), e.g. 4,8,16`);
  return xs;
}

/**
 * The agent: wait the fixed time, commit one file, append the marker, note its times. POSIX sh
 * and git only, so the agent's own cost is a shell and two git commands, as small as an agent gets.
 */
function agentScript(): string {
  return `#!/bin/sh
# $1: task file, $2: where to note the times, $3: how long to work (ms)
start=$(date +%s%3N)
stage=$(sed -n 's/.*<!-- pipeline: .*stage=\\([^ ]*\\).*/\\1/p' "$1" | head -n 1)
sleep "$(awk "BEGIN { printf \\"%.3f\\", $3 / 1000 }")"
name=$(basename "$1" .md)
mkdir -p work
echo "$name" > "work/$name.txt"
git add -- "work/$name.txt"
git -c user.name='Scale Agent' -c user.email=scale@localhost commit -q --no-verify -m "$name"
printf '\\n%s\\n' '${COMPLETED_LINE}' >> "$1"
end=$(date +%s%3N)
echo "{\\"file\\":\\"$1\\",\\"stage\\":\\"$stage\\",\\"start\\":$start,\\"end\\":$end}" >> "$2"
`;
}

/** A small deterministic generator (mulberry32), so every run has the same graph. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Prerequisites by index (0-based): n − WIDTH, and for two in three one more from n − 2·WIDTH … n − WIDTH − 1. */
function taskGraph(n: number): number[][] {
  const rnd = random(7);
  return Array.from({ length: n }, (_, i) => {
    const pre: number[] = [];
    if (i >= WIDTH) pre.push(i - WIDTH);
    if (i > WIDTH && rnd() < 2 / 3) {
      const lo = Math.max(0, i - 2 * WIDTH);
      const extra = lo + Math.floor(rnd() * (i - WIDTH - lo));
      if (!pre.includes(extra)) pre.push(extra);
    }
    return pre;
  });
}

const idOf = (i: number): string => `TASK-${String(i + 1).padStart(4, '0')}`;

interface AgentRun {
  taskId: string;
  stage: string;
  start: number;
  end: number;
}

interface EventCounts {
  /** Task transitions by type (assign, complete, merged, and any fail, requeue or conflict). */
  transitions: Record<string, number>;
  /** The monitor's warnings (a git lock held, a commit that failed…), and the first few. */
  warnings: number;
  firstWarnings: string[];
}

interface RunFigures {
  agents: number;
  perStage: number;
  tasks: number;
  agentMs: number;
  merged: number;
  wallSeconds: number;
  /** From the pipeline process's start to the last merge. */
  makespanSeconds: number;
  /** From the first agent's start to the last merge (without the pipeline's own start-up). */
  workSeconds: number;
  throughputPerMin: number;
  /** What an engine that costs nothing would do, with the fixed time and with the agents' measured time. */
  idealNominal: { makespanSeconds: number; throughputPerMin: number };
  idealMeasured: { makespanSeconds: number; throughputPerMin: number };
  /** throughput / ideal (measured agents' time). */
  ofIdeal: number;
  ofIdealNominal: number;
  /** Mean time an agent took per stage, start to marker (ms). */
  agentOwnMs: Record<string, number>;
  /** Share of the agents' time they spent working, over the makespan. */
  agentUtilisation: number;
  /** Handoff: marker written → the next stage's agent started (ms; p50 / p95). */
  handoffMs: { n: number; p50: number; p95: number; mean: number };
  /** Last stage's marker → merged (ms). */
  mergeMs: { n: number; p50: number; p95: number; mean: number };
  /** Tasks merged per minute, per minute of the run (the timeline). */
  timeline: number[];
  loadBefore: number[];
  loadAfter: number[];
  pipelineCpuSeconds: number | null;
  exitCode: number | null;
  events: EventCounts;
}

function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const summary = (xs: number[]) => ({
  n: xs.length,
  p50: Math.round(pct(xs, 50)),
  p95: Math.round(pct(xs, 95)),
  mean: xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : NaN,
});

async function setUp(base: string, agents: number, graph: number[][]): Promise<{ dir: string; marks: string }> {
  const dir = join(base, 'repo');
  const marks = join(base, 'marks.jsonl');
  const agent = join(base, 'agent.sh');
  await writeFile(agent, agentScript(), { mode: 0o755 });
  if (SMALL) await initRepo(dir, { files: { 'README.md': '# Scale benchmark\n' } });
  else await cloneRepo(await cachedRepo(RESULTS, REALISTIC), dir);
  await initHome(dir, {
    targetBranch: 'main',
    stages: DEFAULT_STAGES,
    retry: { maxAttempts: 3, baseDelayMs: 500, maxDelayMs: 5000, jitter: 0.2 },
  });
  const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'scale bench setup' });
  try {
    for (const role of ROLES)
      for (let i = 1; i <= agents / ROLES.length; i++)
        await p.addAgent({ id: `${role}-${i}`, role, command: `sh ${agent} {taskFile} ${marks} ${AGENT_MS}` });
    await p.addTasks(
      graph.map((pre, i) => ({
        spec: {
          id: idOf(i),
          title: `Scale ${i + 1}`,
          paths: [`work/t${i + 1}/**`],
          prerequisites: pre.map(idOf),
        },
      })),
    );
    await p.setOrchestrationMode('parallel');
  } finally {
    await p.close();
  }
  return { dir, marks };
}

/** Runs `pipeline run --until-idle --json` in `dir`; the merges as they come, and the exit code. */
async function runPipeline(
  dir: string,
  tasks: number,
  onMerged: (count: number) => void,
  profileDir?: string,
): Promise<{
  started: number;
  merged: Map<string, number>;
  code: number | null;
  cpuSeconds: number | null;
  events: EventCounts;
}> {
  const started = Date.now();
  const merged = new Map<string, number>();
  const events: EventCounts = { transitions: {}, warnings: 0, firstWarnings: [] };
  const profileArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = spawn(process.execPath, [...profileArgs, CLI, 'run', '--until-idle', '--json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NO_COLOR: '1',
      ...(profileDir ? { [GIT_TRACE_ENV]: join(profileDir, 'git-trace.jsonl') } : {}),
    },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (!line.startsWith('{')) return;
    let e: {
      at?: string;
      event?: string;
      transition?: { type?: string; reason?: string };
      after?: { id?: string };
      message?: string;
    };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      return;
    }
    if (e.event === 'monitor:warning') {
      events.warnings++;
      if (events.firstWarnings.length < 5) events.firstWarnings.push(String(e.message ?? '').slice(0, 300));
    }
    if (e.event === 'task:transition' && e.transition?.type) {
      const t = e.transition.type;
      events.transitions[t] = (events.transitions[t] ?? 0) + 1;
      // Why an attempt failed or was taken back (the monitor says it in the transition, not in a warning).
      if (e.transition.reason && events.firstWarnings.length < 5)
        events.firstWarnings.push(`${t} ${e.after?.id ?? ''}: ${e.transition.reason.slice(0, 300)}`);
    }
    if (e.event === 'task:transition' && e.transition?.type === 'merged' && e.after?.id && e.at) {
      merged.set(e.after.id, Date.parse(e.at));
      onMerged(merged.size);
    }
  });
  // The pipeline process's own CPU time (user + system, its agents not included), read from /proc
  // while it runs: the last reading before it exits.
  let cpuSeconds: number | null = null;
  const cpuTimer = setInterval(() => {
    void readFile(`/proc/${child.pid}/stat`, 'utf8').then(
      (text) => {
        const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
        cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
      },
      () => undefined,
    );
  }, 500);
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  clearInterval(cpuTimer);
  if (merged.size < tasks && stderr) process.stdout.write(`\npipeline run stderr (last lines):\n${stderr}\n`);
  return { started, merged, code, cpuSeconds, events };
}

/** Prints what the profiled pipeline process spent its time on, and keeps its profile. */
async function reportProfile(
  profileDir: string,
  agents: number,
  started: number,
  merged: ReadonlyMap<string, number>,
): Promise<void> {
  const file = (await readdir(profileDir)).find((f) => f.endsWith('.cpuprofile'));
  if (!file) {
    console.log('  (no CPU profile was written: did the pipeline process exit normally?)');
    return;
  }
  await mkdir(RESULTS, { recursive: true });
  const kept = join(RESULTS, `scale-${agents}.cpuprofile`);
  await copyFile(join(profileDir, file), kept);
  const p = await summariseProfile(kept, CLI_BUNDLE, ROOT);
  const g = await summariseGitTrace(join(profileDir, 'git-trace.jsonl'));
  // Kept beside the profile, to compare parts of the run (early against late) afterwards.
  await copyFile(join(profileDir, 'git-trace.jsonl'), join(RESULTS, `scale-${agents}.git-trace.jsonl`)).catch(
    () => undefined,
  );
  for (const line of describeProfile(p, g)) console.log(`  ${line}`);
  // The first and the last tasks merged, compared per task: what grows with the run's history.
  const times = [...merged.values()].sort((a, b) => a - b);
  const n = Math.min(100, Math.floor(times.length / 4));
  const windows =
    n > 0
      ? [
          { name: `first ${n}`, from: started, to: times[n - 1]! + 1, tasks: n },
          { name: `last ${n}`, from: times[times.length - n - 1]! + 1, to: times[times.length - 1]! + 1, tasks: n },
        ]
      : [];
  const w = windows.length
    ? await summariseWindows(kept, join(profileDir, 'git-trace.jsonl'), CLI_BUNDLE, ROOT, started, windows)
    : [];
  for (const line of describeWindows(w)) console.log(`  ${line}`);
  await writeFile(
    join(RESULTS, `scale-${agents}.profile.json`),
    `${JSON.stringify({ profile: p, git: g, windows: w }, null, 2)}\n`,
  );
}

async function measure(agents: number, graph: number[][]): Promise<RunFigures> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-scale-bench-'));
  try {
    const { dir, marks } = await setUp(base, agents, graph);
    const loadBefore = loadavg();
    const t0 = Date.now();
    let last = 0;
    const profileDir = PROFILE ? join(base, 'profile') : undefined;
    if (profileDir) await mkdir(profileDir, { recursive: true });
    const r = await runPipeline(
      dir,
      graph.length,
      (n) => {
        if (n === graph.length || n - last >= Math.max(1, Math.floor(graph.length / 10))) {
          last = n;
          process.stdout.write(`  ${n}/${graph.length} merged after ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
        }
      },
      profileDir,
    );
    const loadAfter = loadavg();
    if (profileDir) await reportProfile(profileDir, agents, r.started, r.merged);
    const wallSeconds = (Date.now() - t0) / 1000;

    const runs: AgentRun[] = [];
    for (const line of (await readFile(marks, 'utf8').catch(() => '')).split('\n').filter(Boolean)) {
      const m = JSON.parse(line) as { file: string; stage: string; start: number; end: number };
      const id = parseTaskFileName(basename(m.file));
      if (id) runs.push({ taskId: id.taskId, stage: m.stage, start: m.start, end: m.end });
    }
    runs.sort((a, b) => a.start - b.start);
    const byTask = new Map<string, AgentRun[]>();
    for (const x of runs) {
      const list = byTask.get(x.taskId) ?? [];
      list.push(x);
      byTask.set(x.taskId, list);
    }
    const own: Record<string, number> = {};
    for (const s of STAGES) {
      const xs = runs.filter((x) => x.stage === s).map((x) => x.end - x.start);
      own[s] = xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : AGENT_MS;
    }
    const handoff: number[] = [];
    const merge: number[] = [];
    for (const [taskId, list] of byTask) {
      for (let k = 0; k + 1 < list.length; k++) handoff.push(list[k + 1]!.start - list[k]!.end);
      const m = r.merged.get(taskId);
      if (m !== undefined && list.length === STAGES.length) merge.push(m - list[list.length - 1]!.end);
    }
    const mergedTimes = [...r.merged.values()];
    const lastMerge = mergedTimes.length ? Math.max(...mergedTimes) : Date.now();
    const firstStart = runs.length ? runs[0]!.start : r.started;
    const makespanSeconds = (lastMerge - r.started) / 1000;
    const workSeconds = (lastMerge - firstStart) / 1000;
    const perStage = agents / STAGES.length;
    const ideal = (stageMs: number[]) => {
      const ms = idealMakespanMs(
        graph.map((prerequisites) => ({ prerequisites })),
        stageMs,
        perStage,
      );
      return { makespanSeconds: ms / 1000, throughputPerMin: graph.length / (ms / 60_000) };
    };
    const idealNominal = ideal(STAGES.map(() => AGENT_MS));
    const idealMeasured = ideal(STAGES.map((s) => own[s]!));
    const throughputPerMin = r.merged.size / (makespanSeconds / 60);
    const timeline: number[] = [];
    for (const t of mergedTimes) {
      const minute = Math.floor((t - r.started) / 60_000);
      while (timeline.length <= minute) timeline.push(0);
      timeline[minute]!++;
    }
    const busyMs = runs.reduce((a, x) => a + (x.end - x.start), 0);
    return {
      agents,
      perStage,
      tasks: graph.length,
      agentMs: AGENT_MS,
      merged: r.merged.size,
      wallSeconds,
      makespanSeconds,
      workSeconds,
      throughputPerMin,
      idealNominal,
      idealMeasured,
      ofIdeal: throughputPerMin / idealMeasured.throughputPerMin,
      ofIdealNominal: throughputPerMin / idealNominal.throughputPerMin,
      agentOwnMs: own,
      agentUtilisation: busyMs / (agents * makespanSeconds * 1000),
      handoffMs: summary(handoff),
      mergeMs: summary(merge),
      timeline,
      loadBefore,
      loadAfter,
      pipelineCpuSeconds: r.cpuSeconds,
      exitCode: r.code,
      events: r.events,
    };
  } finally {
    // The worktrees are beside the repository (`repo.pipeline-worktrees`), inside `base` too. An
    // agent's commit may have started a detached `git gc --auto` that still writes there: retried,
    // and a directory that will not go is left in the temporary directory rather than losing the run.
    await rm(base, { recursive: true, force: true, maxRetries: 10, retryDelay: 500 }).catch((e: unknown) =>
      console.log(`  (could not remove ${base}: ${String(e)})`),
    );
  }
}

async function main(): Promise<void> {
  // The agents (Node programs) start without the machine's NODE_EXTRA_CA_CERTS: see bench/nodeStartEnv.ts.
  console.log(describeExtraCaCerts());
  dropExtraCaCerts();
  const graph = taskGraph(TASKS);
  const edges = graph.reduce((a, p) => a + p.length, 0);
  if (!SMALL) await cachedRepo(RESULTS, REALISTIC);
  console.log(
    `Scale: ${TASKS} tasks (${edges} prerequisites), scripted agents of ${AGENT_MS} ms a stage, ${AGENT_COUNTS.join(' / ')} agents, parallel mode (Node ${process.version}, ${cpus().length} cores${FULL ? ', full' : ''}, ${SMALL ? 'one-file repository' : `${REALISTIC.files} files, ${REALISTIC.commits} commits`})`,
  );
  const results: RunFigures[] = [];
  for (const agents of AGENT_COUNTS) {
    process.stdout.write(
      `running: ${agents} agents (${agents / STAGES.length} per stage), load ${loadavg()[0]!.toFixed(2)}…\n`,
    );
    const f = await measure(agents, graph);
    results.push(f);
    if (f.merged < TASKS) console.log(`  only ${f.merged} of ${TASKS} merged (pipeline exit ${f.exitCode})`);
  }

  const pad = (s: string, n: number) => s.padStart(n);
  console.log('');
  console.log(
    `${'agents'.padEnd(8)}${pad('merged', 8)}${pad('makespan', 10)}${pad('ideal', 9)}${pad('tasks/min', 11)}${pad('ideal/min', 11)}${pad('of ideal', 10)}${pad('(nominal)', 11)}${pad('agent own', 11)}${pad('busy', 7)}${pad('handoff p50/p95', 18)}${pad('merge p50/p95', 16)}   load before → after`,
  );
  for (const f of results) {
    const ownMean = Object.values(f.agentOwnMs).reduce((a, b) => a + b, 0) / STAGES.length;
    console.log(
      `${String(f.agents).padEnd(8)}${pad(`${f.merged}/${f.tasks}`, 8)}${pad(`${f.makespanSeconds.toFixed(0)} s`, 10)}${pad(`${f.idealMeasured.makespanSeconds.toFixed(0)} s`, 9)}${pad(f.throughputPerMin.toFixed(1), 11)}${pad(f.idealMeasured.throughputPerMin.toFixed(1), 11)}${pad(`${(f.ofIdeal * 100).toFixed(0)} %`, 10)}${pad(`${(f.ofIdealNominal * 100).toFixed(0)} %`, 11)}${pad(`${ownMean.toFixed(0)} ms`, 11)}${pad(`${(f.agentUtilisation * 100).toFixed(0)} %`, 7)}${pad(`${f.handoffMs.p50} / ${f.handoffMs.p95} ms`, 18)}${pad(`${f.mergeMs.p50} / ${f.mergeMs.p95} ms`, 16)}   ${f.loadBefore[0]!.toFixed(2)} → ${f.loadAfter[0]!.toFixed(2)}`,
    );
  }
  for (const f of results) {
    const unusual = Object.entries(f.events.transitions).filter(
      ([t]) => !['ready', 'assign', 'complete', 'merged'].includes(t),
    );
    console.log(
      `${f.agents} agents: pipeline process CPU ${f.pipelineCpuSeconds?.toFixed(1) ?? '–'} s over ${f.makespanSeconds.toFixed(0)} s; ${f.events.warnings} warning(s)${unusual.length ? `; ${unusual.map(([t, n]) => `${t} ${n}×`).join(', ')}` : ''}${f.events.firstWarnings.length ? `; first: ${f.events.firstWarnings.join(' | ')}` : ''}`,
    );
  }
  const atBudget = results.find((f) => f.agents === BUDGET_AGENTS);
  const budgetLine = atBudget
    ? `throughput with ${BUDGET_AGENTS} agents, ${atBudget.tasks} tasks: ${(atBudget.ofIdeal * 100).toFixed(0)} % of what the agents' own time allows   budget ≥ ${BUDGET_FRACTION * 100} % (stated for ${BUDGET_TASKS} tasks)   ${atBudget.ofIdeal >= BUDGET_FRACTION ? 'OK' : 'OVER BUDGET'}`
    : `no run with ${BUDGET_AGENTS} agents: the budget is not judged`;
  console.log('');
  console.log(
    'makespan: pipeline process start → last merge; ideal: an engine that costs nothing, with the agents’ measured time per stage (nominal: with the fixed time);',
  );
  console.log(
    'agent own: start → marker, mean; busy: agents’ working time over agents × makespan; handoff: marker → next stage’s agent started; merge: last marker → merged.',
  );
  console.log(budgetLine);
  if (atBudget)
    reportFigure({
      figure: `throughput with ${BUDGET_AGENTS} agents, ${atBudget.tasks} tasks, of what the agents' time allows`,
      measured: `${(atBudget.ofIdeal * 100).toFixed(0)} %`,
      budget: `≥ ${BUDGET_FRACTION * 100} %`,
      met: atBudget.ofIdeal >= BUDGET_FRACTION,
      note: `${atBudget.throughputPerMin.toFixed(1)} vs ideal ${atBudget.idealMeasured.throughputPerMin.toFixed(1)} tasks/min; ${AGENT_MS} ms a stage; ${results
        .map((f) => `${f.agents} agents ${(f.ofIdeal * 100).toFixed(0)} %`)
        .join(
          ', ',
        )}${atBudget.tasks < BUDGET_TASKS ? `; budget stated for ${BUDGET_TASKS} tasks (run with --full)` : ''}`,
    });

  await mkdir(RESULTS, { recursive: true });
  const out = {
    at: new Date().toISOString(),
    node: process.version,
    cores: cpus().length,
    full: FULL,
    tasks: TASKS,
    prerequisites: edges,
    agentMs: AGENT_MS,
    repository: SMALL ? 'one file' : REALISTIC,
    budget: { fractionOfIdeal: BUDGET_FRACTION, agents: BUDGET_AGENTS, tasks: BUDGET_TASKS },
    runs: results,
  };
  await writeFile(join(RESULTS, 'scale.json'), `${JSON.stringify(out, null, 2)}\n`);
  await writeScaleChart(join(RESULTS, 'scale.svg'), out);
  const noPng = await writePng(join(RESULTS, 'scale.svg'), join(RESULTS, 'scale.png')).catch((e: unknown) => String(e));
  console.log(
    `\nwrote ${['scale.json', 'scale.svg', ...(noPng ? [] : ['scale.png'])].map((f) => join('bench', 'results', f)).join(', ')}${noPng ? ` (no PNG: ${noPng})` : ''}`,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
