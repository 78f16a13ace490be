import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { AgentInvocation, AgentInvocationContext, CliFailure } from '../../src/engine/agents/cli/agentCli';
import { geminiAdapter } from '../../src/engine/agents/cli/geminiAdapter';
import { renderTaskFile, TASK_DIR, taskFileName } from '../../src/engine/agents/taskFile';
import { startGeminiServer } from './modelServers/geminiServer';
import type { ModelAction, ModelRequestRecord, ModelServer, ScriptedModel } from './modelServers/scriptedModel';
import { newTask } from './taskFixtures';

/**
 * Everything a test needs to run the real Gemini CLI against a local model server: the pinned
 * binary, a HOME of its own (the CLI reads `~/.gemini/settings.json` and writes its sessions there),
 * a repository with an agent worktree and a task file the way the engine lays them out, and one run
 * with stdin closed and its output collected.
 */

const repoRoot = resolve(__dirname, '..', '..');

/** The pinned Gemini CLI that `scripts/agentClis/install.mjs` installs. */
export const GEMINI_BIN = join(repoRoot, '.agent-clis', 'node_modules', '.bin', 'gemini');

export function geminiInstalled(): boolean {
  return existsSync(GEMINI_BIN);
}

/** The preset's prompt (commandTemplate.ts), with the task file filled in. */
export function stagePrompt(taskFile: string): string {
  return `Read the task file ${taskFile} and do the task it describes, in this directory. When you are done, append the status line it asks for to that file.`;
}

/**
 * The settings a test's HOME gets: the API-key auth the local server stands in for, no usage
 * statistics, no update check, and as few attempts per request as the test wants (the CLI's
 * default of 10, with 5 s growing to 30 s between them, would take minutes on a 500).
 */
export function geminiSettings(opts: { maxAttempts?: number; extra?: Record<string, unknown> } = {}): unknown {
  return {
    security: { auth: { selectedType: 'gemini-api-key' } },
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false, maxAttempts: opts.maxAttempts ?? 10 },
    privacy: { usageStatisticsEnabled: false },
    ...opts.extra,
  };
}

export interface StageSandbox {
  root: string;
  /** The HOME the CLI runs with. */
  home: string;
  /** Its TMPDIR: Gemini CLI writes a full report of every API error there (the whole request). */
  tmp: string;
  /** The main checkout (branch main). */
  repo: string;
  /** The agent's worktree on `pipeline/<task>`, where the CLI runs. */
  worktree: string;
  taskFile: string;
  ctx: AgentInvocationContext;
  cleanup(): Promise<void>;
}

/** The sample project's test command: every work file must say whose work it is. */
export const SAMPLE_TEST_COMMAND = 'sh scripts/test.sh';
const SAMPLE_TESTS = `# The sample project's tests: each work file names its author.
found=0
for f in work/*/*.md; do
  [ -e "$f" ] || continue
  found=1
  grep -q "Work of the" "$f" || { echo "not ok $f"; exit 1; }
  echo "ok $f"
done
[ "$found" = 1 ] || { echo "not ok: no work yet"; exit 1; }
`;

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * A repository with one commit on main, an agent worktree on the task's branch, and the task file in
 * the worktree's `.pipeline-task/` (excluded from git through `info/exclude`, as the engine does).
 */
export async function makeStageSandbox(
  opts: { taskId?: string; stage?: string; role?: string; settings?: unknown } = {},
): Promise<StageSandbox> {
  const taskId = opts.taskId ?? 'TASK-001';
  const stage = { name: opts.stage ?? 'implementation', role: opts.role ?? 'implementer' };
  const root = await mkdtemp(join(tmpdir(), 'gemini-cli-'));
  const home = join(root, 'home');
  const repo = join(root, 'repo');
  const worktree = join(root, 'agent-1');
  const tmp = join(root, 'tmp');
  await mkdir(tmp);
  await mkdir(join(home, '.gemini'), { recursive: true });
  await writeFile(join(home, '.gemini', 'settings.json'), JSON.stringify(opts.settings ?? geminiSettings(), null, 2));
  await mkdir(repo);
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'config', 'user.name', 'Pipeline Test');
  git(repo, 'config', 'user.email', 'pipeline@example.invalid');
  git(repo, 'config', 'commit.gpgsign', 'false');
  await writeFile(join(repo, 'README.md'), '# sample\n');
  await mkdir(join(repo, 'scripts'));
  await writeFile(join(repo, 'scripts', 'test.sh'), SAMPLE_TESTS);
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'initial');
  git(repo, 'worktree', 'add', '-q', '-b', `pipeline/${taskId}`, worktree, 'main');
  const exclude = git(repo, 'rev-parse', '--path-format=absolute', '--git-path', 'info/exclude').trim();
  await mkdir(dirname(exclude), { recursive: true });
  await writeFile(exclude, `${TASK_DIR}/\n`, { flag: 'a' });
  const taskFile = join(worktree, TASK_DIR, taskFileName(taskId, 1));
  await mkdir(dirname(taskFile), { recursive: true });
  const task = newTask(taskId, 1, {
    title: 'Add the greeting',
    description: 'Write the work file and commit it.',
    stage: stage.name,
    attempt: 1,
  });
  await writeFile(
    taskFile,
    renderTaskFile({
      task,
      stage,
      isLastStage: false,
      attempt: 1,
      agentId: 'agent-1',
      targetBranch: 'main',
      prerequisites: [],
      prior: { commits: [], files: [], notes: [] },
    }),
  );
  const commonDir = git(worktree, 'rev-parse', '--path-format=absolute', '--git-common-dir').trim();
  const ownGitDir = git(worktree, 'rev-parse', '--path-format=absolute', '--git-dir').trim();
  const ctx: AgentInvocationContext = {
    taskFile,
    taskId,
    worktree,
    role: stage.role,
    gitWritableDirs: [ownGitDir, join(commonDir, 'objects'), join(commonDir, 'refs'), join(commonDir, 'logs')],
    prompt: stagePrompt(taskFile),
    permissions: { allow: [], deny: [], extraArgs: [] },
  };
  return {
    root,
    home,
    tmp,
    repo,
    worktree,
    taskFile,
    ctx,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

export function gitIn(cwd: string, ...args: string[]): string {
  return git(cwd, ...args);
}

export interface GeminiRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Wall time of the run. */
  ms: number;
}

export interface RunOptions {
  cwd: string;
  home: string;
  /** TMPDIR (default: the system's). */
  tmpDir?: string;
  /** The local model server (`GOOGLE_GEMINI_BASE_URL`); null leaves the variable out. */
  baseUrl: string | null;
  /** `GEMINI_API_KEY`; null leaves it out (a machine with no key). */
  apiKey?: string | null;
  /** Kills the CLI (its whole process group) if it runs longer: a test failure, never a wait. */
  timeoutMs?: number;
  /** Called once the CLI is running, with a way to stop it (SIGTERM to its own pid). */
  onSpawn?: (stop: (signal: NodeJS.Signals) => void) => void;
}

/**
 * Runs one invocation the way a runner would: argv[0] from the pinned install, stdin closed, only the
 * environment the run needs (no key or setting of this machine leaks in), output collected.
 */
export async function runGemini(inv: AgentInvocation, o: RunOptions): Promise<GeminiRun> {
  for (const f of inv.files ?? []) {
    await mkdir(dirname(f.path), { recursive: true });
    await writeFile(f.path, f.content);
  }
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: o.home,
    LANG: 'C.UTF-8',
    NO_COLOR: '1',
    ...inv.env,
  };
  if (o.tmpDir) env['TMPDIR'] = o.tmpDir;
  if (o.baseUrl) env['GOOGLE_GEMINI_BASE_URL'] = o.baseUrl;
  const key = o.apiKey === undefined ? 'local-test-key' : o.apiKey;
  if (key !== null) env['GEMINI_API_KEY'] = key;
  const [cmd, ...args] = inv.argv;
  const program = cmd === 'gemini' ? GEMINI_BIN : cmd!;
  const started = Date.now();
  return new Promise<GeminiRun>((resolveRun, reject) => {
    const child = spawn(program, args, { cwd: o.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, o.timeoutMs ?? 110_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    o.onSpawn?.((sig) => child.kill(sig));
  });
}

export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}

/** A failure played on every request, as an expired key or an exhausted quota would be. */
export const always =
  (action: ModelAction): ScriptedModel =>
  () => ({ action });

/** An error answer in Google's shape (`{"error":{"code","message","status","details"}}`). */
export function googleError(status: number, code: string, message: string, details: unknown[] = []): ModelAction {
  return {
    kind: 'error',
    status,
    body: { error: { code: status, message, status: code, ...(details.length ? { details } : {}) } },
  };
}

/** A fixed model for failure runs: no routing call, so a failure is met once, not once per router retry. */
export const FIXED_MODEL = ['--model', 'gemini-2.5-flash'];

export interface Played {
  sb: StageSandbox;
  server: ModelServer;
  run: GeminiRun;
  ctx: AgentInvocationContext;
  /** What the adapter makes of the run (the last 8 KB of its output, as the monitor passes it). */
  failure: CliFailure | null;
  /** The conversation's requests (the router's left out). */
  turns: ModelRequestRecord[];
  close: () => Promise<void>;
}

export interface PlayOptions {
  settings?: unknown;
  extraArgs?: string[];
  deny?: string[];
  apiKey?: string | null;
  /** The model server's URL instead of ours (a port with nothing listening). */
  baseUrl?: string;
  tweakArgv?: (argv: string[]) => string[];
  timeoutMs?: number;
  onSpawn?: RunOptions['onSpawn'];
  /** Called with the server before the CLI starts (to watch its requests). */
  withServer?: (server: ModelServer) => void;
}

/** One run of the real CLI in a fresh sandbox with our server, argv from the Gemini adapter. */
export async function playGemini(model: ScriptedModel, o: PlayOptions = {}): Promise<Played> {
  const sb = await makeStageSandbox(o.settings ? { settings: o.settings } : {});
  const server = await startGeminiServer(model);
  const close = async () => {
    await server.close();
    await sb.cleanup();
  };
  try {
    o.withServer?.(server);
    const ctx: AgentInvocationContext = {
      ...sb.ctx,
      permissions: { allow: [], deny: o.deny ?? [], extraArgs: o.extraArgs ?? [] },
    };
    const inv = geminiAdapter.invocation(ctx);
    if (o.tweakArgv) inv.argv = o.tweakArgv(inv.argv);
    const run = await runGemini(inv, {
      cwd: sb.worktree,
      home: sb.home,
      tmpDir: sb.tmp,
      baseUrl: o.baseUrl ?? server.url,
      ...(o.apiKey !== undefined ? { apiKey: o.apiKey } : {}),
      ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.onSpawn ? { onSpawn: o.onSpawn } : {}),
    });
    const failure = geminiAdapter.classify(
      { code: run.code, signal: run.signal },
      (run.stdout + run.stderr).slice(-8000),
    );
    const turns = server.requests.filter((r) => r.path.includes(':streamGenerateContent'));
    return { sb, server, run, ctx, failure, turns, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The JSON events of a `--output-format stream-json` run (lines that are not JSON are left out). */
export function streamEvents(stdout: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      out.push(JSON.parse(t) as Record<string, unknown>);
    } catch {
      // A line that only looks like JSON: not an event.
    }
  }
  return out;
}
