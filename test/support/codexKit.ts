import { gitWritableDirs } from '../../src/engine/agents/commandTemplate';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * Running a real agent CLI in a temporary git repository: the pinned binaries in `.agent-clis/`, a
 * repository with a linked worktree laid out the way the pipeline lays its agents' out, a HOME of
 * the run's own, and a child process whose exit, output and duration the test reads. Besides the
 * generic parts, `writeCodexConfig` points Codex CLI at a local model server.
 */

const execFileP = promisify(execFile);

export const REPO_ROOT = resolve(__dirname, '..', '..');

/** Where the pinned agent CLIs are installed (a link to the main checkout's copy in a worktree). */
export const AGENT_CLI_BIN = join(REPO_ROOT, '.agent-clis', 'node_modules', '.bin');

/** The path of an installed CLI's binary; throws, saying how to install it, when it is missing. */
export function agentCliPath(bin: string): string {
  const p = join(AGENT_CLI_BIN, bin);
  if (!existsSync(p))
    throw new Error(`The agent CLI '${bin}' is not installed (${p} is missing). Install the pinned CLIs first.`);
  return p;
}

export async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP('git', args, { cwd, encoding: 'utf8' });
  return stdout;
}

export interface TempRepo {
  /** The temporary folder that holds everything below (removed by cleanup()). */
  root: string;
  /** The main checkout, on `main`, with one commit. */
  repo: string;
  /** The agent's linked worktree on its own branch (`<repo>.pipeline-worktrees/<agent>`). */
  worktree: string;
  branch: string;
  /** A HOME for the CLI: its config, sessions and caches stay here. */
  home: string;
  /**
   * The git directories a commit in the worktree writes, as the engine gives them to an adapter:
   * the worktree's own git dir, the common objects, and the task branches' refs and reflogs.
   */
  gitWritableDirs: string[];
  cleanup(): Promise<void>;
}

export interface TempRepoOptions {
  /** The folder to create the repository in (default: the system's temporary directory). */
  parent?: string;
  /** Files of the first commit (path relative to the repository: content). */
  files?: Record<string, string>;
  agentId?: string;
  branch?: string;
}

/** The directories the engine gives a sandboxed agent for its commits (see gitWritableDirs). */
export function gitWritableDirsOf(worktree: string): Promise<string[]> {
  return Promise.resolve(gitWritableDirs(worktree));
}

/**
 * A repository the way the pipeline leaves it for an agent: a main checkout, the agent's worktree
 * beside it on the task's branch, and `.pipeline-task/` excluded from git in every worktree.
 */
export async function tempRepo(opts: TempRepoOptions = {}): Promise<TempRepo> {
  const parent = opts.parent ?? tmpdir();
  await mkdir(parent, { recursive: true });
  // realpath: the CLIs report and compare resolved paths (/tmp may be a link).
  const root = await realpath(await mkdtemp(join(parent, 'agent-cli-')));
  const repo = join(root, 'repo');
  const home = join(root, 'home');
  const agentId = opts.agentId ?? 'agent-1';
  const branch = opts.branch ?? 'pipeline/TASK-001';
  const worktree = join(root, 'repo.pipeline-worktrees', agentId);
  await mkdir(repo, { recursive: true });
  await mkdir(home, { recursive: true });
  await git(repo, ['init', '-q', '-b', 'main']);
  await git(repo, ['config', 'user.email', 'agent@example.invalid']);
  await git(repo, ['config', 'user.name', 'Agent']);
  await git(repo, ['config', 'commit.gpgsign', 'false']);
  const files = { 'README.md': '# A project\n', ...opts.files };
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(repo, path)), { recursive: true });
    await writeFile(join(repo, path), content);
  }
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-q', '-m', 'Initial commit']);
  await writeFile(join(repo, '.git', 'info', 'exclude'), '.pipeline-task/\n');
  await mkdir(dirname(worktree), { recursive: true });
  await git(repo, ['worktree', 'add', '-q', '-b', branch, worktree, 'main']);
  return {
    root,
    repo,
    worktree,
    branch,
    home,
    gitWritableDirs: await gitWritableDirsOf(worktree),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

export interface CliRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
}

export interface RunCliOptions {
  cwd: string;
  /** The whole environment of the child (nothing is inherited unless passed). */
  env: Record<string, string>;
  /** A safety net for a CLI that never ends: the child's process group is killed then. */
  timeoutMs?: number;
  /**
   * Ends the run (SIGTERM to the process group, as the pipeline stops an agent) once the output
   * shows this: for a CLI that waits forever, the test waits for the words it waits with.
   */
  stopWhen?: RegExp;
}

/**
 * Runs a CLI the way the pipeline's process runner does: stdin from /dev/null, output collected,
 * its own process group (so a kill reaches the CLI's children).
 */
export function runCli(argv: string[], opts: RunCliOptions): Promise<CliRun> {
  const started = Date.now();
  return new Promise((ok, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let stopping = false;
    const kill = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    const seen = (): void => {
      if (!stopping && opts.stopWhen?.test(stdout + stderr)) {
        stopping = true;
        kill('SIGTERM');
      }
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      seen();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      seen();
    });
    const timer = setTimeout(() => kill('SIGKILL'), opts.timeoutMs ?? 90_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The environment variable that holds the local provider's key. */
export const LOCAL_KEY_ENV = 'PIPELINE_TEST_OPENAI_KEY';

export interface CodexConfigOptions {
  /** The model server's base URL (`http://127.0.0.1:<port>`). */
  serverUrl: string;
  model?: string;
  /**
   * Codex's retries of a failed request (`request_max_retries`, 4 by default) and of a failed or
   * dropped stream (`stream_max_retries`, 5 by default). Unset: Codex's defaults.
   */
  requestMaxRetries?: number;
  streamMaxRetries?: number;
}

/**
 * `$HOME/.codex/config.toml` with a model provider at a local server. Codex speaks only the
 * Responses API to it (`wire_api = "responses"`) and takes the key from `env_key`; WebSockets are
 * turned off, so it goes straight to HTTPS (plain HTTP here) streaming.
 */
export async function writeCodexConfig(home: string, opts: CodexConfigOptions): Promise<string> {
  const lines = [
    `model = "${opts.model ?? 'local-test-model'}"`,
    'model_provider = "local"',
    '',
    '[model_providers.local]',
    'name = "Local test server"',
    `base_url = "${opts.serverUrl}/v1"`,
    'wire_api = "responses"',
    `env_key = "${LOCAL_KEY_ENV}"`,
    'requires_openai_auth = false',
    'supports_websockets = false',
  ];
  if (opts.requestMaxRetries !== undefined) lines.push(`request_max_retries = ${opts.requestMaxRetries}`);
  if (opts.streamMaxRetries !== undefined) lines.push(`stream_max_retries = ${opts.streamMaxRetries}`);
  const file = join(home, '.codex', 'config.toml');
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * The environment for a Codex run: its own HOME, the key (when given), PATH with the pinned CLIs,
 * nothing else from this process (so no real key or config leaks in).
 */
export function codexEnv(home: string, key: string | null): Record<string, string> {
  const env: Record<string, string> = {
    HOME: home,
    PATH: `${AGENT_CLI_BIN}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    LANG: 'C.UTF-8',
  };
  if (process.env.TZ) env.TZ = process.env.TZ;
  if (key !== null) env[LOCAL_KEY_ENV] = key;
  return env;
}

/** A temporary folder outside /tmp (Codex's sandbox treats /tmp differently), under the checkout. */
export async function nonTmpParent(): Promise<string> {
  const dir = join(REPO_ROOT, '.tmp-tests');
  await mkdir(dir, { recursive: true });
  return realpath(dir);
}
