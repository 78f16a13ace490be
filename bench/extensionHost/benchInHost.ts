// The half of bench/extension.bench.ts that runs inside VS Code's extension host (the workbench
// calls `run()` as it would a test module). It reports through console lines `BENCH <json>`, which
// the workbench forwards to the driver:
//   1. `activated`: the time the extension's own activate() took (its API measures it);
//   2. `running-extensions`: the "Running Extensions" editor is open, for the driver to read the
//      activation time VS Code recorded; the driver answers by writing the file `bench-go` next to
//      the workspace folder;
//   3. `idle`: the same figures as `done`, for a few seconds with nothing running: the floor that
//      the machine's own load sets;
//   4. `done`: the event-loop delay of this extension host while the pipeline ran every task with
//      scripted agents in integrated terminals: a `perf_hooks` histogram, and the longest stalls seen
//      by a timer that checks its own lateness, with when they happened. With `bench-profile` next to
//      the workspace folder, a CPU profile of the host during the run names what ran in the longest
//      busy stretches (the profiler costs a little, so it is off by default).
import { Session } from 'node:inspector';
import { readFileSync } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { PerformanceObserver, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import type { AgentPipelineApi } from '../../src/extension';

const EXTENSION_ID = 'agent-pipeline.agent-pipeline';
const RUN_TIMEOUT_MS = 300_000;
/** The stall sampler's period; a tick later than this by more than STALL_MS counts as a stall. */
const TICK_MS = 10;
/**
 * monitorEventLoopDelay's sampling period. Its histogram records the interval between its timer's
 * callbacks, which is this period on an idle loop (the idle floor's p50 is 5.1 ms): the delay, how
 * late the loop let the timer run, is the value less this period (as Node's own documentation
 * examples and the OpenTelemetry and Elastic agents read it).
 */
const LOOP_RESOLUTION_MS = 5;
const STALL_MS = 20;
const IDLE_MS = 5000;

function report(value: Record<string, unknown>): void {
  console.log(`BENCH ${JSON.stringify(value)}`);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await stat(file).then(
      () => true,
      () => false,
    ))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${file}`);
    await delay(50);
  }
}

/** Resolves when `done()` holds, checked on each change of the session; rejects after the time limit or when `failed()` names a reason. */
function waitForSession(
  api: AgentPipelineApi,
  done: () => boolean,
  failed: () => string | undefined,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const why = failed();
      if (why) finish(new Error(why));
      else if (done()) finish();
    };
    const sub = api.session.onDidChange(check);
    const timer = setTimeout(() => finish(new Error(`the pipeline did not finish within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error): void => {
      sub.dispose();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    check();
  });
}

export async function run(): Promise<void> {
  const extension = vscode.extensions.getExtension<AgentPipelineApi>(EXTENSION_ID);
  if (!extension) throw new Error(`${EXTENSION_ID} is not loaded`);
  const api = await extension.activate();
  await api.ready;
  const p = api.session.current;
  if (!p) throw new Error('the extension did not open the pipeline');
  report({ step: 'activated', activationMs: api.activationMs });

  await vscode.commands.executeCommand('workbench.action.showRuntimeExtensions');
  report({ step: 'running-extensions' });
  await waitForFile(join(dirname(p.home.root), 'bench-go'), 60_000);
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');

  const idle = await measureLoop(() => delay(IDLE_MS));
  report({
    step: 'idle',
    wallMs: Math.round(idle.wallMs),
    loopDelay: idle.loopDelay,
    stalls: idle.stalls,
    cpu: idle.cpu,
    gc: idle.gc,
    runQueueMs: idle.runQueueMs,
  });

  const tasks = Object.keys(p.state.tasks).length;
  let terminals = 0;
  const terminalSub = vscode.window.onDidOpenTerminal(() => terminals++);
  const profiler = (await exists(join(dirname(p.home.root), 'bench-profile'))) ? await startProfiler() : undefined;
  let runner = 'none';
  const spawns = timeSpawns(join(extension.extensionPath, 'dist'));
  const fileEvents = countFileEvents(p.home.root);
  const measured = await measureLoop(async () => {
    await vscode.commands.executeCommand('agentPipeline.start');
    if (!api.session.running) throw new Error('the pipeline did not start');
    runner = api.session.terminalRunner ? 'terminal' : 'process';
    await waitForSession(
      api,
      () => Object.values(p.state.tasks).every((t) => t.status === 'done'),
      () => {
        const blocked = Object.values(p.state.tasks).find((t) => t.status === 'blocked');
        return blocked ? `${blocked.id} was blocked: ${blocked.blocked_reason ?? ''}` : undefined;
      },
      RUN_TIMEOUT_MS,
    );
  }).finally(() => {
    terminalSub.dispose();
    spawns.dispose();
    fileEvents.dispose();
  });
  const profile = profiler ? await profiler.stop() : undefined;
  if (profile) {
    // The whole profile, for a closer look (Chrome DevTools or VS Code open .cpuprofile files).
    const file = join(extension.extensionPath, 'bench', 'results', 'extension-host.cpuprofile');
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(profile));
  }
  const busiest = profile ? busiestStretches(profile, join(extension.extensionPath, 'dist')) : undefined;
  const stallCauses = explainStalls(measured, spawns.calls, profile, join(extension.extensionPath, 'dist'));
  const ownTotals = profile ? ownFunctions(profile, join(extension.extensionPath, 'dist')) : undefined;
  await vscode.commands.executeCommand('agentPipeline.stop');
  report({
    step: 'done',
    tasks,
    merged: Object.values(p.state.tasks).filter((t) => t.merged_commit).length,
    terminals,
    runner,
    wallMs: Math.round(measured.wallMs),
    loopDelay: measured.loopDelay,
    stalls: measured.stalls,
    cpu: measured.cpu,
    gc: measured.gc,
    runQueueMs: measured.runQueueMs,
    fileEvents: fileEvents.figures(),
    spawns: spawns.figures(),
    gitSubcommands: spawns.gitSubcommands(),
    hostRssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    stallCauses,
    ...(busiest ? { busiest } : {}),
    ...(ownTotals ? { ownFunctions: ownTotals } : {}),
  });
}

/**
 * Times every `child_process.spawn` and `execFile` call made in this extension host while installed:
 * the synchronous part of starting a process (fork and exec of the host's address space) blocks the
 * event loop, and grows with the host's size. The engine's git calls go through these two.
 */
function timeSpawns(bundleDir: string): {
  figures(): Record<string, { calls: number; totalMs: number; maxMs: number; p95Ms: number }>;
  gitSubcommands(): Record<string, number>;
  /** Every call, with when it started (performance.now()) and what it ran, to set beside the stalls. */
  calls: SpawnCall[];
  dispose(): void;
} {
  // The module object itself (an import would give a copy), so that replacing its functions
  // reaches every caller in this process.
  const cp = createRequire(__filename)('node:child_process') as Record<string, (...args: unknown[]) => unknown>;
  const originals = { spawn: cp.spawn!, execFile: cp.execFile! };
  const times = new Map<string, number[]>();
  const subcommands = new Map<string, number>();
  const calls: SpawnCall[] = [];
  for (const name of ['spawn', 'execFile'] as const) {
    const original = originals[name];
    cp[name] = function (this: unknown, ...args: unknown[]) {
      const started = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        const ms = performance.now() - started;
        // Who asked: this extension (the engine's git calls), another extension (by its folder), or VS Code.
        const stack = new Error().stack ?? '';
        const other = /[/\\]extensions[/\\]([^/\\]+)[/\\]/.exec(stack)?.[1];
        const caller = stack.includes(bundleDir) ? 'agent-pipeline' : other ? `extension ${other}` : 'VS Code';
        const program = String(args[0]).trim().split(/\s+/)[0]?.split('/').pop() || '?';
        const key = `${program} (${caller})`;
        const argv = Array.isArray(args[1]) ? args[1].map(String) : [];
        calls.push({ at: started, ms, who: key, command: [program, ...argv].join(' ').slice(0, 120) });
        const list = times.get(key) ?? [];
        list.push(ms);
        times.set(key, list);
        if (program === 'git' && caller === 'agent-pipeline' && Array.isArray(args[1])) {
          const sub = gitSubcommand(args[1].map(String));
          subcommands.set(sub, (subcommands.get(sub) ?? 0) + 1);
        }
      }
    };
  }
  return {
    figures: () => {
      const out: Record<string, { calls: number; totalMs: number; maxMs: number; p95Ms: number }> = {};
      for (const [program, list] of times) {
        const sorted = [...list].sort((a, b) => a - b);
        const round = (x: number): number => Math.round(x * 10) / 10;
        out[program] = {
          calls: list.length,
          totalMs: round(list.reduce((a, b) => a + b, 0)),
          maxMs: round(sorted.at(-1) ?? 0),
          p95Ms: round(sorted[Math.floor(0.95 * (sorted.length - 1))] ?? 0),
        };
      }
      return out;
    },
    gitSubcommands: () => Object.fromEntries([...subcommands].sort((a, b) => b[1] - a[1])),
    calls,
    dispose: () => {
      cp.spawn = originals.spawn;
      cp.execFile = originals.execFile;
    },
  };
}

/**
 * Counts the file events VS Code delivers to this extension host for the workspace folder, by the
 * folder they happened in (`.pipeline/logs`, `.git/refs`, `src`…): every extension's file watchers,
 * the built-in git extension's among them (each event makes it look at its settings and schedule a
 * `git status`), see these, so fewer events is less work for the whole host.
 */
function countFileEvents(root: string): { figures(): Record<string, number>; dispose(): void } {
  const counts = new Map<string, number>();
  const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '**'));
  const count = (uri: vscode.Uri): void => {
    const rel = relative(root, uri.fsPath).split(sep);
    const key = rel.length > 2 ? rel.slice(0, 2).join('/') : rel.length === 2 ? `${rel[0]}/` : '(top)';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
  const subs = [watcher.onDidChange(count), watcher.onDidCreate(count), watcher.onDidDelete(count)];
  return {
    figures: () => Object.fromEntries([...counts].sort((a, b) => b[1] - a[1])),
    dispose: () => {
      for (const s of subs) s.dispose();
      watcher.dispose();
    },
  };
}

/** `status` in `git -c a=b --no-pager status --porcelain`. */
function gitSubcommand(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-c' || a === '-C') i++;
    else if (!a.startsWith('-')) return a;
  }
  return '?';
}

function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * A late tick of the stall sampler, split by what the host's main thread did meanwhile (from the
 * kernel's scheduler statistics for the thread): ran on a CPU, waited in the run queue for one
 * (the machine gave it no core), or neither (blocked in the kernel: a spawn waiting for its child's
 * exec, a lock), and how much of it V8's garbage collector paused the thread.
 */
interface LateTick {
  atMs: number;
  ms: number;
  onCpuMs?: number;
  runQueueMs?: number;
  gcMs: number;
}

interface LoopFigures {
  /** performance.now() when the measurement started: the origin of the stalls' `atMs`. */
  origin: number;
  wallMs: number;
  /** Delays: the histogram's values less its sampling period; `intervalMaxMs` is its longest interval as recorded. */
  loopDelay: { maxMs: number; p50Ms: number; p99Ms: number; meanMs: number; samples: number; intervalMaxMs: number };
  stalls: { over20ms: number; over50ms: number; longest: LateTick[] };
  /** CPU time this process used (user + system) and its share of one core: unlike the delays, hardly moved by other processes' load. */
  cpu: { ms: number; share: number };
  /** The main thread's time in the run queue over the whole measurement (the machine's load). */
  runQueueMs?: number;
  /** V8's garbage-collection pauses: count, total, longest. */
  gc: { count: number; totalMs: number; maxMs: number };
}

/**
 * The main thread's scheduler figures (nanoseconds on a CPU, nanoseconds waiting in the run queue),
 * from /proc on Linux; undefined elsewhere. A read of this file takes microseconds.
 */
function schedStat(): [number, number] | undefined {
  try {
    const [onCpu, waiting] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
    return [Number(onCpu), Number(waiting)];
  } catch {
    return undefined;
  }
}

/** The event loop's delay while `during` runs: a perf_hooks histogram and a timer that notes its own lateness. */
async function measureLoop(during: () => Promise<unknown>): Promise<LoopFigures> {
  const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const stalls: LateTick[] = [];
  const gcs: { start: number; ms: number }[] = [];
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration });
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const schedBefore = schedStat();
  let last = started;
  let lastSched = schedBefore;
  const sampler = setInterval(() => {
    const now = performance.now();
    const sched = schedStat();
    const late = now - last - TICK_MS;
    if (late > STALL_MS) {
      const tick: LateTick = { atMs: Math.round(last - started), ms: Math.round(late), gcMs: 0 };
      if (sched && lastSched) {
        tick.onCpuMs = Math.round((sched[0] - lastSched[0]) / 1e6);
        tick.runQueueMs = Math.round((sched[1] - lastSched[1]) / 1e6);
      }
      // GC entries arrive after the tick; their pauses are matched to it at the end.
      stalls.push(tick);
    }
    last = now;
    lastSched = sched;
  }, TICK_MS);
  histogram.enable();
  try {
    await during();
  } finally {
    histogram.disable();
    clearInterval(sampler);
  }
  // Let the observer deliver the last entries.
  await new Promise((r) => setTimeout(r, 50));
  gcObserver.disconnect();
  for (const t of stalls) {
    const from = started + t.atMs;
    const to = from + TICK_MS + t.ms;
    t.gcMs = Math.round(
      gcs.reduce((sum, g) => sum + Math.max(0, Math.min(to, g.start + g.ms) - Math.max(from, g.start)), 0),
    );
  }
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  const delay = (ns: number): number => Math.max(0, ms(ns - LOOP_RESOLUTION_MS * 1e6));
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const wallMs = performance.now() - started;
  const schedAfter = schedStat();
  const round1 = (x: number): number => Math.round(x * 10) / 10;
  return {
    origin: started,
    cpu: { ms: Math.round(cpuMs), share: Math.round((cpuMs / wallMs) * 1000) / 1000 },
    ...(schedBefore && schedAfter ? { runQueueMs: Math.round((schedAfter[1] - schedBefore[1]) / 1e6) } : {}),
    gc: {
      count: gcs.length,
      totalMs: round1(gcs.reduce((a, g) => a + g.ms, 0)),
      maxMs: round1(gcs.reduce((a, g) => Math.max(a, g.ms), 0)),
    },
    wallMs,
    loopDelay: {
      maxMs: delay(histogram.max),
      p50Ms: delay(histogram.percentile(50)),
      p99Ms: delay(histogram.percentile(99)),
      meanMs: delay(histogram.mean),
      samples: histogram.count,
      intervalMaxMs: ms(histogram.max),
    },
    stalls: {
      over20ms: stalls.length,
      over50ms: stalls.filter((x) => x.ms > 50).length,
      longest: [...stalls].sort((a, b) => b.ms - a.ms).slice(0, 8),
    },
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  /** Microseconds on the monotonic clock. */
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

async function startProfiler(): Promise<{ stop(): Promise<Profile> }> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => {
      session.post(method, params ?? {}, (err: Error | null, result?: object) => (err ? reject(err) : resolve(result)));
    });
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 1000 });
  await post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = (await post('Profiler.stop')) as { profile: Profile };
      session.disconnect();
      return profile;
    },
  };
}

/**
 * The busiest stretches of the profile with no idle sample (the loop was busy all along), each with
 * who had the CPU: this extension, another extension, or VS Code and Node themselves (a sample
 * counts for an extension when one of its functions is on the stack), and its heaviest functions.
 */
/**
 * Where this extension's own CPU time went over the whole run: for each sample with one of its
 * functions on the stack, the innermost of them (what of ours was running, or called what was).
 */
function ownFunctions(profile: Profile, bundleDir: string): { totalMs: number; top: string[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const totals = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at)?.callFrame;
      if (!f?.url.includes(bundleDir)) continue;
      const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop() ?? ''}:${f.lineNumber + 1}`;
      totals.set(key, (totals.get(key) ?? 0) + dt);
      totalMs += dt;
      break;
    }
  });
  const top = [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
  return { totalMs: Math.round(totalMs), top };
}

function busiestStretches(
  profile: Profile,
  bundleDir: string,
): { ms: number; samples: number; owners: Record<string, number>; top: string[]; ours: string[] }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ownerOf = new Map<number, string>();
  const owner = (id: number): string => {
    const known = ownerOf.get(id);
    if (known) return known;
    let found = 'vscode/node';
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const url = byId.get(at)?.callFrame.url ?? '';
      if (url.includes(bundleDir)) {
        found = 'agent-pipeline';
        break;
      }
      const ext = /\/extensions\/([^/]+)\//.exec(url);
      if (ext?.[1] && found === 'vscode/node') found = `extension ${ext[1]}`;
    }
    ownerOf.set(id, found);
    return found;
  };
  const stretches: { ms: number; samples: number[]; deltas: number[] }[] = [];
  let current: { ms: number; samples: number[]; deltas: number[] } | undefined;
  profile.samples.forEach((id, i) => {
    const name = byId.get(id)?.callFrame.functionName;
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    if (name === '(idle)') {
      if (current) stretches.push(current);
      current = undefined;
      return;
    }
    current ??= { ms: 0, samples: [], deltas: [] };
    current.ms += dt;
    current.samples.push(id);
    current.deltas.push(dt);
  });
  if (current) stretches.push(current);
  // By their samples, the CPU the host used in them: under load a stretch's wall time also holds
  // the time other processes had the core, which no change here can shorten.
  return stretches
    .sort((a, b) => b.samples.length - a.samples.length || b.ms - a.ms)
    .slice(0, 5)
    .map((s) => {
      const owners: Record<string, number> = {};
      const self = new Map<string, number>();
      const ours = new Map<string, number>();
      s.samples.forEach((id, i) => {
        const o = owner(id);
        if (o === 'agent-pipeline') {
          // The innermost function of ours on the stack: what of ours ran, or called what ran.
          for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
            const f = byId.get(at)?.callFrame;
            if (!f?.url.includes(bundleDir)) continue;
            const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop() ?? ''}:${f.lineNumber + 1}`;
            ours.set(key, (ours.get(key) ?? 0) + s.deltas[i]!);
            break;
          }
        }
        owners[o] = Math.round(((owners[o] ?? 0) + s.deltas[i]!) * 10) / 10;
        const f = byId.get(id)!.callFrame;
        const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop() ?? ''}:${f.lineNumber + 1}`;
        self.set(key, (self.get(key) ?? 0) + s.deltas[i]!);
      });
      const top = [...self]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
      const oursTop = [...ours]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
      return { ms: Math.round(s.ms * 10) / 10, samples: s.samples.length, owners, top, ours: oursTop };
    });
}

interface SpawnCall {
  /** performance.now() when the call began. */
  at: number;
  ms: number;
  who: string;
  command: string;
}

/** A tick later than this is explained: what the host started, and with a profile, what it ran. */
const EXPLAIN_MS = 30;

/**
 * For each tick late by more than EXPLAIN_MS: the processes the host started during it (the
 * synchronous part of a spawn blocks the loop) and, with a profile, who had the thread in its
 * samples. A late tick with neither spawns nor samples is one the machine did not give the host
 * the CPU for.
 */
function explainStalls(
  loop: LoopFigures,
  calls: SpawnCall[],
  profile: Profile | undefined,
  bundleDir: string,
): (LateTick & {
  spawns: string[];
  profile?: { samples: number; owners: Record<string, number>; top: string[] };
})[] {
  // The profile's clock is the monotonic clock in microseconds; performance.now() counts from the
  // process's time origin on the same clock.
  const monoOriginMs = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  const owners = profile ? sampleOwners(profile, bundleDir) : undefined;
  return loop.stalls.longest
    .filter((s) => s.ms > EXPLAIN_MS)
    .map((s) => {
      const from = loop.origin + s.atMs;
      const to = from + TICK_MS + s.ms;
      const spawns = calls
        .filter((c) => c.at < to && c.at + c.ms > from)
        .map((c) => `${c.command} ${c.ms.toFixed(1)} ms (${c.who.replace(/^\S+ \(|\)$/g, '')})`);
      if (!profile || !owners) return { ...s, spawns };
      let t = profile.startTime / 1000 - monoOriginMs;
      const byOwner: Record<string, number> = {};
      const self = new Map<string, number>();
      let samples = 0;
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      profile.samples.forEach((id, i) => {
        t += (profile.timeDeltas[i] ?? 0) / 1000;
        if (t < from || t > to) return;
        const f = byId.get(id)?.callFrame;
        if (!f || f.functionName === '(idle)') return;
        samples++;
        const o = owners.get(id) ?? '?';
        byOwner[o] = (byOwner[o] ?? 0) + 1;
        const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop() ?? ''}:${f.lineNumber + 1}`;
        self.set(key, (self.get(key) ?? 0) + 1);
      });
      const top = [...self]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([k, n]) => `${k} ${n}`);
      return { ...s, spawns, profile: { samples, owners: byOwner, top } };
    });
}

/** Who had the thread in each profile node: this extension, another extension, or VS Code and Node. */
function sampleOwners(profile: Profile, bundleDir: string): Map<number, string> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<number, string>();
  for (const n of profile.nodes) {
    let found = 'vscode/node';
    for (let at: number | undefined = n.id; at !== undefined; at = parent.get(at)) {
      const url = byId.get(at)?.callFrame.url ?? '';
      if (url.includes(bundleDir)) {
        found = 'agent-pipeline';
        break;
      }
      const ext = /\/extensions\/([^/]+)\//.exec(url);
      if (ext?.[1] && found === 'vscode/node') found = `extension ${ext[1]}`;
    }
    out.set(n.id, found);
  }
  return out;
}
