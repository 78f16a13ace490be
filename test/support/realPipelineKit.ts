import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { DEFAULT_STAGES } from '../../src/engine/model/schema';
import { runUntilIdle, sandbox, type RunResult, type Sandbox } from '../engine/monitor/monitorKit';
import { agentCliBinDir, agentCliPath } from './agentCliKit';
import { LOCAL_KEY_ENV, writeCodexConfig } from './codexKit';
import { geminiSettings } from './geminiKit';
import { startAnthropicServer } from './modelServers/anthropicServer';
import { startGeminiServer } from './modelServers/geminiServer';
import { startOpenAIServer } from './modelServers/openaiServer';
import { GREETING_TASK, SAMPLE_PROJECT } from './modelServers/projectModel';
import type { ModelRequestRecord, ModelServer, ScriptedModel } from './modelServers/scriptedModel';

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
  /** Wall-clock milliseconds from the monitor's start to idle. */
  ms: number;
  cleanup(): Promise<void>;
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
        stageTimeoutSeconds: 600,
        stallSeconds: 300,
      },
    });
    restore = await useAgentEnvironment(home, servers);
    const started = Date.now();
    const result = await runUntilIdle(sb.dir, { timeoutMs: 240_000 });
    return { sb, servers, result, ms: Date.now() - started, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** The task's state, with its blocked reason when it did not merge (the first thing to read on a failure). */
export function assertMerged(run: RealRun): void {
  const t = run.result.state.tasks['TASK-001'];
  assert.ok(t, 'TASK-001 exists');
  assert.equal(t.status, 'done', `TASK-001 is ${t.status}: ${t.blocked_reason ?? '(no reason)'}`);
}
