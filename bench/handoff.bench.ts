/**
 * Handoff latency: from the moment an agent's completion marker is written to the moment the next
 * stage's agent is notified (the monitor's 'agent:started' event for the task's next stage, its
 * `at`). Budget (shared/engineering.md): p95 ≤ 150 ms end to end; the seed's 15–60 s polling gave
 * 7.5–30 s on average.
 *
 * The agent is a minimal real program: it commits one small file in its worktree, appends the
 * marker to its task file, records Date.now() right after that write into a side file, and then
 * lingers like an interactive agent would (the monitor stops it), so its exit cannot announce the
 * completion: only the file event (or the rescan) can.
 *
 * Runs, each on a fresh repository in the OS temp directory with the real git workspace and the
 * process runner:
 *   1. file events on (the default), sequential mode: ≥ 100 handoffs with nothing else going on;
 *   2. file events on, parallel mode, 4 tasks in flight: the same with contention (for information);
 *   3. the seed's way: file events off, only the 15 s rescan (`fileEvents: false, rescanSeconds 15`),
 *      ≥ 10 handoffs. The agent waits a random 0–15 s before its marker, as real agents' work is not
 *      in step with the rescan. This run takes a few minutes.
 * It prints the figures and their ratio, and writes bench/results/handoff.json (gitignored).
 *
 * Run: node --expose-gc --import tsx bench/handoff.bench.ts [--quick]   (--quick: runs 1 and 2, fewer handoffs)
 */
import { readFile, rm, writeFile, mkdir, mkdtemp } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createMonitor } from '../src/cli/runtime';
import { COMPLETED_LINE } from '../src/engine/agents/completionMarker';
import { parseTaskFileName } from '../src/engine/agents/taskFile';
import { initRepo } from '../src/engine/git/initRepo';
import type { MonitorOptions } from '../src/engine/monitor/monitor';
import { Pipeline } from '../src/engine/pipeline';
import { initHome } from '../src/engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../src/engine/model/schema';

const QUICK = process.argv.includes('--quick');
const BUDGET_P95_MS = 150;
const STAGES = DEFAULT_STAGES.map((s) => s.name);
const ROLES = DEFAULT_STAGES.map((s) => s.role);

/** The bench agent (CommonJS, run by node): commit, marker, timestamp, linger. */
const AGENT = `const fs = require('fs'), path = require('path'), { execFileSync } = require('child_process');
const [file, marks, maxDelay] = process.argv.slice(2);
// With a handler, the monitor's SIGTERM waits for the event loop, so the marker and its timestamp are both written.
process.on('SIGTERM', () => process.exit(0));
const git = (...a) => execFileSync('git', ['-c', 'user.name=Bench Agent', '-c', 'user.email=bench@localhost', ...a], { stdio: 'ignore' });
const name = path.basename(file, '.md');
fs.writeFileSync(name + '.txt', name + '\\n');
git('add', '--', name + '.txt');
git('commit', '-q', '--no-verify', '-m', name);
const delay = Math.floor(Math.random() * Number(maxDelay || 0));
setTimeout(() => {
  fs.appendFileSync(file, '\\n${COMPLETED_LINE}\\n');
  const t = Date.now();
  fs.appendFileSync(marks, JSON.stringify({ file, t }) + '\\n');
  setInterval(() => undefined, 1 << 30);
}, delay);
`;

interface Scenario {
  label: string;
  orchestration: 'sequential' | 'parallel';
  tasks: number;
  agentsPerRole: number;
  /** The agent's random wait before its marker, 0 to this (ms). */
  maxDelayMs: number;
  monitor: Partial<MonitorOptions>;
  timeoutMs: number;
}

interface Figures {
  label: string;
  handoffs: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
  /** Marker written → completion committed (detection, commit of leftovers, journal). */
  detectP50: number;
  detectP95: number;
  /** Completion committed → next agent notified (tick, worktree, task file, spawn). */
  launchP50: number;
  launchP95: number;
  wallSeconds: number;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function setUp(sc: Scenario, base: string): Promise<{ dir: string; marks: string }> {
  const dir = join(base, 'repo');
  const marks = join(base, 'marks.jsonl');
  const agent = join(base, 'agent.js');
  await writeFile(agent, AGENT);
  await initRepo(dir, { files: { 'README.md': '# Handoff benchmark\n' } });
  await initHome(dir, {
    targetBranch: 'main',
    stages: DEFAULT_STAGES,
    retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0, jitter: 0 },
  });
  const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'handoff bench setup' });
  try {
    for (const role of ROLES) {
      for (let i = 1; i <= sc.agentsPerRole; i++) {
        await p.addAgent({ id: `${role}-${i}`, role, command: `{node} ${agent} {taskFile} ${marks} ${sc.maxDelayMs}` });
      }
    }
    const tasks = Array.from({ length: sc.tasks }, (_, i) => ({
      spec: { id: `TASK-${String(i + 1).padStart(3, '0')}`, title: `Handoff ${i + 1}`, paths: [`t${i + 1}/**`] },
    }));
    await p.addTasks(tasks);
    await p.setOrchestrationMode(sc.orchestration);
  } finally {
    await p.close();
  }
  return { dir, marks };
}

async function measure(sc: Scenario): Promise<Figures> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-handoff-bench-'));
  try {
    const { dir, marks } = await setUp(sc, base);
    const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'handoff bench' });
    const started: Array<{ taskId: string; stage: string; attempt: number; at: number }> = [];
    const completed = new Map<string, number>();
    p.events.on('agent:started', (e) =>
      started.push({ taskId: e.taskId, stage: e.stage, attempt: e.attempt, at: e.at }),
    );
    p.events.on('task:transition', (e) => {
      if (e.event.type === 'complete') completed.set(`${e.after.id}#${e.before.attempt}`, Date.now());
    });
    const t0 = Date.now();
    const monitor = await createMonitor(p, 'process', { scriptedAgent: '', ...sc.monitor });
    let idle: { done: number; blocked: string[]; waiting: string[] };
    try {
      await monitor.start();
      let timer: NodeJS.Timeout | undefined;
      idle = await Promise.race([
        monitor.untilIdle(),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(
              () => reject(new Error(`${sc.label}: not idle within ${sc.timeoutMs / 1000} s`)),
              sc.timeoutMs,
            )),
        ),
      ]).finally(() => clearTimeout(timer));
    } finally {
      await monitor.stop();
      await p.close();
    }
    const wallSeconds = (Date.now() - t0) / 1000;
    if (idle.done !== sc.tasks)
      throw new Error(`${sc.label}: ${idle.done} of ${sc.tasks} tasks done (blocked: ${idle.blocked.join(', ')})`);

    const latencies: number[] = [];
    const detect: number[] = [];
    const launch: number[] = [];
    for (const line of (await readFile(marks, 'utf8')).split('\n').filter(Boolean)) {
      const { file, t } = JSON.parse(line) as { file: string; t: number };
      const id = parseTaskFileName(basename(file));
      if (!id) continue;
      const mine = started.find((s) => s.taskId === id.taskId && s.attempt === id.attempt);
      if (!mine) continue;
      const next = STAGES[STAGES.indexOf(mine.stage) + 1];
      if (!next) continue; // the last stage hands over to the merge, not to an agent
      const after = started.find((s) => s.taskId === id.taskId && s.stage === next && s.attempt > id.attempt);
      if (!after) throw new Error(`${sc.label}: no ${next} start after ${basename(file)}`);
      latencies.push(after.at - t);
      const c = completed.get(`${id.taskId}#${id.attempt}`);
      if (c !== undefined) {
        detect.push(c - t);
        launch.push(after.at - c);
      }
    }
    return {
      label: sc.label,
      handoffs: latencies.length,
      p50: pct(latencies, 50),
      p95: pct(latencies, 95),
      p99: pct(latencies, 99),
      max: Math.max(...latencies),
      mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
      detectP50: pct(detect, 50),
      detectP95: pct(detect, 95),
      launchP50: pct(launch, 50),
      launchP95: pct(launch, 95),
      wallSeconds,
    };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

function row(f: Figures): string {
  const ms = (x: number) => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${x.toFixed(0)} ms`).padStart(9);
  return `${f.label.padEnd(52)}${String(f.handoffs).padStart(5)}${ms(f.p50)}${ms(f.p95)}${ms(f.p99)}${ms(f.max)}${ms(f.mean)}   ${ms(f.detectP50)}/${ms(f.detectP95).trim()}  ${ms(f.launchP50)}/${ms(f.launchP95).trim()}  ${f.wallSeconds.toFixed(0)} s`;
}

async function main(): Promise<void> {
  const scenarios: Scenario[] = [
    {
      label: 'file events on, sequential (1 task at a time)',
      orchestration: 'sequential',
      tasks: QUICK ? 12 : 34,
      agentsPerRole: 1,
      maxDelayMs: 0,
      monitor: {},
      timeoutMs: 600_000,
    },
    {
      label: 'file events on, parallel (up to 4 tasks in flight)',
      orchestration: 'parallel',
      tasks: QUICK ? 12 : 34,
      agentsPerRole: 1,
      maxDelayMs: 0,
      monitor: {},
      timeoutMs: 600_000,
    },
  ];
  if (!QUICK) {
    scenarios.push({
      label: 'seed: file events off, 15 s rescan only',
      orchestration: 'parallel',
      tasks: 4,
      agentsPerRole: 4,
      maxDelayMs: 15_000,
      monitor: { fileEvents: false, rescanSeconds: { idle: 15, normal: 15, busy: 15 } },
      timeoutMs: 900_000,
    });
  }
  const results: Figures[] = [];
  for (const sc of scenarios) {
    (globalThis as { gc?: () => void }).gc?.();
    process.stdout.write(`running: ${sc.label} (${sc.tasks} tasks)…\n`);
    results.push(await measure(sc));
  }

  console.log('');
  console.log(
    `Handoff latency: completion marker written → next stage's agent notified (Node ${process.version}, ${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}${QUICK ? ', quick' : ''})`,
  );
  console.log('');
  console.log(
    `${'run'.padEnd(52)}${'n'.padStart(5)}${'p50'.padStart(9)}${'p95'.padStart(9)}${'p99'.padStart(9)}${'max'.padStart(9)}${'mean'.padStart(9)}   detect p50/p95     launch p50/p95    wall`,
  );
  for (const f of results) console.log(row(f));
  const events = results[0]!;
  const seed = results.find((r) => r.label.startsWith('seed'));
  const ok = events.p95 <= BUDGET_P95_MS;
  console.log('');
  console.log(`detect = marker → completion committed; launch = completion committed → next agent notified.`);
  if (seed)
    console.log(
      `seed / file events: p50 ${(seed.p50 / events.p50).toFixed(0)}×, p95 ${(seed.p95 / events.p95).toFixed(0)}×, mean ${(seed.mean / events.mean).toFixed(0)}×`,
    );
  console.log(
    `budget: p95 ≤ ${BUDGET_P95_MS} ms with file events (sequential run): ${events.p95.toFixed(0)} ms   ${ok ? 'OK' : 'OVER BUDGET'}`,
  );

  const resultsDir = join(__dirname, 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(
    join(resultsDir, 'handoff.json'),
    `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cores: cpus().length, loadAverage: loadavg(), quick: QUICK, budgetP95Ms: BUDGET_P95_MS, runs: results, ratio: seed ? { p50: seed.p50 / events.p50, p95: seed.p95 / events.p95, mean: seed.mean / events.mean } : null, withinBudget: ok }, null, 2)}\n`,
  );
  console.log(`\nwrote ${join('bench', 'results', 'handoff.json')}`);
  if (!ok) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
