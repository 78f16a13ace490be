import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { initRepo } from '../../src/engine/git/initRepo';
import { patience, until } from '../support/waiting';

/**
 * The CLI's test kit: real git repositories in temporary directories and the built `pipeline` CLI
 * (dist/cli.js) spawned as a process, so the tests see exactly what a user or a script sees:
 * stdout, stderr and the exit code. Every wait is a condition raced against a time limit, and every
 * process a test starts is ended by its id.
 */

export const ROOT = resolve(__dirname, '../..');
export const CLI = join(ROOT, 'dist', 'cli.js');
export const FIXTURES = join(__dirname, 'fixtures');

/** Scripted agents work this long per stage unless a test says otherwise (they inherit it). */
const AGENT_DELAY_MS = '30';

/** Fails the test file at once, saying what to do, when the CLI has not been built. */
export function requireCli(): void {
  for (const f of [CLI, join(ROOT, 'dist', 'scriptedAgent.js')]) {
    if (!existsSync(f))
      throw new Error(
        `${f} is missing: build first with \`node scripts/build.mjs\` (the CLI tests run the built CLI).`,
      );
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // The CLI runs git; a GIT_DIR or GIT_INDEX_FILE from the environment would point it elsewhere.
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_')) env[k] = v;
  return { ...env, GIT_TERMINAL_PROMPT: '0', SCRIPTED_AGENT_DELAY_MS: AGENT_DELAY_MS, NO_COLOR: '1', ...extra };
}

/** Runs `pipeline <args>` in `cwd` and waits for it to exit (killed after `timeoutMs`). */
export function cli(
  cwd: string,
  args: string[],
  o: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: childEnv(o.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(
        new Error(
          `pipeline ${args.join(' ')} did not exit within ${o.timeoutMs ?? 30_000} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`,
        ),
      );
    }, o.timeoutMs ?? 30_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr });
    });
  });
}

/** A result in a message: for assertions that print what the CLI said. */
export function shown(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** Runs git in `cwd` (to set up situations and check results without the code under test); stdout, trimmed. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('git', args, { cwd, env: childEnv(), maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Runs the CLI and asserts it succeeded; returns stdout. */
export async function ok(cwd: string, ...args: string[]): Promise<string> {
  const r = await cli(cwd, args);
  assert.equal(r.code, 0, `pipeline ${args.join(' ')} should succeed:\n${shown(r)}`);
  return r.stdout;
}

/** Runs the CLI and asserts it failed with `code`, printing nothing on stdout; returns stderr. */
export async function fails(cwd: string, code: number, ...args: string[]): Promise<string> {
  const r = await cli(cwd, args);
  assert.equal(r.code, code, `pipeline ${args.join(' ')} should exit ${code}:\n${shown(r)}`);
  assert.match(r.stderr, /^pipeline: |error:/m, `the error goes to stderr:\n${shown(r)}`);
  return r.stderr;
}

/** Runs the CLI with `--json` and parses what it printed. */
export async function json<T = unknown>(cwd: string, ...args: string[]): Promise<T> {
  const out = await ok(cwd, ...args);
  try {
    return JSON.parse(out) as T;
  } catch (e) {
    assert.fail(`pipeline ${args.join(' ')} printed something that is not JSON (${(e as Error).message}):\n${out}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Repositories.

export interface Repo {
  /** The temporary directory holding the repository and, beside it, the agents' worktrees. */
  base: string;
  /** The repository's main working tree, where the CLI runs. */
  dir: string;
  cleanup(): Promise<void>;
}

/** A git repository with a first commit; with `init`, also `pipeline init` (and a preset). */
export async function newRepo(o: { init?: boolean; preset?: string } = {}): Promise<Repo> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-cli-'));
  const dir = join(base, 'repo');
  await initRepo(dir);
  const repo: Repo = {
    base,
    dir,
    cleanup: async () => {
      await killAgents(dir);
      await rm(base, { recursive: true, force: true });
    },
  };
  if (o.init || o.preset) await ok(dir, 'init', ...(o.preset ? ['--preset', o.preset] : []));
  return repo;
}

/** Runs `fn` with a fresh repository that is removed afterwards, whatever happens. */
export async function withRepo<T>(o: { init?: boolean; preset?: string }, fn: (repo: Repo) => Promise<T>): Promise<T> {
  const repo = await newRepo(o);
  try {
    return await fn(repo);
  } finally {
    await repo.cleanup();
  }
}

/** Agent processes a killed `pipeline run` left behind, by the pid files of `.pipeline/run/`. */
export async function agentPids(dir: string): Promise<number[]> {
  const runDir = join(dir, '.pipeline', 'run');
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const n of names.filter((x) => x.endsWith('.pid.json'))) {
    try {
      const rec = JSON.parse(await readFile(join(runDir, n), 'utf8')) as { pid?: unknown };
      if (typeof rec.pid === 'number') pids.push(rec.pid);
    } catch {
      // A pid file being replaced: the next look finds it.
    }
  }
  return pids;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Ends the agents (each in its own process group) that this test's runs started. */
async function killAgents(dir: string): Promise<void> {
  for (const pid of await agentPids(dir)) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Long-running commands (`pipeline run`).

export interface LiveCli {
  child: ChildProcess;
  pid: number;
  /** Everything it printed so far, stdout and stderr interleaved as received. */
  output(): string;
  /** Resolves when it has exited: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until the output matches `re`; fails after `ms` showing the output. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` (by pid) and waits for the exit; SIGKILL after `ms` if it does not go. */
  stop(signal?: NodeJS.Signals, ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startCli(cwd: string, args: string[], env: Record<string, string> = {}): LiveCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('close', (code, signal) => r({ code, signal })),
  );
  let done = false;
  void exited.then(() => (done = true));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start pipeline ${args.join(' ')}`);
  const live: LiveCli = {
    child,
    pid,
    output: () => out,
    exited,
    waitFor: async (re, ms = 15_000) => {
      const m = await until(
        `pipeline ${args.join(' ')} printing ${String(re)}`,
        ms,
        () => re.exec(out) ?? (done ? 'exited' : undefined),
        25,
        () => out,
      );
      if (m === 'exited') assert.fail(`pipeline ${args.join(' ')} exited before printing ${String(re)}:\n${out}`);
      return m;
    },
    stop: async (signal = 'SIGTERM', ms = 15_000) => {
      if (!done) process.kill(pid, signal);
      const timer = setTimeout(() => {
        if (!done) process.kill(pid, 'SIGKILL');
      }, patience(ms));
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return live;
}

export { until };

// ---------------------------------------------------------------------------------------------
// The state, as the CLI prints it and as it lies on disk.

export interface StatusJson {
  version: string;
  orchestration_mode: string;
  mode: string;
  pending_switch: string | null;
  leader: { pid: number; host: string; label: string; epoch: number } | null;
  tasks: Record<
    string,
    {
      id: string;
      title: string;
      status: string;
      stage: string;
      assigned_to: string | null;
      created_at: string;
      prerequisites: string[];
      priority: string;
      labels: string[];
      attempt: number;
      blocked_reason: string | null;
      history: Array<{ event: string; from: string; to: string; note?: string }>;
    }
  >;
  agents: Record<string, { id: string; role: string; status: string; current_task: string | null }>;
  queues: Record<string, string[]>;
  counts: Record<string, number>;
  warnings: string[];
}

export function status(dir: string): Promise<StatusJson> {
  return json<StatusJson>(dir, 'status', '--json');
}

/** The tasks and agents without who leads: what a failed command must leave unchanged. */
export async function logicalState(dir: string): Promise<unknown> {
  const s = await status(dir);
  return { ...s, leader: null };
}

/**
 * The bytes of every file under `.pipeline/state`, by name. `exact` keeps empty files: a process
 * that leads opens a new (empty) journal segment, which is not a change of the state.
 */
export async function stateFiles(dir: string, exact = false): Promise<Record<string, string>> {
  const stateDir = join(dir, '.pipeline', 'state');
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = await readdir(stateDir);
  } catch {
    return out;
  }
  for (const n of names.sort()) {
    const buf = await readFile(join(stateDir, n));
    if (buf.length === 0 && !exact) continue;
    out[n] = createHash('sha256').update(buf).digest('hex');
  }
  return out;
}

/** Lines of text that name a file, for checks that an error or warning says where. */
export function mentions(text: string, ...needles: string[]): void {
  for (const n of needles) assert.ok(text.includes(n), `expected ${JSON.stringify(n)} in:\n${text}`);
}
