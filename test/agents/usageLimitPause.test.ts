import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, test } from 'node:test';
import { LIMIT_NOTE } from '../../src/engine/monitor/limits';
import type { PipelineState, Task } from '../../src/engine/model/schema';
import type { StatusReport } from '../../src/engine/statusReport';
import { agentCliBinDir, agentCliPath } from '../support/agentCliKit';
import { LOCAL_KEY_ENV, writeCodexConfig } from '../support/codexKit';
import { startAnthropicServer } from '../support/modelServers/anthropicServer';
import { startOpenAIServer } from '../support/modelServers/openaiServer';
import type { ModelAction, ModelServer, ModelTurn, ScriptedModel } from '../support/modelServers/scriptedModel';
import { stageModel } from '../support/modelServers/stageModel';
import {
  assertAllMerged,
  cli,
  readState,
  sandbox,
  startCli,
  until,
  within,
  type CliChild,
  type Sandbox,
} from '../engine/monitor/monitorKit';

/**
 * A usage limit is a pause, not a failure, with the real CLIs against our local model servers, led
 * by `pipeline run` in a child process as a user runs it:
 * - Claude Code meets a limit that names its reset time: its agent pauses until then without using
 *   an attempt, while the Codex agent goes on with its own work; `pipeline run` is stopped during
 *   the pause and started again; the pause holds across the restart, and at the reset the task
 *   resumes with `claude --resume <session>` (the model sees its earlier turns) and merges.
 * - A limit that names no time pauses every agent of that CLI for `limitBackoffSeconds`; then the
 *   task resumes the same way and merges.
 * There is no clock the engine takes from outside, so the resets are real times a little ahead.
 */

// The pinned CLIs first on PATH; a HOME of the test's own; both servers' keys. Set once: every
// `pipeline run` child and the agents it starts inherit this process's environment.
const home = mkdtemp(join(tmpdir(), 'usage-limit-home-'));
after(async () => rm(await home, { recursive: true, force: true }));

async function environment(anthropic: ModelServer, openai: ModelServer | null): Promise<NodeJS.ProcessEnv> {
  const h = await home;
  if (openai) await writeCodexConfig(h, { serverUrl: openai.url, requestMaxRetries: 0, streamMaxRetries: 0 });
  return {
    PATH: [agentCliBinDir, process.env.PATH ?? '/usr/bin:/bin'].join(delimiter),
    HOME: h,
    ANTHROPIC_BASE_URL: anthropic.url,
    ANTHROPIC_API_KEY: 'sk-ant-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    [LOCAL_KEY_ENV]: 'sk-local-test',
  };
}

/** Claude Code's answer to an account over its usage limit: a 429 it must not retry. */
function limitAnswer(message: string, retryAfterSeconds?: number): ModelAction {
  return {
    kind: 'error',
    status: 429,
    headers: {
      'x-should-retry': 'false',
      ...(retryAfterSeconds !== undefined ? { 'retry-after': String(retryAfterSeconds) } : {}),
    },
    body: { type: 'error', error: { type: 'rate_limit_error', message } },
  };
}

/**
 * The stage model, answering a resumed conversation as a model would: the task file is the one the
 * latest prompt names (the resuming run's own), and the steps go on from the turns it already had.
 */
function resumingStageModel(stage: ScriptedModel): ScriptedModel {
  return (turn: ModelTurn) => stage({ ...turn, prompt: turn.prompts?.at(-1) ?? turn.prompt });
}

const PRICES = { '*': { inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3, cacheWritePerMTok: 3.75 } };

/** A project whose test command waits for `gate` when asked to (`node test/run.js gated`). */
function projectFiles(gate: string): Record<string, string> {
  return {
    'README.md': '# Demo\n',
    'test/run.js': [
      "const fs = require('fs');",
      `const gate = ${JSON.stringify(gate)};`,
      '(function wait() {',
      "  if (process.argv[2] !== 'gated' || fs.existsSync(gate)) console.log('demo tests: 3 passed');",
      '  else setTimeout(wait, 50);',
      '})();',
      '',
    ].join('\n'),
  };
}

function historyOf(t: Task | undefined, event: string, stage?: string) {
  return (t?.history ?? []).filter((h) => h.event === event && (stage === undefined || h.stage === stage));
}

async function statusJson(dir: string): Promise<StatusReport> {
  const r = await cli(dir, ['status', '--json']);
  assert.equal(r.code, 0, r.output);
  return JSON.parse(r.output) as StatusReport;
}

/** The state as stored, once `check` holds for it (read by a follower, as another process would). */
function stateWhen<T>(
  dir: string,
  what: string,
  ms: number,
  check: (s: PipelineState) => T | undefined | false,
  run?: CliChild,
) {
  return until(
    what,
    ms,
    async () => check(await readState(dir)),
    200,
    () => run?.output().slice(-3000) ?? '',
  );
}

void test('a usage limit with a reset time: claude pauses without using an attempt, codex works on, the pause survives a restart of pipeline run, then the task resumes with --resume and merges', async (t) => {
  agentCliPath('claude');
  agentCliPath('codex');
  // Long enough for what must happen during the pause (codex ends its stage, a stop and a start of
  // pipeline run); each of those is waited for, and the test says so if the reset came first.
  const PAUSE_MS = 20_000;
  let resetAt = 0;
  let limited: ModelTurn | undefined;
  let resumedTurn: ModelTurn | undefined;
  const claudeStage = resumingStageModel(stageModel({ testCommand: 'node test/run.js' }));
  const anthropic = await startAnthropicServer((turn) => {
    // TASK-001's first implementation run: its task file read, then the account is over its limit.
    if (!limited && turn.prompt.includes('TASK-001') && turn.toolResults.length === 1) {
      limited = turn;
      resetAt = Date.now() + PAUSE_MS;
      const iso = new Date(resetAt).toISOString();
      return {
        action: limitAnswer(`Usage limit reached for this organization. Limit resets at ${iso}.`, PAUSE_MS / 1000),
      };
    }
    if (limited && !resumedTurn && turn.prompt.includes('TASK-001') && (turn.prompts?.length ?? 0) > 1)
      resumedTurn = turn;
    return claudeStage(turn);
  });
  // TASK-002's tests wait for a gate the test opens once claude is paused: codex works in the pause.
  const gate = join(await home, 'gate-limit-with-reset');
  const codexStage = stageModel({ testCommand: 'node test/run.js' });
  const gatedStage = stageModel({ testCommand: 'node test/run.js gated' });
  const openai = await startOpenAIServer((turn) => (turn.prompt.includes('TASK-002') ? gatedStage : codexStage)(turn));
  const env = await environment(anthropic, openai);
  let sb: Sandbox | undefined;
  const runs: CliChild[] = [];
  try {
    sb = await sandbox({
      tasks: [
        { id: 'TASK-001', title: 'Add a greeting', description: 'Add `greet(name)`.', paths: ['src/greet/**'] },
        { id: 'TASK-002', title: 'Add a farewell', description: 'Add `bye(name)`.', paths: ['src/bye/**'] },
      ],
      agents: [
        ['codex-1', 'tester', 'codex'],
        ['claude-1', 'implementer', 'claude'],
      ],
      config: {
        stages: [
          { name: 'test', role: 'tester' },
          { name: 'implementation', role: 'implementer' },
        ],
        reworkStage: 'implementation',
        conflictStages: ['implementation'],
        prices: PRICES,
      },
      files: projectFiles(gate),
    });
    const dir = sb.dir;
    const first = startCli(dir, ['run', '--until-idle'], env);
    runs.push(first);

    // Claude meets the limit: paused until the reset its CLI named, its task back in its queue.
    const paused = await stateWhen(
      dir,
      'claude-1 paused by the usage limit',
      120_000,
      (s) => s.agents['claude-1']?.status === 'paused' && s,
      first,
    );
    const pausedSeen = Date.now();
    const claude = paused.agents['claude-1']!;
    assert.equal(claude.paused_until, new Date(resetAt).toISOString(), 'paused until the reset the CLI named');
    assert.match(claude.paused_reason ?? '', /Limit resets at/);
    const task1 = paused.tasks['TASK-001']!;
    assert.deepEqual([task1.status, task1.stage, task1.failures], ['queued', 'implementation', 0]);
    const requeue = historyOf(task1, 'requeue', 'implementation').at(-1);
    assert.ok(requeue?.note?.startsWith(LIMIT_NOTE), JSON.stringify(task1.history));
    // The other vendor's agent is not paused.
    assert.notEqual(paused.agents['codex-1']?.status, 'paused');

    // Meanwhile codex finishes TASK-002's tests (held until now by the gate): it works during the pause.
    await writeFile(gate, '');
    const tested = await stateWhen(
      dir,
      "TASK-002's test stage done by codex-1",
      180_000,
      (s) => (s.tasks['TASK-002']?.stage === 'implementation' ? s : undefined),
      first,
    );
    // A stage's `complete` entry is recorded under the stage the task moves on to.
    const testedAt = Date.parse(
      historyOf(tested.tasks['TASK-002'], 'complete').find((h) => h.agent === 'codex-1')?.at ?? '',
    );
    assert.ok(testedAt >= pausedSeen, 'codex finished its stage after claude-1 was paused');
    assert.ok(
      testedAt < resetAt,
      `codex finished its stage ${testedAt - resetAt} ms after the reset: too slow a machine for PAUSE_MS`,
    );
    assert.equal(tested.agents['claude-1']?.status, 'paused');

    // pipeline run is stopped during the pause (SIGTERM) and started again: the pause holds.
    first.proc.kill('SIGTERM');
    const code = await within('pipeline run to stop on SIGTERM', 60_000, first.exited);
    assert.equal(code, 130, first.output().slice(-3000));
    const stopped = await readState(dir);
    assert.equal(stopped.agents['claude-1']?.status, 'paused');
    assert.equal(stopped.agents['claude-1']?.paused_until, new Date(resetAt).toISOString());
    const second = startCli(dir, ['run', '--until-idle'], env);
    runs.push(second);
    const report = await until('status --json from the new leader', 60_000, async () => {
      const s = await statusJson(dir);
      return s.leader?.label === 'pipeline run' && s.leader.pid === second.proc.pid ? s : undefined;
    });
    const restartedAt = Date.now();
    assert.ok(
      restartedAt < resetAt,
      `restarted ${restartedAt - resetAt} ms after the reset: too slow a machine for PAUSE_MS`,
    );
    assert.equal(report.agents['claude-1']?.status, 'paused', 'still paused under the new leader');

    // At the reset the task resumes, with claude's own resume, and both tasks merge.
    const code2 = await within('the restarted pipeline run to merge both tasks', 300_000, second.exited);
    assert.equal(code2, 0, second.output().slice(-3000));
    const end = await readState(dir);
    await assertAllMerged(dir, end);
    const done1 = end.tasks['TASK-001']!;
    // Not one failure counted at any stage; the limit's attempt and the resumed one at implementation.
    assert.equal(done1.failures, 0);
    assert.ok(!done1.history.some((h) => h.event === 'fail' || h.event === 'failed'), JSON.stringify(done1.history));
    const assigns = historyOf(done1, 'assign', 'implementation');
    assert.equal(assigns.length, 2, JSON.stringify(done1.history));
    assert.ok(Date.parse(assigns[1]!.at) >= resetAt, 'not started again before the reset');
    // The resumed run continued the limited run's session: the model saw its first prompt and the
    // task file it had read, then the resuming run's prompt, which names this attempt's task file.
    const usage = done1.usage?.attempts ?? [];
    const limitedAttempt = usage.find((u) => u.stage === 'implementation' && u.attempt < done1.attempt);
    assert.ok(limitedAttempt?.session, `the limited attempt's session was recorded: ${JSON.stringify(usage)}`);
    const log = await readFile(join(dir, '.pipeline', 'logs', 'agents', 'claude-1.log'), 'utf8');
    assert.ok(log.includes(`--resume ${limitedAttempt.session}`), 'claude ran with --resume <the session>');
    assert.ok(resumedTurn, 'the model saw the resumed conversation');
    assert.equal(resumedTurn.prompts?.[0], limited!.prompt);
    assert.match(resumedTurn.prompts?.at(-1) ?? '', /TASK-001\.attempt-\d+\.md/);
    assert.notEqual(resumedTurn.prompts?.at(-1), resumedTurn.prompts?.[0]);
    assert.deepEqual(resumedTurn.toolResults.slice(0, 1), limited!.toolResults);
    t.diagnostic(
      `paused ${pausedSeen - (resetAt - PAUSE_MS)} ms after the limit; codex done ${resetAt - testedAt} ms and run restarted ${resetAt - restartedAt} ms before the reset; ${anthropic.requests.length} + ${openai.requests.length} model requests`,
    );
  } finally {
    await writeFile(gate, '').catch(() => undefined);
    for (const r of runs) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
    await anthropic.close();
    await openai.close();
    await sb?.cleanup();
  }
});

void test('a usage limit without a reset time: every agent on that CLI pauses for limitBackoffSeconds, then the task resumes with --resume and merges', async (t) => {
  agentCliPath('claude');
  const BACKOFF_S = 6;
  let limitedAt = 0;
  let limited: ModelTurn | undefined;
  const claudeStage = resumingStageModel(stageModel({ testCommand: 'node test/run.js' }));
  const anthropic = await startAnthropicServer((turn) => {
    if (!limited && turn.toolResults.length === 1) {
      limited = turn;
      limitedAt = Date.now();
      // A rate limit with no word of when it lifts (no retry-after, no reset in the message).
      return { action: limitAnswer('Number of requests has exceeded your rate limit. Please try again later.') };
    }
    return claudeStage(turn);
  });
  const env = await environment(anthropic, null);
  let sb: Sandbox | undefined;
  let run: CliChild | undefined;
  try {
    sb = await sandbox({
      tasks: [{ id: 'TASK-001', title: 'Add a greeting', description: 'Add `greet(name)`.' }],
      // Two agents of the same CLI: the limit is the account's, so both pause.
      agents: [
        ['claude-1', 'tester', 'claude'],
        ['claude-2', 'tester', 'claude'],
      ],
      config: {
        stages: [{ name: 'test', role: 'tester' }],
        reworkStage: 'test',
        conflictStages: ['test'],
        prices: PRICES,
        limitBackoffSeconds: BACKOFF_S,
      },
      files: projectFiles(join(await home, 'no-gate')),
    });
    const dir = sb.dir;
    run = startCli(dir, ['run', '--until-idle'], env);
    const paused = await stateWhen(
      dir,
      'both claude agents paused',
      120_000,
      (s) => Object.values(s.agents).every((a) => a.status === 'paused') && s,
      run,
    );
    const pausedSeen = Date.now();
    const until1 = Date.parse(paused.agents['claude-1']!.paused_until!);
    // No reset named: the back-off from the moment the limit was met (its exit, just after the answer).
    assert.ok(until1 >= limitedAt + BACKOFF_S * 1000, `paused until ${until1 - limitedAt} ms after the limit`);
    assert.ok(until1 <= pausedSeen + BACKOFF_S * 1000, `paused until ${until1 - pausedSeen} ms after it was seen`);
    assert.equal(paused.agents['claude-2']!.paused_until, paused.agents['claude-1']!.paused_until);
    assert.match(paused.agents['claude-1']!.paused_reason ?? '', /429|rate limit/i);
    const task = paused.tasks['TASK-001']!;
    assert.deepEqual([task.status, task.failures], ['queued', 0]);
    assert.match(
      historyOf(task, 'requeue').at(-1)?.note ?? '',
      new RegExp(`^${LIMIT_NOTE} of claude-1's CLI \\(.*\\); resumes at \\d\\d:\\d\\d$`),
    );

    const code = await within('pipeline run to merge the task', 300_000, run.exited);
    assert.equal(code, 0, run.output().slice(-3000));
    const end = await readState(dir);
    await assertAllMerged(dir, end);
    const done = end.tasks['TASK-001']!;
    assert.equal(done.failures, 0);
    const assigns = historyOf(done, 'assign', 'test');
    assert.equal(assigns.length, 2, JSON.stringify(done.history));
    assert.ok(Date.parse(assigns[1]!.at) >= until1, 'not started again before the back-off ended');
    // claude-1 met the limit and takes the task again (first of the idle agents): with its session.
    assert.deepEqual(
      assigns.map((a) => a.agent),
      ['claude-1', 'claude-1'],
    );
    const session = done.usage?.attempts.find((u) => u.attempt === 1)?.session;
    assert.ok(session, JSON.stringify(done.usage));
    const log = await readFile(join(dir, '.pipeline', 'logs', 'agents', 'claude-1.log'), 'utf8');
    assert.ok(log.includes(`--resume ${session}`), 'claude ran with --resume <the session>');
    for (const a of Object.values(end.agents)) assert.equal(a.status, 'idle');
    t.diagnostic(`paused for ${until1 - limitedAt} ms; ${anthropic.requests.length} model requests`);
  } finally {
    if (run && run.proc.exitCode === null && run.proc.signalCode === null) run.proc.kill('SIGKILL');
    await anthropic.close();
    await sb?.cleanup();
  }
});
