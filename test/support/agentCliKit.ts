import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * Running a real agent CLI in a temporary git repository: the pinned binaries in `.agent-clis/`,
 * a repository with a linked worktree laid out the way the pipeline lays its agents' out, a HOME of
 * the run's own, and a child process whose exit and output the test reads. Nothing here knows one
 * CLI from another.
 */

const execFileP = promisify(execFile);

const repoRoot = resolve(__dirname, '..', '..');

/** Where `node scripts/agentClis/install.mjs` puts the CLIs' binaries. */
export const agentCliBinDir = join(repoRoot, '.agent-clis', 'node_modules', '.bin');

/** The path of an installed CLI's binary; throws, saying how to install it, when it is missing. */
export function agentCliPath(bin: string): string {
  const p = join(agentCliBinDir, bin);
  if (!existsSync(p))
    throw new Error(
      `The agent CLI '${bin}' is not installed (${p} is missing). Run \`node scripts/agentClis/install.mjs\` first.`,
    );
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
  cleanup(): Promise<void>;
}

export interface TempRepoOptions {
  /** Files of the first commit (path relative to the repository: content). */
  files?: Record<string, string>;
  agentId?: string;
  branch?: string;
}

/**
 * A repository the way the pipeline leaves it for an agent: a main checkout, the agent's worktree
 * beside it on the task's branch, and `.pipeline-task/` excluded from git in every worktree.
 */
export async function tempRepo(opts: TempRepoOptions = {}): Promise<TempRepo> {
  // realpath: the CLIs report and compare resolved paths (/tmp may be a link).
  const root = await realpath(await mkdtemp(join(tmpdir(), 'agent-cli-')));
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
    await mkdir(join(repo, path, '..'), { recursive: true });
    await writeFile(join(repo, path), content);
  }
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-q', '-m', 'Initial commit']);
  await writeFile(join(repo, '.git', 'info', 'exclude'), '.pipeline-task/\n');
  await mkdir(join(worktree, '..'), { recursive: true });
  await git(repo, ['worktree', 'add', '-q', '-b', branch, worktree, 'main']);
  return { root, repo, worktree, branch, home, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/**
 * An environment of the test's own making, not the developer's: PATH (with the agent CLIs' folder
 * first, so an adapter's bare `claude` is the pinned one), HOME, a UTF-8 locale, and `vars`. No key
 * or setting of the person running the tests leaks into a CLI.
 */
export function isolatedEnv(home: string, vars: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: [agentCliBinDir, process.env.PATH ?? '/usr/bin:/bin'].join(delimiter),
    HOME: home,
    LANG: 'C.UTF-8',
    TZ: 'UTC',
    ...vars,
  };
}

export interface CliRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr as they arrived, as an agent's log file holds them. */
  output: string;
  /** Wall-clock milliseconds from spawn to exit. */
  ms: number;
}

export interface RunCliOptions {
  cwd: string;
  env: Record<string, string>;
  /** A safety net for a CLI that never exits: it is killed and the run reported (default 100 s). */
  killAfterMs?: number;
}

/** Runs argv to its end with stdin at /dev/null (no terminal to wait for), output collected. */
export function runCli(argv: string[], opts: RunCliOptions): Promise<CliRun> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('runCli: empty argv');
  const started = Date.now();
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => ((stdout += c), (output += c)));
  child.stderr.setEncoding('utf8').on('data', (c: string) => ((stderr += c), (output += c)));
  const killer = setTimeout(() => {
    // The whole process group: a CLI's own children (a shell, a test run) go with it.
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, opts.killAfterMs ?? 100_000);
  return new Promise((ok, fail) => {
    child.once('error', (e) => {
      clearTimeout(killer);
      fail(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      ok({ code, signal, stdout, stderr, output, ms: Date.now() - started });
    });
  });
}

/** The last `bytes` of a run's output: what an adapter's classify() is given. */
export function tailOf(output: string, bytes = 4096): string {
  return output.length > bytes ? output.slice(-bytes) : output;
}
