import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { z } from 'zod';
import { runMonitor } from '../../../src/cli/runCommand';
import { createMonitor, type RunnerKind } from '../../../src/cli/runtime';
import { shellQuote } from '../../../src/engine/agents/shellWords';
import { initRepo } from '../../../src/engine/git/initRepo';
import type { Monitor, MonitorOptions } from '../../../src/engine/monitor/monitor';
import { Pipeline } from '../../../src/engine/pipeline';
import { initHome } from '../../../src/engine/home/pipelineInit';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import { DEFAULT_STAGES, type configSchema } from '../../../src/engine/model/configSchema';
import {
  type HistoryEntry,
  type PipelineState,
  type RolloutMode,
  type Task,
  type TaskSpec,
} from '../../../src/engine/model/schema';
import { cleanEnv, git } from '../git/gitFixture';
import { until, within } from '../../support/waiting';

/**
 * The monitor's test kit: real repositories in temporary directories, real agent processes (the
 * scripted agent from dist/), and checks that read git directly, so a bug in the engine cannot
 * hide behind its own view of things. Every wait is a condition raced against a time limit.
 */

const run = promisify(execFile);

export const ROOT = resolve(__dirname, '../../..');
export const SCRIPTED_AGENT = join(ROOT, 'dist', 'scriptedAgent.js');
export const CLI = join(ROOT, 'dist', 'cli.js');

/** The scripted agent as a command template with an absolute path (works in-process and in the CLI). */
export const SCRIPTED = `{node} ${shellQuote(SCRIPTED_AGENT)} {taskFile}`;

// Short stages keep the suite fast; set before any agent starts (agents inherit the environment).
process.env.SCRIPTED_AGENT_DELAY_MS ??= '30';

/** Fails with what to do when the build is missing (npm test builds first). */
export function requireBuild(): void {
  for (const f of [SCRIPTED_AGENT, CLI]) {
    if (!existsSync(f))
      throw new Error(
        `${f} is missing: build first with \`node scripts/build.mjs\` (npm test builds before it runs the tests).`,
      );
  }
}

/** Retries with tiny delays, so a failed attempt costs milliseconds. */
export const FAST_RETRY = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100, jitter: 0 };

export type ConfigInput = z.input<typeof configSchema>;

export interface SandboxOptions {
  tasks: TaskSpec[];
  /** [id, role, command]; the command defaults to the scripted agent. */
  agents?: Array<[string, string, string?]>;
  orchestration?: 'parallel' | 'sequential';
  rollout?: RolloutMode;
  config?: Partial<ConfigInput>;
  files?: Record<string, string>;
}

export interface Sandbox {
  /** The temporary directory holding the repository and its worktree root. */
  base: string;
  /** The repository (its main working tree). */
  dir: string;
  worktreeRoot: string;
  cleanup(): Promise<void>;
}

export const ONE_PER_ROLE: Array<[string, string]> = [
  ['architect', 'architect'],
  ['tester', 'tester'],
  ['implementer', 'implementer'],
  ['supervisor', 'supervisor'],
];

/** A repository with `.pipeline/`, agents and tasks, ready for a run. */
export async function sandbox(o: SandboxOptions): Promise<Sandbox> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-monitor-'));
  const dir = join(base, 'repo');
  await initRepo(dir, { files: o.files ?? { 'README.md': '# Test repository\n' } });
  await initHome(dir, { targetBranch: 'main', stages: DEFAULT_STAGES, retry: FAST_RETRY, ...o.config });
  const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'test setup' });
  try {
    for (const [id, role, command] of o.agents ?? ONE_PER_ROLE)
      await p.addAgent({ id, role, command: command ?? SCRIPTED });
    if (o.tasks.length) await p.addTasks(o.tasks.map((spec) => ({ spec, source: 'test' })));
    await p.setOrchestrationMode(o.orchestration ?? 'parallel');
    await p.setRolloutMode(o.rollout ?? 'production');
  } finally {
    await p.close();
  }
  return {
    base,
    dir,
    worktreeRoot: join(base, 'repo.pipeline-worktrees'),
    cleanup: () => rm(base, { recursive: true, force: true }),
  };
}

export { until, within };

export interface RecordedEvent {
  name: keyof PipelineEventMap;
  at: number;
  data: unknown;
}

export interface RunResult {
  idle: { done: number; blocked: string[]; waiting: string[] };
  state: PipelineState;
  events: RecordedEvent[];
  started: Array<PipelineEventMap['agent:started']>;
  merges: Array<PipelineEventMap['merge:finished']>;
  warnings: string[];
}

export interface RunOptions {
  runner?: RunnerKind;
  monitor?: Partial<MonitorOptions>;
  timeoutMs?: number;
  /** Called once the monitor has started (to act during the run). */
  during?: (p: Pipeline, m: Monitor) => Promise<void>;
}

const RECORDED: Array<keyof PipelineEventMap> = [
  'agent:started',
  'agent:exited',
  'merge:finished',
  'task:transition',
  'monitor:warning',
  'pipeline:decision',
  'monitor:idle',
];

/** Runs the monitor in this process, leading the pipeline, until it is idle; returns what happened. */
export async function runUntilIdle(dir: string, o: RunOptions = {}): Promise<RunResult> {
  requireBuild();
  const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'monitor test' });
  const events: RecordedEvent[] = [];
  const subs = RECORDED.map((name) =>
    p.events.on(name, (data: unknown) => events.push({ name, at: Date.now(), data })),
  );
  let monitor: Monitor | undefined;
  try {
    monitor = await createMonitor(p, o.runner ?? 'process', { scriptedAgent: SCRIPTED_AGENT, ...o.monitor });
    await monitor.start();
    const m = monitor;
    const idle = await within(
      'the pipeline becoming idle',
      o.timeoutMs ?? 60_000,
      (async () => {
        if (o.during) await o.during(p, m);
        return m.untilIdle();
      })(),
    );
    const state = structuredClone<PipelineState>(p.state);
    return {
      idle,
      state,
      events,
      started: events.filter((e) => e.name === 'agent:started').map((e) => e.data as PipelineEventMap['agent:started']),
      merges: events
        .filter((e) => e.name === 'merge:finished')
        .map((e) => e.data as PipelineEventMap['merge:finished']),
      warnings: events
        .filter((e) => e.name === 'monitor:warning')
        .map((e) => (e.data as PipelineEventMap['monitor:warning']).message),
    };
  } finally {
    await monitor?.stop();
    for (const s of subs) s.dispose();
    await p.close();
  }
}

/** Runs `pipeline run --until-idle` in this process (as the CLI does), its printed lines captured. */
export async function runMonitorQuietly(
  dir: string,
  runner: RunnerKind = 'process',
  timeoutMs = 60_000,
): Promise<{ code: number; output: string }> {
  let output = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array) => {
    output += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  };
  try {
    const code = await within(
      `pipeline run --until-idle --runner ${runner}`,
      timeoutMs,
      runMonitor(runner, true, false, dir),
    );
    return { code, output };
  } finally {
    process.stdout.write = write;
  }
}

/** The state as stored, read by a follower (for after a run in another process). */
export async function readState(dir: string): Promise<PipelineState> {
  const p = await Pipeline.open({ cwd: dir, role: 'follow', label: 'monitor test (read)' });
  try {
    return structuredClone<PipelineState>(p.state);
  } finally {
    await p.close();
  }
}

// -------------------------------------------------------------------------------------------
// git, read directly.

export { git };

export async function isAncestorOf(dir: string, ancestor: string, descendant: string): Promise<boolean> {
  try {
    await run('git', ['merge-base', '--is-ancestor', ancestor, descendant], { cwd: dir, env: cleanEnv() });
    return true;
  } catch {
    return false;
  }
}

/** Every ref and its commit, and HEAD: what shadow mode must leave exactly as it was. */
export async function refsSnapshot(dir: string): Promise<string> {
  return `${await git(dir, 'for-each-ref', '--format=%(refname) %(objectname)')}\nHEAD ${await git(dir, 'rev-parse', 'HEAD')}`;
}

async function findLocks(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== skip) out.push(...(await findLocks(p, skip)));
    } else if (e.name.endsWith('.lock')) out.push(p);
  }
  return out;
}

/**
 * The reliability checks of engineering.md for git: `git fsck` clean, no lock file left under .git,
 * and the worktree registry matching the disk (every registered worktree exists, every directory in
 * the worktree root is registered).
 */
export async function assertGitHealthy(sb: Sandbox): Promise<void> {
  const { stdout, stderr } = await run('git', ['fsck', '--no-progress', '--no-dangling'], {
    cwd: sb.dir,
    env: cleanEnv(),
  });
  assert.equal(`${stdout}${stderr}`.trim(), '', 'git fsck output');
  assert.deepEqual(await findLocks(join(sb.dir, '.git'), 'objects'), [], 'lock files left under .git');
  const porcelain = await git(sb.dir, 'worktree', 'list', '--porcelain');
  const registered = porcelain
    .split('\n')
    .filter((l) => l.startsWith('worktree '))
    .map((l) => l.slice('worktree '.length));
  assert.ok(!/^prunable/m.test(porcelain), `a registered worktree is missing on disk:\n${porcelain}`);
  for (const w of registered) assert.ok((await stat(w)).isDirectory(), `registered worktree ${w} exists`);
  const onDisk = existsSync(sb.worktreeRoot)
    ? (await readdir(sb.worktreeRoot)).map((n) => join(sb.worktreeRoot, n))
    : [];
  const agentsRegistered = registered.filter((w) => w.startsWith(sb.worktreeRoot + '/'));
  assert.deepEqual(
    [...onDisk].sort(),
    [...agentsRegistered].sort(),
    'the worktree root holds exactly the registered agent worktrees',
  );
}

/** Every task done, its merged commit on `branch`. */
export async function assertAllMerged(dir: string, state: PipelineState, branch = 'main'): Promise<void> {
  for (const t of Object.values(state.tasks)) {
    assert.equal(
      t.status,
      'done',
      `${t.id} is done (it is ${t.status}${t.blocked_reason ? `: ${t.blocked_reason}` : ''})`,
    );
    assert.ok(t.merged_commit, `${t.id} has a merged commit`);
    assert.ok(
      await isAncestorOf(dir, t.merged_commit, branch),
      `${t.id}'s merged commit ${t.merged_commit} is reachable from ${branch}`,
    );
  }
}

// -------------------------------------------------------------------------------------------
// History analysis.

export interface Interval {
  taskId: string;
  stage: string;
  agent: string | undefined;
  start: number;
  /** When the task left the stage (the next history entry); Infinity when it never did. */
  end: number;
}

/** Each assignment of a task to an agent as [assign, next history entry). */
export function intervals(task: Task): Interval[] {
  const out: Interval[] = [];
  const h = task.history;
  h.forEach((e, i) => {
    if (e.event !== 'assign') return;
    const next = h[i + 1];
    out.push({
      taskId: task.id,
      stage: e.stage,
      agent: e.agent,
      start: Date.parse(e.at),
      end: next ? Date.parse(next.at) : Infinity,
    });
  });
  return out;
}

export function overlaps(a: Interval, b: Interval): boolean {
  return a.start < b.end && b.start < a.end;
}

export function entries(task: Task, event: string): HistoryEntry[] {
  return task.history.filter((h) => h.event === event);
}

/** When the task was merged, from its history. */
export function mergedAt(task: Task): number {
  const m = entries(task, 'merged').at(-1);
  assert.ok(m, `${task.id} has a merged entry`);
  return Date.parse(m.at);
}

// -------------------------------------------------------------------------------------------
// The CLI as a child process.

export interface CliChild {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function startCli(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): CliChild {
  requireBuild();
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, output: () => out, exited };
}

/** Runs a CLI command to its end; returns its exit code and output. */
export async function cli(
  dir: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  const c = startCli(dir, args);
  try {
    const code = await within(`pipeline ${args.join(' ')}`, timeoutMs, c.exited);
    return { code, output: c.output() };
  } catch (e) {
    c.proc.kill('SIGKILL');
    throw e;
  }
}

/** Processes whose command line mentions `needle` (the agents a killed run left behind). */
export async function processesMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = (await readFile(`/proc/${name}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmd.includes(needle)) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}
