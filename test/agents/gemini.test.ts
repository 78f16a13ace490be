import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { geminiAdapter } from '../../src/engine/agents/cli/geminiAdapter';
import type { AgentInvocationContext } from '../../src/engine/agents/cli/agentCli';
import { findMarker } from '../../src/engine/agents/completionMarker';
import { startGeminiServer } from '../support/modelServers/geminiServer';
import type { ModelAction, ModelServer, ScriptedModel } from '../support/modelServers/scriptedModel';
import { stageModel, stageWorkFile } from '../support/modelServers/stageModel';
import {
  geminiInstalled,
  geminiSettings,
  gitIn,
  makeStageSandbox,
  runGemini,
  SAMPLE_TEST_COMMAND,
  streamEvents,
  type GeminiRun,
  type StageSandbox,
} from '../support/geminiKit';

/**
 * The real Gemini CLI (the pinned 0.61.0 in .agent-clis/) against our local Gemini API server: one
 * pipeline stage end to end with the adapter's own argv, and each failure the adapter must read
 * from the CLI's exit and words. Each test has its own repository, HOME and server.
 */

const skip = geminiInstalled() ? false : 'the pinned Gemini CLI is not installed: node scripts/agentClis/install.mjs';

/** A failure played on every request, as an expired key or an exhausted quota would be. */
const always =
  (action: ModelAction): ScriptedModel =>
  () => ({ action });

const googleError = (status: number, code: string, message: string, details: unknown[] = []) => ({
  kind: 'error' as const,
  status,
  body: { error: { code: status, message, status: code, ...(details.length ? { details } : {}) } },
});

interface Played {
  sb: StageSandbox;
  server: ModelServer;
  run: GeminiRun;
  ctx: AgentInvocationContext;
}

const open: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of open.splice(0)) await close();
});

/** One run of the CLI in a fresh sandbox: the adapter's argv, changed by `tweak` where a test needs. */
async function play(
  model: ScriptedModel,
  o: {
    settings?: unknown;
    extraArgs?: string[];
    deny?: string[];
    apiKey?: string | null;
    tweakArgv?: (argv: string[]) => string[];
    timeoutMs?: number;
  } = {},
): Promise<Played> {
  const sb = await makeStageSandbox(o.settings ? { settings: o.settings } : {});
  const server = await startGeminiServer(model);
  open.push(
    () => server.close(),
    () => sb.cleanup(),
  );
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
    baseUrl: server.url,
    ...(o.apiKey !== undefined ? { apiKey: o.apiKey } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
  });
  return { sb, server, run, ctx };
}

const classify = (run: GeminiRun) =>
  geminiAdapter.classify({ code: run.code, signal: run.signal }, (run.stdout + run.stderr).slice(-8000));

const conversation = (server: ModelServer) => server.requests.filter((r) => r.path.includes(':streamGenerateContent'));

/** A fixed model for the failure tests: no routing call, so a failure is met once, not per router retry. */
const FIXED_MODEL = ['--model', 'gemini-2.5-flash'];

describe('Gemini CLI 0.61.0 against the local Gemini server', { skip }, () => {
  test('one stage end to end: reads the task file, writes, tests, commits, appends the marker', async () => {
    const usage = { input: 1000, output: 50, cacheRead: 200 };
    const { sb, server, run, ctx } = await play(stageModel({ testCommand: SAMPLE_TEST_COMMAND, usage }));
    assert.equal(run.code, 0, run.stderr);

    const marker = findMarker(await readFile(sb.taskFile, 'utf8'));
    assert.deepEqual(marker, { kind: 'completed' });
    const work = stageWorkFile({
      task: 'TASK-001',
      stage: 'implementation',
      role: 'implementer',
      attempt: 1,
      reviews: 0,
    });
    assert.match(await readFile(join(sb.worktree, work), 'utf8'), /Work of the implementer, attempt 1/);
    // Committed on the task's branch, the task file left out (git-excluded), nothing left over.
    assert.equal(gitIn(sb.worktree, 'log', '-1', '--format=%s').trim(), "TASK-001 implementation: implementer's work");
    assert.equal(gitIn(sb.worktree, 'show', '--name-only', '--format=', 'HEAD').trim(), work);
    assert.equal(gitIn(sb.worktree, 'status', '--porcelain').trim(), '');
    assert.equal(gitIn(sb.repo, 'rev-parse', 'pipeline/TASK-001'), gitIn(sb.worktree, 'rev-parse', 'HEAD'));

    // The server's log: the router first, then one request per step, each with what the tools returned.
    assert.match(server.requests[0]!.path, /^\/v1beta\/models\/[^:]*flash-lite[^:]*:generateContent$/);
    const turns = conversation(server);
    assert.equal(turns.length, 6);
    assert.ok(turns.every((t) => t.prompt === ctx.prompt));
    assert.deepEqual(
      turns.map((t) => t.action.kind),
      ['read', 'write', 'shell', 'shell', 'shell', 'text'],
    );
    const results = turns[5]!.toolResults;
    assert.equal(results.length, 5);
    assert.match(results[0]!, /<!-- pipeline: task=TASK-001 stage=implementation role=implementer attempt=1 /);
    assert.match(results[1]!, /Successfully created and wrote to new file/);
    assert.match(results[2]!, /ok work\/TASK-001\/implementation\.md/);
    assert.ok(server.requests.every((r) => r.path.startsWith('/v1beta/models/')));

    // The stream-json log: a session id to resume, every tool call, and the tokens the server reported.
    const events = streamEvents(run.stdout);
    const init = events.find((e) => e['type'] === 'init');
    assert.match(String(init?.['session_id']), /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      events.filter((e) => e['type'] === 'tool_use').map((e) => e['tool_name']),
      ['read_file', 'write_file', 'run_shell_command', 'run_shell_command', 'run_shell_command'],
    );
    assert.ok(events.filter((e) => e['type'] === 'tool_result').every((e) => e['status'] === 'success'));
    const result = events.find((e) => e['type'] === 'result') as
      | { status: string; stats: { input_tokens: number; output_tokens: number; cached: number; tool_calls: number } }
      | undefined;
    assert.equal(result?.status, 'success');
    assert.equal(result.stats.tool_calls, 5);
    assert.equal(result.stats.input_tokens, usage.input * server.requests.length);
    assert.equal(result.stats.output_tokens, usage.output * server.requests.length);
    assert.equal(result.stats.cached, usage.cacheRead * server.requests.length);
  });

  test('the policy keeps it in its worktree: no write outside, no git push, a configured deny', async () => {
    let outside = '';
    const model: ScriptedModel = (turn) => {
      const steps: ModelAction[] = [
        { kind: 'write', path: outside, content: 'escaped\n' },
        { kind: 'shell', command: 'git push origin HEAD' },
        { kind: 'shell', command: 'rm README.md' },
        { kind: 'shell', command: 'git status --short --branch' },
      ];
      return { action: steps[turn.toolResults.length] ?? { kind: 'text', text: 'Done.' } };
    };
    const sb0 = await makeStageSandbox();
    open.push(() => sb0.cleanup());
    outside = join(sb0.root, 'outside.txt');
    const { sb, server, run } = await play(model, { deny: ['run_shell_command(rm)'] });
    assert.equal(run.code, 0, run.stderr);
    const results = conversation(server).at(-1)!.toolResults;
    assert.equal(results.length, 4);
    assert.match(results[0]!, /workspace|outside/i);
    assert.equal(existsSync(outside), false);
    assert.match(results[1]!, /Not allowed for pipeline agents/);
    assert.match(results[2]!, /Not allowed for pipeline agents/);
    assert.ok(existsSync(join(sb.worktree, 'README.md')));
    assert.match(results[3]!, /## pipeline\/TASK-001/);
  });

  test('no key: exit 41, permanent', async () => {
    const { run, server } = await play(always({ kind: 'text', text: 'unused' }), { apiKey: null });
    assert.equal(run.code, 41);
    assert.equal(server.requests.length, 0);
    const f = classify(run);
    assert.equal(f?.kind, 'permanent');
    assert.match(f.summary, /GEMINI_API_KEY/);
  });

  for (const [status, code, message] of [
    [401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'],
    [403, 'PERMISSION_DENIED', 'Permission denied: Consumer has been suspended.'],
  ] as const) {
    test(`a key the API refuses (${status}): permanent, at once`, async () => {
      const { run, server } = await play(always(googleError(status, code, message)));
      assert.equal(run.code, status - 256, 'the HTTP status, modulo 256, is the exit code');
      assert.equal(conversation(server).length, 1, 'no retry');
      const f = classify(run);
      assert.equal(f?.kind, 'permanent');
      assert.equal(f.summary, message);
    });
  }

  test('an untrusted folder without --skip-trust: exit 55, permanent', async () => {
    const { run, server } = await play(always({ kind: 'text', text: 'unused' }), {
      tweakArgv: (argv) => argv.filter((a) => a !== '--skip-trust'),
    });
    assert.equal(run.code, 55);
    assert.equal(server.requests.length, 0);
    const f = classify(run);
    assert.equal(f?.kind, 'permanent');
    assert.match(f.summary, /not running in a trusted directory/);
  });

  test('a bad flag: exit 1 with the usage, permanent', async () => {
    const { run, server } = await play(always({ kind: 'text', text: 'unused' }), { extraArgs: ['--no-such-flag'] });
    assert.equal(run.code, 1);
    assert.equal(server.requests.length, 0);
    const f = classify(run);
    assert.equal(f?.kind, 'permanent');
    assert.match(f.summary, /Unknown arguments?: .*such-flag/);
    // The usage that follows is 4 KB: a short tail still reads as a bad argument.
    const short = geminiAdapter.classify({ code: run.code, signal: run.signal }, run.stderr.slice(-1500));
    assert.equal(short?.kind, 'permanent');
  });

  test('server errors (500): Gemini CLI retries them itself, then transient', async () => {
    const { run, server } = await play(
      always(googleError(500, 'INTERNAL', 'An internal error has occurred.')),
      // Two attempts (one retry after about 5 s) instead of ten (about 4 minutes of back-off).
      { settings: geminiSettings({ maxAttempts: 2 }), extraArgs: FIXED_MODEL },
    );
    assert.equal(run.code, 500 - 256);
    const turns = conversation(server);
    assert.equal(turns.length, 2, 'general.maxAttempts bounds its retries');
    assert.ok(turns[1]!.at - turns[0]!.at >= 3000, 'its first back-off is about 5 s (±30%)');
    const f = classify(run);
    assert.equal(f?.kind, 'transient');
    assert.equal(f.summary, 'An internal error has occurred.');
  });

  test('a quota exhausted with a retry delay (429 RESOURCE_EXHAUSTED): limit, with resetAt', async () => {
    const started = Date.now();
    const { run, server } = await play(
      always(
        googleError(
          429,
          'RESOURCE_EXHAUSTED',
          'You exceeded your current quota, please check your plan and billing details.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 250, model: gemini-2.5-flash\nPlease retry in 3600s.',
          [
            {
              '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
              violations: [
                {
                  quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests',
                  quotaId: 'GenerateRequestsPerDayPerProjectPerModel-FreeTier',
                },
              ],
            },
            { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '3600s' },
          ],
        ),
      ),
      { extraArgs: FIXED_MODEL },
    );
    assert.equal(run.code, 429 - 256);
    assert.equal(conversation(server).length, 1, 'a daily quota is not retried');
    const f = classify(run);
    assert.equal(f?.kind, 'limit');
    assert.match(f.summary, /exhausted your daily quota/);
    assert.ok(f.resetAt !== undefined);
    assert.ok(f.resetAt >= started + 3600_000 && f.resetAt <= Date.now() + 3600_000);
  });

  test('a rate limit with a long retry delay and no quota words: limit, with resetAt', async () => {
    const started = Date.now();
    const { run } = await play(
      always(
        googleError(429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', [
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '900s' },
        ]),
      ),
      { extraArgs: FIXED_MODEL },
    );
    assert.equal(run.code, 429 - 256);
    const f = classify(run);
    assert.equal(f?.kind, 'limit');
    assert.ok(f.resetAt !== undefined && f.resetAt >= started + 900_000 && f.resetAt <= Date.now() + 900_000);
  });

  test('nothing listening: fetch failed, transient', async () => {
    const sb = await makeStageSandbox({ settings: geminiSettings({ maxAttempts: 1 }) });
    open.push(() => sb.cleanup());
    const inv = geminiAdapter.invocation({ ...sb.ctx, permissions: { allow: [], deny: [], extraArgs: FIXED_MODEL } });
    // Port 9 (discard) has no listener on 127.0.0.1.
    const run = await runGemini(inv, {
      cwd: sb.worktree,
      home: sb.home,
      tmpDir: sb.tmp,
      baseUrl: 'http://127.0.0.1:9',
    });
    assert.equal(run.code, 1);
    const f = classify(run);
    assert.equal(f?.kind, 'transient');
    assert.match(f.summary, /fetch failed/);
  });

  test('SIGTERM to its pid stops it (one process: GEMINI_CLI_NO_RELAUNCH)', async () => {
    const sb = await makeStageSandbox();
    const server = await startGeminiServer(always({ kind: 'hang' }));
    open.push(
      () => server.close(),
      () => sb.cleanup(),
    );
    const inv = geminiAdapter.invocation({ ...sb.ctx, permissions: { allow: [], deny: [], extraArgs: FIXED_MODEL } });
    let stoppedAt = 0;
    let poll: NodeJS.Timeout | undefined;
    const run = await runGemini(inv, {
      cwd: sb.worktree,
      home: sb.home,
      tmpDir: sb.tmp,
      baseUrl: server.url,
      timeoutMs: 60_000,
      onSpawn: (stop) => {
        poll = setInterval(() => {
          if (server.requests.length === 0) return;
          clearInterval(poll);
          stoppedAt = Date.now();
          stop('SIGTERM');
        }, 50);
      },
    });
    clearInterval(poll);
    assert.ok(stoppedAt > 0, 'the request arrived');
    assert.notEqual(run.signal, 'SIGKILL', 'it ended on SIGTERM, not on the timeout');
    assert.ok(Date.now() - stoppedAt < 20_000);
  });
});

describe('the local Gemini server', () => {
  let server: ModelServer;
  before(async () => {
    server = await startGeminiServer(always({ kind: 'text', text: 'unused' }));
  });
  after(() => server.close());

  test('answers a call it does not serve with 404 in Google’s shape, and records it', async () => {
    const res = await fetch(`${server.url}/v1beta/models`, { method: 'GET' });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { code: number; status: string } };
    assert.deepEqual([body.error.code, body.error.status], [404, 'NOT_FOUND']);
    assert.equal(server.requests.at(-1)?.path, '/v1beta/models');
  });
});
