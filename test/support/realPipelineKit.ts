import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_STAGES } from '../../src/engine/model/configSchema';
import type { PipelineState } from '../../src/engine/model/schema';
import {
  git,
  intervals,
  isAncestorOf,
  readState,
  runUntilIdle,
  sandbox,
  type RunResult,
  type Sandbox,
} from '../engine/monitor/monitorKit';
import { agentCliBinDir, agentCliPath } from './agentCliKit';
import { LOCAL_KEY_ENV, writeCodexConfig } from './codexKit';
import { geminiSettings } from './geminiKit';
import { startAnthropicServer } from './modelServers/anthropicServer';
import { startGeminiServer } from './modelServers/geminiServer';
import { startOpenAIServer } from './modelServers/openaiServer';
import {
  CODE_FILE,
  CODE_SOURCE,
  commitMessage,
  design,
  DESIGN_FILE,
  describeAction,
  GREETING_TASK,
  SAMPLE_PROJECT,
  scriptOf,
  TEST_FILE,
  TEST_SOURCE,
  toolCallsOf,
  type ToolCall,
} from './modelServers/projectModel';
import type { ModelApi, ModelRequestRecord, ModelServer, ScriptedModel } from './modelServers/scriptedModel';

/**
 * A whole pipeline of real agent CLIs: the engine's monitor, in this process, runs the presets'
 * commands (the pinned Claude Code, Codex CLI and Gemini CLI from `.agent-clis/`) in the agents'
 * worktrees, and each CLI talks to our local model server for its API. Agents inherit this process's
 * environment, as they would a user's shell: it is set here to a HOME of the run's own (with Codex's
 * provider and Gemini CLI's settings in it), the servers' addresses and made-up keys, and nothing of
 * the machine's own keys or settings.
 */

export type CliPreset = 'claude' | 'codex' | 'gemini';

/** The binary each preset runs. */
const BINARY: Record<CliPreset, string> = { claude: 'claude', codex: 'codex', gemini: 'gemini' };

/** The API each preset's CLI speaks to its model. */
const API: Record<CliPreset, ModelApi> = { claude: 'anthropic', codex: 'openai', gemini: 'gemini' };

const execFileP = promisify(execFile);

/** One server per API the CLIs speak, all playing the same scripted model. */
export interface ModelServers {
  anthropic: ModelServer;
  openai: ModelServer;
  gemini: ModelServer;
  /** Every server's requests, in arrival order. */
  requests(): ModelRequestRecord[];
  close(): Promise<void>;
}

export async function startModelServers(model: ScriptedModel): Promise<ModelServers> {
  const anthropic = await startAnthropicServer(model);
  const openai = await startOpenAIServer(model);
  const gemini = await startGeminiServer(model);
  const all = [anthropic, openai, gemini];
  return {
    anthropic,
    openai,
    gemini,
    requests: () => all.flatMap((s) => [...s.requests]).sort((a, b) => a.at - b.at),
    close: async () => {
      await Promise.all(all.map((s) => s.close()));
    },
  };
}

/**
 * Variables of the machine that could point a CLI elsewhere or give it a real key, and node's test
 * runner's own (with NODE_TEST_CONTEXT set, an agent's `node --test` would think it runs inside
 * this test file and skip every test file).
 */
const FOREIGN = /^(ANTHROPIC_|CLAUDE_|OPENAI_|CODEX_|GEMINI_|GOOGLE_|NODE_TEST_)/;

/**
 * Sets this process's environment (which the agents inherit) for a run against `servers`, with
 * `home` as HOME; returns what undoes it.
 */
export async function useAgentEnvironment(home: string, servers: ModelServers): Promise<() => void> {
  await writeCodexConfig(home, { serverUrl: servers.openai.url, requestMaxRetries: 1, streamMaxRetries: 1 });
  await mkdir(join(home, '.gemini'), { recursive: true });
  await writeFile(join(home, '.gemini', 'settings.json'), JSON.stringify(geminiSettings({ maxAttempts: 2 }), null, 2));
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (FOREIGN.test(k)) delete process.env[k];
  Object.assign(process.env, {
    PATH: [agentCliBinDir, saved.PATH ?? '/usr/bin:/bin'].join(delimiter),
    HOME: home,
    NO_COLOR: '1',
    // Claude Code
    ANTHROPIC_BASE_URL: servers.anthropic.url,
    ANTHROPIC_API_KEY: 'sk-ant-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    // Codex CLI (its provider is in $HOME/.codex/config.toml)
    [LOCAL_KEY_ENV]: 'sk-local-test',
    // Gemini CLI
    GEMINI_API_KEY: 'local-test-key',
    GOOGLE_GEMINI_BASE_URL: servers.gemini.url,
  });
  return () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  };
}

/** Which preset runs each default stage's role. */
export type StagePresets = Record<'architect' | 'tester' | 'implementer' | 'supervisor', CliPreset>;

export interface RealRun {
  sb: Sandbox;
  servers: ModelServers;
  result: RunResult;
  /**
   * The state as stored after the monitor stopped: with the last attempt's spending, which is
   * recorded once its command has ended (possibly just after the merge that made the pipeline idle).
   */
  state: PipelineState;
  /** Wall-clock milliseconds from the monitor's start to idle. */
  ms: number;
  cleanup(): Promise<void>;
}

/**
 * Stops the agents a run left running (the process runner leaves them to a next monitor, and a run
 * that failed half-way may have one at work): each one's process group, from its pid file.
 */
async function stopLeftoverAgents(dir: string): Promise<void> {
  const runDir = join(dir, '.pipeline', 'run');
  const names = await readdir(runDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.endsWith('.pid.json'))) {
    try {
      const { pid } = JSON.parse(await readFile(join(runDir, name), 'utf8')) as { pid: number };
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Gone already, or the file was half written: nothing to stop.
    }
  }
}

/**
 * One task (GREETING_TASK on SAMPLE_PROJECT) through the four default stages, one agent per role
 * running the preset given for it, until the pipeline is idle. The caller asserts and cleans up.
 */
export async function runRealPipeline(presets: StagePresets, model: ScriptedModel): Promise<RealRun> {
  for (const p of new Set(Object.values(presets))) agentCliPath(BINARY[p]); // says how to install a missing one
  const servers = await startModelServers(model);
  const home = await mkdtemp(join(tmpdir(), 'real-pipeline-home-'));
  let sb: Sandbox | undefined;
  let restore: (() => void) | undefined;
  const cleanup = async (): Promise<void> => {
    if (sb) await stopLeftoverAgents(sb.dir);
    restore?.();
    await servers.close();
    await sb?.cleanup();
    await rm(home, { recursive: true, force: true });
  };
  try {
    sb = await sandbox({
      tasks: [{ id: 'TASK-001', ...GREETING_TASK }],
      agents: Object.entries(presets).map(([role, preset]) => [`${role}-${preset}`, role, preset]),
      files: SAMPLE_PROJECT,
      config: {
        stages: DEFAULT_STAGES,
        // A failure here is a defect to see, not to retry past.
        retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0, jitter: 0 },
        // Safety nets only: a stage of these scripts takes seconds.
        stageTimeoutSeconds: 180,
        stallSeconds: 120,
        // Time for a CLI on a busy machine to end by itself after its marker and report its tokens
        // (the next stage is another agent's, so this holds nothing up).
        markerGraceSeconds: 30,
      },
    });
    restore = await useAgentEnvironment(home, servers);
    const started = Date.now();
    const result = await runUntilIdle(sb.dir, { timeoutMs: 120_000 });
    const ms = Date.now() - started;
    return { sb, servers, result, state: await readState(sb.dir), ms, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** A tool result that says the CLI refused or could not do what the model asked. */
const REFUSED =
  /requires approval|has been denied|was denied|was blocked|not allowed|no approval surface|read-only file system|operation not permitted/i;

const STAGE_OF_ROLE = {
  architect: 'architect',
  tester: 'test',
  implementer: 'implementation',
  supervisor: 'supervisor',
};

/** What a commit call's result says git made: `[pipeline/TASK-001 1a2b3c4] <message>`. */
function committed(call: ToolCall): string {
  const m = /\[pipeline\/TASK-001 ([0-9a-f]{7,40})\] (.+)/.exec(call.result ?? '');
  assert.ok(m, `git's answer to the commit of the ${call.facts.role}: ${call.result}`);
  assert.equal(m[2]!.trim(), commitMessage(call.facts));
  return m[1]!;
}

/**
 * That the agents did the task's work, through their CLIs' tools, and the engine merged it: from the
 * model servers' request log (each call of the script answered by the CLI, nothing refused, the
 * tests failing before the implementation and passing after it, each commit's id as git gave it),
 * from git (those commits, and nothing the engine had to commit for an agent, on the target branch
 * with the design, the test and the code; the test passing in a checkout of it) and from the state
 * (one attempt per stage, each by the agent of its role, its spending recorded).
 */
export async function assertAgentsDidTheWork(run: RealRun, presets: StagePresets): Promise<void> {
  const dir = run.sb.dir;
  const task = run.state.tasks['TASK-001'];
  assert.ok(task, 'TASK-001 exists');
  assert.equal(task.status, 'done', `TASK-001 is ${task.status}: ${task.blocked_reason ?? '(no reason)'}`);
  const main = (await git(dir, 'rev-parse', 'main')).trim();
  assert.equal(task.merged_commit, main, 'main is the merged work');

  // Each stage once, by the agent of its role running its preset.
  const roles = Object.keys(presets) as (keyof StagePresets)[];
  assert.deepEqual(
    run.result.started.map((s) => `${s.stage} ${s.agentId}`),
    roles.map((r) => `${STAGE_OF_ROLE[r]} ${r}-${presets[r]}`),
  );
  for (const s of run.result.started) {
    const preset = presets[roles.find((r) => STAGE_OF_ROLE[r] === s.stage)!];
    assert.match(s.command, new RegExp(`^${BINARY[preset]} `), `the ${s.stage} stage runs ${preset}`);
  }

  // The request log: each role's whole script, every call answered by its own CLI, none refused.
  const calls = toolCallsOf(run.servers.requests());
  for (const role of roles) {
    const mine = calls.filter((c) => c.facts.role === role);
    assert.ok(mine.length > 0, `the ${role}'s conversation is in the log`);
    const taskFile = mine[0]!.taskFile;
    assert.deepEqual(
      mine.map((c) => describeAction(c.action)),
      scriptOf(mine[0]!.facts, taskFile),
      role,
    );
    for (const c of mine) {
      assert.equal(c.api, API[presets[role]], `${role}: ${describeAction(c.action)} went to ${presets[role]}'s API`);
      assert.ok(c.result !== undefined, `${role}: the CLI answered ${describeAction(c.action)}`);
      assert.doesNotMatch(c.result, REFUSED, `${role}: ${describeAction(c.action)}`);
    }
    assert.match(
      mine[0]!.result!,
      new RegExp(`<!-- pipeline: task=TASK-001 stage=${STAGE_OF_ROLE[role]} role=${role} `),
    );
  }
  const by = (role: string, what: string): ToolCall => {
    const c = calls.find((x) => x.facts.role === role && describeAction(x.action).startsWith(what));
    assert.ok(c, `${role}: ${what}`);
    return c;
  };
  assert.match(
    by('tester', `read ${DESIGN_FILE('TASK-001')}`).result!,
    /exports `greet\(name\)`/,
    "the architect's design reached the tester",
  );
  assert.match(
    by('tester', 'shell: npm test').result!,
    /Cannot find module '\.\.\/src\/greet\.js'/,
    'the new test fails before the implementation',
  );
  for (const role of ['implementer', 'supervisor']) {
    const out = by(role, 'shell: npm test').result!;
    assert.match(out, /# pass 1\b/, `${role}: the test passes`);
    assert.match(out, /# fail 0\b/, `${role}: nothing fails`);
  }
  assert.match(
    by('supervisor', 'shell: git log').result!,
    /TASK-001 implementation: implementer's work\s+TASK-001 test: tester's work\s+TASK-001 architect: architect's work/,
    'the supervisor saw the three commits on the branch',
  );

  // git: the commits the agents reported, with their files, on main; nothing committed for them.
  const expected: [string, string, string][] = [
    ['architect', DESIGN_FILE('TASK-001'), design('TASK-001')],
    ['tester', TEST_FILE, TEST_SOURCE],
    ['implementer', CODE_FILE, CODE_SOURCE],
  ];
  for (const [role, file, content] of expected) {
    const sha = committed(by(role, 'shell: git add -A && git commit'));
    const full = (await git(dir, 'rev-parse', '--verify', `${sha}^{commit}`)).trim();
    assert.ok(await isAncestorOf(dir, full, 'main'), `the ${role}'s commit ${sha} is on main`);
    assert.equal((await git(dir, 'show', '--name-only', '--format=', full)).trim(), file);
    assert.equal(await git(dir, 'show', `main:${file}`), content.trimEnd(), `${file} on main`);
  }
  const subjects = (await git(dir, 'log', '--no-merges', '--format=%s', 'main')).trim().split('\n');
  assert.deepEqual(subjects, [
    "TASK-001 implementation: implementer's work",
    "TASK-001 test: tester's work",
    "TASK-001 architect: architect's work",
    'Initial commit',
  ]);

  // The test passes on what was merged, checked out afresh.
  const checkout = await mkdtemp(join(tmpdir(), 'real-pipeline-main-'));
  try {
    await execFileP('sh', ['-c', `git -C '${dir}' archive main | tar -x -C '${checkout}'`]);
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('NODE_TEST')) delete env[k];
    const { stdout } = await execFileP(process.execPath, ['--test'], { cwd: checkout, env });
    assert.match(stdout, /# pass 1\b/);
    assert.match(stdout, /# fail 0\b/);
  } finally {
    await rm(checkout, { recursive: true, force: true });
  }

  // The engine followed each CLI's output: every stage's spending is recorded.
  assert.deepEqual(
    task.usage?.attempts.map((a) => `${a.stage} ${a.agent}`),
    roles.map((r) => `${STAGE_OF_ROLE[r]} ${r}-${presets[r]}`),
  );
  for (const a of task.usage?.attempts ?? [])
    assert.ok(
      a.models.some((m) => m.output > 0),
      `${a.stage}: tokens counted`,
    );
}

/** How long the run and each stage took (from the assignment to the stage's end), for the test's diagnostics. */
export function timings(run: RealRun): string {
  const task = run.state.tasks['TASK-001'];
  const stages = task ? intervals(task).map((i) => `${i.stage} ${((i.end - i.start) / 1000).toFixed(1)} s`) : [];
  return `to merged in ${(run.ms / 1000).toFixed(1)} s (${stages.join(', ')}); ${run.servers.requests().length} model requests`;
}
