import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { resolveCommand, type ResolveOptions } from '../../src/engine/agents/commandTemplate';
import { findAppendedMarker, findMarker } from '../../src/engine/agents/completionMarker';
import { adapterFor } from '../../src/engine/agents/cli/agentCliRegistry';
import { claudeAdapter, claudeMessages, parseResetTime } from '../../src/engine/agents/cli/claudeAdapter';
import { renderTaskFile, TASK_DIR, taskFileName } from '../../src/engine/agents/taskFile';
import { agentCliPath, git, isolatedEnv, runCli, tailOf, tempRepo, type TempRepo } from '../support/agentCliKit';
import { startAnthropicServer } from '../support/modelServers/anthropicServer';
import type { ModelAction, ModelServer, ScriptedModel } from '../support/modelServers/scriptedModel';
import { stageModel } from '../support/modelServers/stageModel';
import { parseRun } from '../support/streamKit';
import { newTask } from '../support/taskFixtures';

/**
 * The real Claude Code CLI (pinned in scripts/agentClis/install.mjs) run the way the pipeline runs it
 * (argv from the `claude` preset's adapter), in a worktree laid out as the pipeline lays them out,
 * against a scripted Anthropic Messages server on 127.0.0.1. No vendor is contacted.
 */

const FIXTURE = join(__dirname, 'fixtures', 'claude-stream.jsonl');

interface Stage {
  repo: TempRepo;
  taskFile: string;
  argv: string[];
  env: Record<string, string>;
}

/** A worktree with a rendered task file, and the preset's command for it. */
async function stage(opts: Partial<ResolveOptions> = {}): Promise<Stage> {
  agentCliPath('claude'); // fails with the install command when the CLI is missing
  const repo = await tempRepo({
    files: {
      'package.json': `${JSON.stringify({ name: 'demo', private: true, scripts: { test: 'node test/run.js' } }, null, 2)}\n`,
      // DEMO_TEST_DELAY_MS: a slow test run, as when the fixture is recorded (see below).
      'test/run.js':
        "setTimeout(() => console.log('demo tests: 3 passed, 0 failed'), Number(process.env.DEMO_TEST_DELAY_MS ?? 0));\n",
    },
  });
  const task = newTask('TASK-001', 1, {
    title: 'Add a greeting',
    description: 'Add a `greet(name)` function and its tests.',
    stage: 'test',
    status: 'working',
    assigned_to: 'agent-1',
    attempt: 1,
  });
  await mkdir(join(repo.worktree, TASK_DIR), { recursive: true });
  const taskFile = join(repo.worktree, TASK_DIR, taskFileName(task.id, 1));
  await writeFile(
    taskFile,
    renderTaskFile({
      task,
      stage: { name: 'test', role: 'tester' },
      isLastStage: false,
      attempt: 1,
      agentId: 'agent-1',
      targetBranch: 'main',
      prerequisites: [],
      prior: { commits: [], files: [], notes: [] },
    }),
  );
  const resolved = resolveCommand(
    'claude',
    { taskFile, taskId: task.id, worktree: repo.worktree, role: 'tester' },
    { scriptedAgent: 'unused', ...opts },
  );
  return { repo, taskFile, argv: resolved.argv, env: resolved.env };
}

/** The environment a test gives the CLI: our server, a fake key, nothing sent anywhere else. */
function claudeEnv(s: Stage, server: ModelServer | null, vars: Record<string, string> = {}): Record<string, string> {
  const env = isolatedEnv(s.repo.home, {
    ANTHROPIC_BASE_URL: server?.url ?? 'http://127.0.0.1:9',
    ANTHROPIC_API_KEY: 'sk-ant-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
    ...s.env,
    ...vars,
  });
  for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
  return env;
}

interface StreamEvent {
  type: string;
  subtype?: string;
  session_id?: string;
  [k: string]: unknown;
}

function events(stdout: string): StreamEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as StreamEvent);
}

/** Each tool call the model made, with what the CLI sent back for it (in the next request). */
function toolCalls(server: ModelServer): { action: ModelAction; result: string }[] {
  const rs = server.requests;
  return rs.slice(0, -1).map((r, i) => ({ action: r.action, result: rs[i + 1]!.toolResults.at(-1) ?? '' }));
}

void test('claude: one stage end to end: reads the task file, writes, runs the tests, commits, appends the marker', async (t) => {
  const usage = { input: 1500, output: 60, cacheRead: 400, cacheWrite: 200 };
  // The stage first: it fails at once when the CLI is missing, before a server would keep the file running.
  const s = await stage();
  const server = await startAnthropicServer(stageModel({ testCommand: 'npm test', usage }));
  try {
    // Recording the fixture: a test command slow enough (over about 3 s) that Claude Code reports it
    // as a task (`system/task_started`, `system/task_notification`), so the sample holds every kind.
    const record = process.env.UPDATE_FIXTURES === '1';
    const env = claudeEnv(s, server, record ? { DEMO_TEST_DELAY_MS: '5000' } : {});
    const run = await runCli(s.argv, { cwd: s.repo.worktree, env });
    t.diagnostic(`stage run: ${run.ms} ms, ${server.requests.length} model requests`);
    assert.equal(run.code, 0, run.output.slice(-3000));

    // What the CLI did, as its tool results show it: nothing refused.
    const calls = toolCalls(server);
    assert.deepEqual(
      calls.map((c) => c.action.kind),
      ['read', 'write', 'shell', 'shell', 'shell'],
    );
    for (const c of calls)
      assert.doesNotMatch(
        c.result,
        /requires approval|(?:has been|was) denied|was blocked|no approval surface/,
        JSON.stringify(c),
      );
    assert.match(calls[0]!.result, /<!-- pipeline: task=TASK-001 stage=test role=tester/, 'the task file was read');
    assert.match(calls[1]!.result, /File created successfully/);
    assert.match(calls[2]!.result, /demo tests: 3 passed/, 'npm test ran');
    assert.ok(
      server.requests.every((r) => r.prompt.includes(s.taskFile)),
      'the prompt names the task file, with no system reminder left in it',
    );

    // The commit is on the task's branch, with the work file and without the task file.
    const log = await git(s.repo.repo, ['log', '--format=%s', s.repo.branch]);
    assert.match(log.split('\n')[0]!, /^TASK-001 test: tester's work$/);
    const files = await git(s.repo.repo, ['show', '--name-only', '--format=', s.repo.branch]);
    assert.deepEqual(files.trim().split('\n'), ['work/TASK-001/test.md']);
    const written = await readFile(s.taskFile, 'utf8');
    assert.deepEqual(findMarker(written), { kind: 'completed' });
    assert.deepEqual(findAppendedMarker(written), { kind: 'completed' }, 'appended after the file as written');

    // The stream: an init event with the session id, the assistant's tool calls, a success result.
    const evs = events(run.stdout);
    const init = evs[0]!;
    assert.equal(init.type, 'system');
    assert.equal(init.subtype, 'init');
    assert.equal(init.permissionMode, 'acceptEdits');
    assert.ok(typeof init.session_id === 'string' && init.session_id.length > 0);
    const result = evs.at(-1)!;
    assert.equal(result.type, 'result');
    assert.equal(result.subtype, 'success');
    assert.equal(result.is_error, false);
    assert.equal(result.session_id, init.session_id);
    assert.deepEqual(result.permission_denials, []);
    assert.equal(result.num_turns, server.requests.length);
    const u = result.usage as Record<string, number>;
    const n = server.requests.length;
    assert.equal(u.output_tokens, usage.output * n, 'output tokens: the sum of every reply');
    assert.equal(u.input_tokens, usage.input * n);
    assert.equal(u.cache_read_input_tokens, usage.cacheRead * n);
    assert.equal(u.cache_creation_input_tokens, usage.cacheWrite * n);
    assert.ok(typeof result.total_cost_usd === 'number' && result.total_cost_usd > 0);
    const toolUses = evs
      .filter((e) => e.type === 'assistant')
      .flatMap((e) => (e.message as { content: { type: string; name?: string }[] }).content)
      .filter((c) => c.type === 'tool_use')
      .map((c) => c.name);
    assert.deepEqual(toolUses, ['Read', 'Write', 'Bash', 'Bash', 'Bash']);

    // What the monitor makes of this output (the adapter's parser, the progress code it runs):
    // each step in order, paths shown within the worktree, the tokens so far growing request by
    // request, then the run's totals and Claude Code's own cost, and the session to resume.
    const parsed = parseRun(claudeAdapter, run.output, { worktree: s.repo.worktree, argv: s.argv });
    assert.deepEqual(parsed.steps, [
      `Read ${relative(s.repo.worktree, s.taskFile)}`,
      'Write work/TASK-001/test.md',
      'Bash: npm test',
      `Bash: git add -A && git commit -q -m "TASK-001 test: tester's work"`,
      `Bash: printf '\\n%s\\n' '## Status: COMPLETED ✅' >> '${relative(s.repo.worktree, s.taskFile)}'`,
    ]);
    assert.deepEqual(
      parsed.lines.slice(0, 3),
      ['Read', 'Write', 'Bash'].map((_, i) => `agent-1 TASK-001 (test): ${parsed.steps[i]}`),
    );
    assert.equal(parsed.progress.steps, 5);
    assert.equal(parsed.progress.step, parsed.steps.at(-1));
    assert.equal(parsed.progress.message, 'Done.');
    assert.equal(parsed.progress.session, init.session_id);
    assert.ok(parsed.final, 'the result event gave the totals');
    assert.deepEqual(
      { ...parsed.usageSeen[0], costUsd: 0 },
      { input: usage.input, output: 1, cacheRead: usage.cacheRead, cacheWrite: usage.cacheWrite, costUsd: 0 },
      "while it runs: the first request's tokens (its output count a placeholder until the result)",
    );
    const sum = (k: 'input' | 'output' | 'cacheRead' | 'cacheWrite') => parsed.models.reduce((acc, m) => acc + m[k], 0);
    assert.deepEqual(
      { input: sum('input'), output: sum('output'), cacheRead: sum('cacheRead'), cacheWrite: sum('cacheWrite') },
      {
        input: usage.input * n,
        output: usage.output * n,
        cacheRead: usage.cacheRead * n,
        cacheWrite: usage.cacheWrite * n,
      },
    );
    assert.ok(parsed.models.every((m) => m.costSource === 'cli'));
    const cost = parsed.models.reduce((acc, m) => acc + (m.costUsd ?? 0), 0);
    assert.ok(Math.abs(cost - result.total_cost_usd) < 1e-9, `${cost} vs ${String(result.total_cost_usd)}`);
    assert.equal(parsed.progress.usage?.input, usage.input * n);
    assert.ok(Math.abs(parsed.progress.usage.costUsd - cost) < 1e-9);

    // The saved sample for the stream parser has every kind of event this run had.
    if (record) await writeFile(FIXTURE, run.stdout);
    const kinds = (evs: StreamEvent[]) =>
      [...new Set(evs.map((e) => `${e.type}${e.subtype ? `/${e.subtype}` : ''}`))].sort();
    const recorded = kinds(events(await readFile(FIXTURE, 'utf8')));
    const unknown = kinds(evs).filter((k) => !recorded.includes(k));
    assert.deepEqual(unknown, [], 'events the fixture lacks: record it again with UPDATE_FIXTURES=1');
  } finally {
    await server.close();
    await s.repo.cleanup();
  }
});

void test('claude: a denied default stays denied: --settings carries the user narrowing the permissions', async () => {
  const s = await stage({ permissions: { deny: ['Bash(git commit:*)'] } });
  const server = await startAnthropicServer(stageModel({ testCommand: 'npm test' }));
  try {
    const run = await runCli(s.argv, { cwd: s.repo.worktree, env: claudeEnv(s, server) });
    assert.equal(run.code, 0, run.output.slice(-3000));
    const commit = toolCalls(server).find((c) => c.action.kind === 'shell' && c.action.command.includes('git commit'));
    assert.match(commit?.result ?? '', /denied/);
    assert.equal((await git(s.repo.repo, ['log', '--format=%s', s.repo.branch])).trim(), 'Initial commit');
    const result = events(run.stdout).at(-1)!;
    assert.equal((result.permission_denials as unknown[]).length, 1, 'the result event lists the refusal');
  } finally {
    await server.close();
    await s.repo.cleanup();
  }
});

void test('claude: nothing beyond the worktree and the allowed commands: writes elsewhere, pushes and other programs are refused', async () => {
  const s = await stage();
  const outside = join(s.repo.repo, 'outside.md');
  const attempts: ModelAction[] = [
    { kind: 'write', path: outside, content: 'not here\n' },
    { kind: 'shell', command: 'git push origin HEAD' },
    { kind: 'shell', command: `node -e "require('fs').writeFileSync('${outside}', 'x')"` },
    { kind: 'shell', command: 'curl -s http://127.0.0.1:9/' },
  ];
  const server = await startAnthropicServer((turn) => ({
    action: attempts[turn.toolResults.length] ?? { kind: 'text', text: 'Done.' },
  }));
  try {
    const run = await runCli(s.argv, { cwd: s.repo.worktree, env: claudeEnv(s, server) });
    assert.equal(run.code, 0, run.output.slice(-3000));
    const calls = toolCalls(server);
    assert.equal(calls.length, attempts.length);
    for (const c of calls) assert.match(c.result, /no approval surface|has been denied|was blocked/, JSON.stringify(c));
    await assert.rejects(readFile(outside), 'nothing was written outside the worktree');
    const result = events(run.stdout).at(-1)!;
    assert.equal((result.permission_denials as unknown[]).length, attempts.length);
  } finally {
    await server.close();
    await s.repo.cleanup();
  }
});

/** Runs the stage against a model that fails, and classifies the run as the monitor would. */
async function failedRun(
  model: ScriptedModel | null,
  vars: Record<string, string>,
  opts: Partial<ResolveOptions> = {},
) {
  const s = await stage(opts);
  const server = model ? await startAnthropicServer(model) : null;
  try {
    const run = await runCli(s.argv, { cwd: s.repo.worktree, env: claudeEnv(s, server, vars) });
    const failure = claudeAdapter.classify({ code: run.code, signal: run.signal }, tailOf(run.output));
    return { run, failure, requests: server?.requests.length ?? 0 };
  } finally {
    await server?.close();
    await s.repo.cleanup();
  }
}

void test('claude: no API key: permanent, "Not logged in", no request sent', async (t) => {
  const { run, failure, requests } = await failedRun(stageModel(), { ANTHROPIC_API_KEY: '' });
  t.diagnostic(`no key: exit ${run.code} after ${run.ms} ms`);
  assert.equal(run.code, 1);
  assert.equal(requests, 0);
  assert.equal(failure?.kind, 'permanent', run.output.slice(-2000));
  assert.match(failure.summary, /Not logged in/);
});

void test('claude: the server answers 500 every time: transient, after the retries CLAUDE_CODE_MAX_RETRIES allows', async (t) => {
  const error: ModelAction = {
    kind: 'error',
    status: 500,
    body: { type: 'error', error: { type: 'api_error', message: 'Internal server error' } },
  };
  const { run, failure, requests } = await failedRun(() => ({ action: error }), { CLAUDE_CODE_MAX_RETRIES: '2' });
  t.diagnostic(`500 x ${requests}: exit ${run.code} after ${run.ms} ms`);
  assert.equal(run.code, 1);
  assert.equal(requests, 3, 'the first request and two retries');
  assert.equal(failure?.kind, 'transient', run.output.slice(-2000));
  assert.match(failure.summary, /API Error: 500/);
});

void test('claude: nothing listening at the base URL: transient ("Connection refused")', async (t) => {
  const { run, failure } = await failedRun(null, { CLAUDE_CODE_MAX_RETRIES: '0' });
  t.diagnostic(`connection refused: exit ${run.code} after ${run.ms} ms`);
  assert.equal(run.code, 1);
  assert.equal(failure?.kind, 'transient', run.output.slice(-2000));
  assert.match(failure.summary, /Connection refused/);
});

void test('claude: a model that never answers: transient ("Request timed out") once API_TIMEOUT_MS passes', async (t) => {
  const { run, failure, requests } = await failedRun(() => ({ action: { kind: 'hang' } }), {
    API_TIMEOUT_MS: '2000',
    CLAUDE_CODE_MAX_RETRIES: '0',
  });
  t.diagnostic(`hang: exit ${run.code} after ${run.ms} ms`);
  assert.equal(run.code, 1);
  assert.equal(requests, 1);
  assert.equal(failure?.kind, 'transient', run.output.slice(-2000));
  assert.match(failure.summary, /Request timed out/);
});

void test('claude: an API key over its limit (429, x-should-retry: false, a reset time in the message): limit, resetAt parsed', async (t) => {
  const resetAt = Date.UTC(2031, 0, 15, 17, 30);
  const error: ModelAction = {
    kind: 'error',
    status: 429,
    headers: { 'x-should-retry': 'false', 'retry-after': '3600' },
    body: {
      type: 'error',
      error: {
        type: 'rate_limit_error',
        message: `Usage limit reached for this organization. Limit resets at ${new Date(resetAt).toISOString()}.`,
      },
    },
  };
  const { run, failure, requests } = await failedRun(() => ({ action: error }), {});
  t.diagnostic(`429 (API key): exit ${run.code} after ${run.ms} ms; ${failure?.summary}`);
  assert.equal(run.code, 1);
  assert.equal(requests, 1, 'x-should-retry: false stops the CLI retrying');
  assert.equal(failure?.kind, 'limit', run.output.slice(-2000));
  assert.match(failure.summary, /Request rejected \(429\)/);
  assert.equal(failure.resetAt, resetAt);
});

void test("claude: a subscription's usage limit (unified rate-limit headers): limit, resetAt from the wall-clock time it prints", async (t) => {
  // Whole minutes: the CLI prints "resets 4:30pm (Europe/Berlin)", no seconds.
  const resetAt = (Math.floor(Date.now() / 60_000) + 150) * 60_000;
  const seconds = String(resetAt / 1000);
  const error: ModelAction = {
    kind: 'error',
    status: 429,
    headers: {
      'x-should-retry': 'false',
      'anthropic-ratelimit-unified-status': 'rejected',
      'anthropic-ratelimit-unified-reset': seconds,
      'anthropic-ratelimit-unified-5h-status': 'rejected',
      'anthropic-ratelimit-unified-5h-reset': seconds,
      'anthropic-ratelimit-unified-5h-utilization': '1.0',
      'anthropic-ratelimit-unified-representative-claim': 'five_hour',
    },
    body: { type: 'error', error: { type: 'rate_limit_error', message: 'Rate limited' } },
  };
  // A subscriber signs in with an OAuth token; the zone shows in the message and must be honoured.
  const { run, failure } = await failedRun(() => ({ action: error }), {
    ANTHROPIC_API_KEY: '',
    CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat01-test-token',
    TZ: 'Europe/Berlin',
  });
  t.diagnostic(`429 (subscription): exit ${run.code} after ${run.ms} ms; ${failure?.summary}`);
  assert.equal(run.code, 1);
  assert.equal(failure?.kind, 'limit', run.output.slice(-2000));
  assert.match(failure.summary, /You've hit your .*limit · resets .*\(Europe\/Berlin\)/);
  assert.equal(failure.resetAt, resetAt);
});

void test('claude: a bad flag: permanent, in the CLI’s own words', async (t) => {
  const { run, failure, requests } = await failedRun(
    stageModel(),
    {},
    { permissions: { extraArgs: ['--no-such-flag'] } },
  );
  t.diagnostic(`bad flag: exit ${run.code} after ${run.ms} ms`);
  assert.equal(run.code, 1);
  assert.equal(requests, 0);
  assert.equal(failure?.kind, 'permanent', run.output.slice(-2000));
  assert.match(failure.summary, /unknown option '--no-such-flag'/);
});

// ------------------------------------------------------------------------------------------------
// The adapter's pure parts.

void test('claude preset: argv from the adapter, the prompt last after --, permissions merged with the defaults', () => {
  assert.equal(adapterFor('claude'), claudeAdapter);
  const ctx = {
    taskFile: '/w/a dir/.pipeline-task/T-1.attempt-1.md',
    taskId: 'T-1',
    worktree: '/w/a dir',
    role: 'tester',
  };
  const r = resolveCommand('claude', ctx, {
    scriptedAgent: 'x',
    permissions: {
      allow: ['Bash(make lint:*)', 'Bash(git push:*)'],
      deny: ['Bash(git commit:*)'],
      extraArgs: ['--model', 'opus'],
    },
  });
  assert.equal(r.argv[0], 'claude');
  assert.ok(!r.argv.includes('--dangerously-skip-permissions'));
  assert.deepEqual(r.argv.slice(-4), ['--model', 'opus', '--', r.argv.at(-1)]);
  assert.ok(r.argv.at(-1)!.includes(ctx.taskFile), 'the prompt names the task file in one argument');
  const settings = JSON.parse(r.argv[r.argv.indexOf('--settings') + 1]!) as {
    permissions: { allow: string[]; deny: string[] };
  };
  assert.ok(settings.permissions.allow.includes('Bash(git add:*)'));
  assert.ok(settings.permissions.allow.includes('Bash(make lint:*)'));
  assert.ok(!settings.permissions.allow.includes('Bash(git commit:*)'), 'a denied default is not allowed');
  assert.ok(settings.permissions.deny.includes('Bash(git commit:*)'));
  assert.ok(!settings.permissions.deny.includes('Bash(git push:*)'), 'an allowed default deny is lifted');
  assert.equal(r.env.PIPELINE_TASK_FILE, ctx.taskFile);
});

void test('parseResetTime: the forms Claude Code prints, placed in their zone, the next one to come', () => {
  const now = Date.UTC(2026, 11, 1, 13, 40); // 1 Dec 2026, 13:40 UTC (14:40 in Berlin)
  assert.equal(
    parseResetTime("You've hit your 5-hour limit · resets 3:33pm (UTC)", now),
    Date.UTC(2026, 11, 1, 15, 33),
  );
  assert.equal(parseResetTime("You've hit your limit · resets 4pm (Europe/Berlin)", now), Date.UTC(2026, 11, 1, 15, 0));
  assert.equal(
    parseResetTime("You've hit your limit · resets 1pm (UTC)", now),
    Date.UTC(2026, 11, 2, 13, 0),
    'a time already past today is tomorrow',
  );
  assert.equal(
    parseResetTime("You've hit your weekly limit · resets Dec 4, 3pm (Europe/Berlin)", now),
    Date.UTC(2026, 11, 4, 14, 0),
  );
  assert.equal(parseResetTime('resets Jan 2, 12am (UTC)', now), Date.UTC(2027, 0, 2, 0, 0), 'next year');
  assert.equal(parseResetTime('resets 12pm (America/New_York)', Date.UTC(2026, 6, 1, 10)), Date.UTC(2026, 6, 1, 16));
  assert.equal(parseResetTime('Limit resets at 2031-01-15T17:30:00.000Z.', now), Date.UTC(2031, 0, 15, 17, 30));
  assert.equal(parseResetTime('Claude AI usage limit reached|1796137200', now), 1796137200_000);
  assert.equal(parseResetTime('resets 3pm (Mars/Olympus)', now), undefined, 'an unknown zone');
  assert.equal(parseResetTime('API Error: Request rejected (429) · try later', now), undefined);
});

void test('claude classify: words inside stream-json events, a tail cut mid-line, and an exit 0 that is no failure', () => {
  const result = JSON.stringify({
    type: 'result',
    is_error: true,
    api_error_status: 500,
    result: 'API Error: 500 Internal server error.',
  });
  const cut = `ult":"Not logged in · Please run /login","type":"result"}\n`;
  assert.deepEqual(claudeMessages(`{"type":"system"}\n${result}\n`), ['API Error: 500 Internal server error.']);
  assert.deepEqual(claudeMessages(cut), [], 'a string cut at its start is not read');
  assert.deepEqual(claudeMessages(`x,"result":"Not logged in · Please run /login","type":"result"}`), [
    'Not logged in · Please run /login',
  ]);
  assert.equal(claudeAdapter.classify({ code: 1, signal: null }, result)?.kind, 'transient');
  assert.equal(claudeAdapter.classify({ code: 0, signal: null }, result), null);
  assert.deepEqual(claudeAdapter.classify({ code: 1, signal: null }, 'API Error: 529 Overloaded.\n'), {
    kind: 'transient',
    summary: 'API Error: 529 Overloaded.',
  });
  assert.equal(
    claudeAdapter.classify({ code: 1, signal: null }, 'Invalid API key · Fix external API key')?.kind,
    'permanent',
  );
  assert.equal(claudeAdapter.classify({ code: 1, signal: null }, 'Credit balance is too low')?.kind, 'permanent');
  assert.equal(claudeAdapter.classify({ code: 1, signal: null }, 'something else entirely'), null);
  const said = (text: string, apiError: boolean) =>
    JSON.stringify({
      type: 'assistant',
      message: { content: [{ type: 'text', text }] },
      ...(apiError ? { is_api_error_message: true } : {}),
    });
  assert.equal(
    claudeAdapter.classify({ code: 1, signal: null }, said('The API was overloaded, so I waited.', false)),
    null,
    "the model's own words are not the CLI's",
  );
  assert.deepEqual(claudeAdapter.classify({ code: 1, signal: null }, said('API Error: 529 Overloaded.', true)), {
    kind: 'transient',
    summary: 'API Error: 529 Overloaded.',
  });
});
