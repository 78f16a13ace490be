/**
 * What the pipeline process of a scale run spent its time on (bench/scale.bench.ts --profile): its
 * CPU profile (`node --cpu-prof`) summarised as the functions with the most self time and the
 * longest stretches with no idle sample (the event loop busy all along, so nothing else could
 * start), and its git trace (src/engine/git/gitTrace.ts) as time per git subcommand and waits per
 * lock level. Positions in the bundle are mapped back to the sources through its source map, when
 * there is one (a development build).
 */
import { readFile } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { basename, relative } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface BusyStretch {
  /** From the profile's start (s). */
  readonly atSeconds: number;
  readonly ms: number;
  /** The functions with the most self time in it. */
  readonly top: string[];
}

export interface ProfileSummary {
  readonly seconds: number;
  /** Share of the profile with a non-idle sample. */
  readonly busy: number;
  readonly topSelf: string[];
  /** Our own functions (the bundle's) by time on the stack, innermost of ours per sample. */
  readonly topOwn: string[];
  readonly longestBusy: BusyStretch[];
}

export interface GitSummary {
  /** Per subcommand: count, total and percentiles (ms). */
  readonly commands: Record<string, { n: number; totalMs: number; p50: number; p95: number; max: number }>;
  /** Per lock level and mode: waits, their total and the longest (ms), and how many waited over 10 ms. */
  readonly lockWaits: Record<string, { n: number; totalMs: number; max: number; over10ms: number }>;
  /** Per lock level and mode: how long holds lasted (ms). */
  readonly lockHeld: Record<string, { n: number; totalMs: number; p50: number; p95: number; max: number }>;
  readonly lockBusy: number;
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Names a frame by its source position when the bundle's source map knows it. */
function namer(bundle: string, map: SourceMap | undefined, root: string): (f: CallFrame) => string {
  const cache = new Map<string, string>();
  return (f) => {
    const key = `${f.functionName}|${f.url}|${f.lineNumber}|${f.columnNumber}`;
    const known = cache.get(key);
    if (known) return known;
    let where = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : '';
    if (map && f.url.endsWith(bundle)) {
      const e = map.findEntry(f.lineNumber, f.columnNumber) as { originalSource?: string; originalLine?: number };
      if (e.originalSource)
        where = `${relative(root, e.originalSource.replace(/^file:\/\//, ''))}:${(e.originalLine ?? 0) + 1}`;
    }
    const name = `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    cache.set(key, name);
    return name;
  };
}

const IDLE = new Set(['(idle)']);

export async function summariseProfile(file: string, bundleFile: string, root: string): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const map = await readFile(`${bundleFile}.map`, 'utf8').then(
    (t) => new SourceMap(JSON.parse(t) as ConstructorParameters<typeof SourceMap>[0]),
    () => undefined,
  );
  const name = namer(basename(bundleFile), map, root);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample i lasted timeDeltas[i + 1] (the delta before the next sample).
  const dt = (i: number) => (profile.timeDeltas[i + 1] ?? 0) / 1000;
  const self = new Map<string, number>();
  const own = new Map<string, number>();
  let busyMs = 0;
  const stretches: { start: number; ms: number; self: Map<string, number> }[] = [];
  let current: { start: number; ms: number; self: Map<string, number> } | undefined;
  let at = 0;
  profile.samples.forEach((id, i) => {
    const ms = dt(i);
    const frame = byId.get(id)!.callFrame;
    const idle = IDLE.has(frame.functionName);
    if (!idle) {
      busyMs += ms;
      const key = name(frame);
      self.set(key, (self.get(key) ?? 0) + ms);
      for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
        const f = byId.get(n)!.callFrame;
        if (!f.url.endsWith(basename(bundleFile)) || f.url.includes('node_modules')) continue;
        const k = name(f);
        if (k.includes('node_modules')) continue;
        own.set(k, (own.get(k) ?? 0) + ms);
        break;
      }
      current ??= { start: at, ms: 0, self: new Map() };
      current.ms += ms;
      current.self.set(key, (current.self.get(key) ?? 0) + ms);
    } else if (current) {
      stretches.push(current);
      current = undefined;
    }
    at += ms;
  });
  if (current) stretches.push(current);
  const top = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${k} ${round(v)} ms`);
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  return {
    seconds: round(seconds),
    busy: busyMs / (seconds * 1000),
    topSelf: top(self, 15),
    topOwn: top(own, 15),
    longestBusy: stretches
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .map((s) => ({ atSeconds: round(s.start / 1000), ms: round(s.ms), top: top(s.self, 4) })),
  };
}

type TraceLine =
  | { type: 'command'; command: string; ms: number }
  | { type: 'lock-wait' | 'lock-held'; level: string; mode: string; ms: number }
  | { type: 'lock-busy' };

export async function summariseGitTrace(file: string): Promise<GitSummary> {
  const lines = (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TraceLine);
  const commands = new Map<string, number[]>();
  const waits = new Map<string, number[]>();
  const helds = new Map<string, number[]>();
  let lockBusy = 0;
  const push = (m: Map<string, number[]>, k: string, v: number) => {
    const xs = m.get(k) ?? [];
    xs.push(v);
    m.set(k, xs);
  };
  for (const l of lines) {
    if (l.type === 'command') push(commands, l.command, l.ms);
    else if (l.type === 'lock-wait') push(waits, `${l.level} ${l.mode}`, l.ms);
    else if (l.type === 'lock-held') push(helds, `${l.level} ${l.mode}`, l.ms);
    else lockBusy++;
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const sorted = <T>(m: Map<string, number[]>, f: (xs: number[]) => T): Record<string, T> =>
    Object.fromEntries([...m].sort((a, b) => sum(b[1]) - sum(a[1])).map(([k, xs]) => [k, f(xs)]));
  const stats = (xs: number[]) => ({
    n: xs.length,
    totalMs: Math.round(sum(xs)),
    p50: round(pct(xs, 50)),
    p95: round(pct(xs, 95)),
    max: round(Math.max(...xs)),
  });
  return {
    commands: sorted(commands, stats),
    lockWaits: sorted(waits, (xs) => ({
      n: xs.length,
      totalMs: Math.round(sum(xs)),
      max: round(Math.max(...xs)),
      over10ms: xs.filter((x) => x > 10).length,
    })),
    lockHeld: sorted(helds, stats),
    lockBusy,
  };
}

/** The summaries as lines for the console. */
export function describeProfile(p: ProfileSummary, g: GitSummary | undefined): string[] {
  const out: string[] = [];
  out.push(`pipeline process: ${p.seconds} s profiled, event loop busy ${(p.busy * 100).toFixed(0)} %`);
  out.push('  top self time:');
  for (const l of p.topSelf) out.push(`    ${l}`);
  out.push('  our functions (innermost on the stack):');
  for (const l of p.topOwn) out.push(`    ${l}`);
  out.push('  longest busy stretches:');
  for (const s of p.longestBusy) out.push(`    ${s.ms} ms at ${s.atSeconds} s: ${s.top.join('; ')}`);
  if (g) {
    out.push('  git commands (n, total, p50 / p95 / max ms):');
    for (const [c, s] of Object.entries(g.commands))
      out.push(
        `    ${c.padEnd(14)} ${String(s.n).padStart(5)} ${String(s.totalMs).padStart(7)} ms  ${s.p50} / ${s.p95} / ${s.max}`,
      );
    out.push('  lock waits (n, total, max ms, over 10 ms):');
    for (const [k, s] of Object.entries(g.lockWaits))
      out.push(
        `    ${k.padEnd(22)} ${String(s.n).padStart(5)} ${String(s.totalMs).padStart(7)} ms  max ${s.max}  ${s.over10ms} over 10 ms`,
      );
    out.push('  locks held (n, total, p50 / p95 / max ms):');
    for (const [k, s] of Object.entries(g.lockHeld))
      out.push(
        `    ${k.padEnd(22)} ${String(s.n).padStart(5)} ${String(s.totalMs).padStart(7)} ms  ${s.p50} / ${s.p95} / ${s.max}`,
      );
    if (g.lockBusy) out.push(`  git lock files found held by another process: ${g.lockBusy}`);
  }
  return out;
}

/** A stretch of the run: from `from` to `to` (epoch ms), in which `tasks` tasks were merged. */
export interface RunWindow {
  readonly name: string;
  readonly from: number;
  readonly to: number;
  readonly tasks: number;
}

export interface WindowSummary {
  readonly name: string;
  readonly seconds: number;
  readonly tasks: number;
  /** The pipeline process's busy time (non-idle samples) per task merged in the window (ms). */
  readonly cpuMsPerTask: number;
  /** Busy time per task by the innermost frame of ours or of a package (ms). */
  readonly byFunction: Record<string, number>;
  /** Per git subcommand: how many per task, and their mean time (ms). */
  readonly git: Record<string, { perTask: number; meanMs: number }>;
}

/**
 * The profile and the git trace cut into windows of the run (the first and the last hundred tasks
 * merged, say), per task merged: what grows as the run goes on shows as a larger figure late than
 * early. The profile's clock starts with the process; `processStart` (epoch ms) places it.
 */
export async function summariseWindows(
  profileFile: string,
  traceFile: string,
  bundleFile: string,
  root: string,
  processStart: number,
  windows: readonly RunWindow[],
): Promise<WindowSummary[]> {
  const profile = JSON.parse(await readFile(profileFile, 'utf8')) as CpuProfile;
  const map = await readFile(`${bundleFile}.map`, 'utf8').then(
    (t) => new SourceMap(JSON.parse(t) as ConstructorParameters<typeof SourceMap>[0]),
    () => undefined,
  );
  const name = namer(basename(bundleFile), map, root);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const busy = windows.map(() => 0);
  const fns = windows.map(() => new Map<string, number>());
  // The innermost frame that is ours or a package's (a package by its name), else the native one.
  const owner = (id: number): string => {
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      if (!f.url.endsWith(basename(bundleFile))) continue;
      const k = name(f);
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(k);
      return pkg ? `(package ${pkg[1]})` : k;
    }
    return name(byId.get(id)!.callFrame);
  };
  let at = processStart;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const t = at;
    at += ms;
    if (IDLE.has(byId.get(id)!.callFrame.functionName)) return;
    windows.forEach((w, k) => {
      if (t < w.from || t >= w.to) return;
      busy[k]! += ms;
      const o = owner(id);
      fns[k]!.set(o, (fns[k]!.get(o) ?? 0) + ms);
    });
  });
  const lines = (await readFile(traceFile, 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as TraceLine & { at?: number });
  return windows.map((w, k) => {
    const per = Math.max(1, w.tasks);
    const git = new Map<string, number[]>();
    for (const l of lines) {
      if (l.type !== 'command' || l.at === undefined || l.at < w.from || l.at >= w.to) continue;
      const xs = git.get(l.command) ?? [];
      xs.push(l.ms);
      git.set(l.command, xs);
    }
    const byFunction = Object.fromEntries(
      [...fns[k]!]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12)
        .map(([f, ms]) => [f, round(ms / per)]),
    );
    return {
      name: w.name,
      seconds: round((w.to - w.from) / 1000),
      tasks: w.tasks,
      cpuMsPerTask: round(busy[k]! / per),
      byFunction,
      git: Object.fromEntries(
        [...git]
          .sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0))
          .map(([c, xs]) => [
            c,
            { perTask: round(xs.length / per), meanMs: round(xs.reduce((x, y) => x + y, 0) / xs.length) },
          ]),
      ),
    };
  });
}

/** Two windows side by side, as lines for the console. */
export function describeWindows(ws: readonly WindowSummary[]): string[] {
  const out: string[] = [];
  out.push(
    `per task merged: ${ws.map((w) => `${w.name} (${w.tasks} tasks in ${w.seconds} s): engine busy ${w.cpuMsPerTask} ms`).join('; ')}`,
  );
  const fnNames = [...new Set(ws.flatMap((w) => Object.keys(w.byFunction)))];
  out.push(`  busy ms per task by function: ${ws.map((w) => w.name).join(' | ')}`);
  for (const f of fnNames) out.push(`    ${ws.map((w) => String(w.byFunction[f] ?? '–').padStart(8)).join(' ')}  ${f}`);
  const cmds = [...new Set(ws.flatMap((w) => Object.keys(w.git)))];
  out.push(`  git per task: commands × mean ms: ${ws.map((w) => w.name).join(' | ')}`);
  for (const c of cmds)
    out.push(
      `    ${c.padEnd(14)} ${ws.map((w) => (w.git[c] ? `${w.git[c].perTask} × ${w.git[c].meanMs} ms` : '–').padStart(18)).join(' ')}`,
    );
  return out;
}
