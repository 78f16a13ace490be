import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { geminiAdapter } from '../../src/engine/agents/cli/geminiAdapter';
import { findMarker } from '../../src/engine/agents/completionMarker';
import { startGeminiServer } from '../support/modelServers/geminiServer';
import { stageModel, stageWorkFile } from '../support/modelServers/stageModel';
import { parseRun } from '../support/streamKit';
import { always, geminiInstalled, gitIn, playGemini, SAMPLE_TEST_COMMAND, streamEvents } from '../support/geminiKit';

/**
 * The real Gemini CLI (the pinned 0.61.0 in .agent-clis/) against our local Gemini API server, with
 * the Gemini adapter's own argv: one pipeline stage end to end. The other files named gemini*.test.ts
 * run it for its policy, its sessions, its failures and its limits: each start of the CLI costs about
 * 3 s of CPU, and a file must finish within the runner's two minutes on a busy machine.
 */

const skip = geminiInstalled() ? false : 'the pinned Gemini CLI is not installed: node scripts/agentClis/install.mjs';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('Gemini CLI 0.61.0 runs a pipeline stage', { skip }, () => {
  test('one stage end to end: reads the task file, writes, tests, commits, appends the marker', async () => {
    const usage = { input: 1000, output: 50, cacheRead: 200 };
    const { sb, server, run, ctx, turns, close } = await playGemini(
      stageModel({ testCommand: SAMPLE_TEST_COMMAND, usage }),
    );
    closers.push(close);
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
    assert.match(JSON.stringify(server.requests[0]!.action), /complexity_score/);
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

    // What the monitor makes of it: each tool call in order, paths within the worktree, the session
    // to resume, and the tokens per model (the router's too) with the cached part apart from the
    // input (Google counts it in the prompt), priced from the config (the CLI reports no cost).
    const prices = { '*': { inputPerMTok: 1, outputPerMTok: 4, cacheReadPerMTok: 0.25 } };
    const argv = geminiAdapter.invocation(ctx).argv;
    const parsed = parseRun(
      geminiAdapter,
      run.stdout + run.stderr,
      { worktree: sb.worktree, argv },
      { prices, stage: 'implementation' },
    );
    const rel = relative(sb.worktree, sb.taskFile);
    assert.deepEqual(parsed.steps, [
      `Read ${rel}`,
      `Write ${work}`,
      `Bash: ${SAMPLE_TEST_COMMAND}`,
      `Bash: git add -A && git commit -q -m "TASK-001 implementation: implementer's work"`,
      `Bash: printf '\\n%s\\n' '## Status: COMPLETED ✅' >> '${rel}'`,
    ]);
    assert.equal(parsed.lines[0], `agent-1 TASK-001 (implementation): Read ${rel}`);
    assert.equal(parsed.progress.session, init?.['session_id']);
    assert.ok(parsed.final);
    const n = server.requests.length;
    const sum = (k: 'input' | 'output' | 'cacheRead') => parsed.models.reduce((acc, m) => acc + m[k], 0);
    assert.deepEqual(
      [sum('input'), sum('output'), sum('cacheRead')],
      [(usage.input - usage.cacheRead) * n, usage.output * n, usage.cacheRead * n],
    );
    const main = parsed.models.find((m) => m.model === turns[0]!.model);
    assert.equal(main?.output, usage.output * turns.length, JSON.stringify(parsed.models));
    assert.ok(parsed.models.every((m) => m.costSource === 'prices'));
    const cost = ((usage.input - usage.cacheRead) * n * 1 + usage.output * n * 4 + usage.cacheRead * n * 0.25) / 1e6;
    assert.ok(Math.abs(parsed.progress.usage!.costUsd - cost) < 1e-12, `${parsed.progress.usage!.costUsd} vs ${cost}`);

    // The saved sample (fixtures/gemini-stream.jsonl, a run of 0.61.0 with a denied `git push`) still
    // has the shape of what the CLI writes: the same fields on each kind of event.
    const sample = streamEvents(await readFile(join(__dirname, 'fixtures', 'gemini-stream.jsonl'), 'utf8'));
    const shape = (evs: Record<string, unknown>[]) => {
      const kinds = new Map<string, Set<string>>();
      for (const e of evs) {
        const sub = e['status'] ?? e['role'];
        const kind = `${String(e['type'])}/${typeof sub === 'string' ? sub : ''}`;
        const keys = kinds.get(kind) ?? new Set<string>();
        for (const k of Object.keys(e)) keys.add(k);
        kinds.set(kind, keys);
      }
      return new Map([...kinds].map(([k, v]) => [k, [...v].sort()]));
    };
    const live = shape(events);
    for (const [kind, keys] of shape(sample)) if (live.has(kind)) assert.deepEqual(live.get(kind), keys, kind);
    assert.deepEqual([...live.keys()].sort(), [
      'init/',
      'message/assistant',
      'message/user',
      'result/success',
      'tool_result/success',
      'tool_use/',
    ]);
  });
});

describe('the local Gemini server', () => {
  test('answers a call it does not serve with 404 in Google’s shape, and records it', async () => {
    const server = await startGeminiServer(always({ kind: 'text', text: 'unused' }));
    closers.push(() => server.close());
    const res = await fetch(`${server.url}/v1beta/models`, { method: 'GET' });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { code: number; status: string } };
    assert.deepEqual([body.error.code, body.error.status], [404, 'NOT_FOUND']);
    assert.equal(server.requests.at(-1)?.path, '/v1beta/models');
  });
});
