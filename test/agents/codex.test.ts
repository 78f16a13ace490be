import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AgentInvocationContext, AgentPermissions } from '../../src/engine/agents/cli/agentCli';
import { codexAdapter, codexResumeInvocation, readCodexStream } from '../../src/engine/agents/cli/codexAdapter';
import { findMarker } from '../../src/engine/agents/completionMarker';
import { TASK_DIR, renderTaskFile, taskFileName } from '../../src/engine/agents/taskFile';
import {
  type CliRun,
  type TempRepo,
  agentCliPath,
  codexEnv,
  git,
  nonTmpParent,
  runCli,
  tempRepo,
  writeCodexConfig,
} from '../support/codexKit';
import { startOpenAIServer } from '../support/modelServers/openaiServer';
import type { ModelServer, ScriptedModel } from '../support/modelServers/scriptedModel';
import { stageModel } from '../support/modelServers/stageModel';
import { parseRun } from '../support/streamKit';
import { newTask } from '../support/taskFixtures';

/**
 * Codex CLI (the real, pinned binary) as a pipeline agent, against our local Responses API server:
 * one stage end to end inside Codex's workspace-write sandbox (read the task file, write the work,
 * run the project's test command, commit, append the marker), in a repository under /tmp and in one
 * outside it; and the adapter's reading of the CLI's real failures.
 */

const FIXTURE = join(__dirname, 'fixtures', 'codex-stream.jsonl');

const PROMPT = (taskFile: string): string =>
  `Read the task file ${taskFile} and do the task it describes, in this directory. When you are done, append the status line it asks for to that file.`;

const NO_PERMISSIONS: AgentPermissions = { allow: [], deny: [], extraArgs: [] };

/** The project's test command: passes once the tester's work file exists. */
const CHECK = 'test -s work/TASK-001/test.md && echo "1 test passed"';

async function writeTaskFile(r: TempRepo): Promise<string> {
  const file = join(r.worktree, TASK_DIR, taskFileName('TASK-001', 1));
  await mkdir(join(r.worktree, TASK_DIR), { recursive: true });
  const task = newTask('TASK-001', 1, {
    title: 'Parse the config file',
    stage: 'test',
    status: 'working',
    assigned_to: 'agent-1',
    attempt: 1,
  });
  await writeFile(
    file,
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
  return file;
}

function contextOf(r: TempRepo, taskFile: string, permissions = NO_PERMISSIONS): AgentInvocationContext {
  return {
    taskFile,
    taskId: 'TASK-001',
    worktree: r.worktree,
    role: 'tester',
    gitWritableDirs: r.gitWritableDirs,
    prompt: PROMPT(taskFile),
    permissions,
  };
}

interface Stage {
  repo: TempRepo;
  server: ModelServer;
  taskFile: string;
  run: CliRun;
}

/** Runs Codex as the adapter says, for one stage, against a fresh repository and server. */
async function runStage(
  parent: string | undefined,
  model: ScriptedModel,
  opts: {
    permissions?: AgentPermissions;
    key?: string | null;
    retries?: number;
    /** Nothing listens at the server's address: it is closed before Codex starts. */
    refused?: boolean;
    stopWhen?: RegExp;
    /** Changes the git dirs the engine would give the adapter. */
    gitDirs?: (dirs: string[]) => string[];
  } = {},
): Promise<Stage> {
  // Fails at once when the CLI is missing, before a server would keep the file running.
  const codex = agentCliPath('codex');
  const made = await tempRepo(parent === undefined ? {} : { parent });
  const repo = opts.gitDirs ? { ...made, gitWritableDirs: opts.gitDirs(made.gitWritableDirs) } : made;
  const server = await startOpenAIServer(model);
  if (opts.refused) await server.close();
  await writeCodexConfig(repo.home, {
    serverUrl: server.url,
    requestMaxRetries: opts.retries ?? 0,
    streamMaxRetries: opts.retries ?? 0,
  });
  const taskFile = await writeTaskFile(repo);
  const inv = codexAdapter.invocation(contextOf(repo, taskFile, opts.permissions));
  assert.equal(inv.argv[0], 'codex');
  const run = await runCli([codex, ...inv.argv.slice(1)], {
    cwd: repo.worktree,
    env: { ...codexEnv(repo.home, opts.key === undefined ? 'sk-local-test' : opts.key), ...inv.env },
    ...(opts.stopWhen ? { stopWhen: opts.stopWhen } : {}),
  });
  return { repo, server, taskFile, run };
}

interface StreamEvent {
  type: string;
  thread_id?: string;
  item?: { type: string; command?: string; exit_code?: number | null; aggregated_output?: string; text?: string };
  usage?: Record<string, number>;
}

function eventsOf(stdout: string): StreamEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as StreamEvent);
}

function describeRun(run: CliRun): string {
  return `exit ${run.code} ${run.signal ?? ''} after ${run.ms} ms\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});
function keep(s: Stage): Stage {
  cleanups.push(
    () => s.server.close(),
    () => s.repo.cleanup(),
  );
  return s;
}

for (const where of ['/tmp', 'outside /tmp'] as const) {
  describe(`one stage in a repository ${where === '/tmp' ? 'under /tmp' : 'outside /tmp'}`, () => {
    let parent: string | undefined;
    before(async () => {
      parent = where === '/tmp' ? undefined : await nonTmpParent();
    });

    void test('reads the task file, writes, tests, commits inside the sandbox and appends the marker', async () => {
      const usage = { input: 1200, output: 80, cacheRead: 400 };
      const s = keep(await runStage(parent, stageModel({ testCommand: CHECK, usage })));
      const { run, repo, server, taskFile } = s;
      if (where === '/tmp') assert.ok(repo.root.startsWith('/tmp/'), repo.root);
      else assert.ok(!repo.root.startsWith('/tmp/'), repo.root);
      assert.equal(run.code, 0, describeRun(run));

      // The agent's work is committed on the task branch, by the agent, inside the sandbox.
      assert.equal((await git(repo.worktree, ['branch', '--show-current'])).trim(), 'pipeline/TASK-001');
      const log = (await git(repo.worktree, ['log', '--format=%s', 'main..HEAD'])).trim();
      assert.equal(log, "TASK-001 test: tester's work");
      assert.match(await git(repo.worktree, ['show', 'HEAD:work/TASK-001/test.md']), /Work of the tester, attempt 1/);
      assert.equal((await git(repo.worktree, ['status', '--porcelain'])).trim(), '', 'nothing left uncommitted');
      assert.deepEqual(findMarker(await readFile(taskFile, 'utf8')), { kind: 'completed' });

      // What the CLI sent back to the model: the task file, then each command's output.
      const last = server.requests.at(-1)!;
      assert.equal(server.requests.length, 6, 'read, write, test, commit, marker, final answer');
      assert.equal(last.prompt, PROMPT(taskFile));
      const [read, write, check, commit, marker] = last.toolResults;
      assert.match(read!, /<!-- pipeline: task=TASK-001 stage=test role=tester attempt=1 /);
      assert.match(write!, /Process exited with code 0/);
      assert.match(check!, /Process exited with code 0[\s\S]*1 test passed/);
      assert.match(commit!, /Process exited with code 0/);
      assert.doesNotMatch(commit!, /Read-only file system|fatal:/);
      assert.match(marker!, /Process exited with code 0/);

      // The JSON stream: the thread id for `codex exec resume`, each command, the turn's usage.
      const events = eventsOf(run.stdout);
      const facts = readCodexStream(run.stdout);
      assert.match(facts.threadId ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(facts.lastMessage, 'Done.');
      // Codex adds up the turn's six responses; input counts the cached tokens too (OpenAI's way).
      assert.deepEqual(facts.usage, { input: 6 * 1600, cachedInput: 6 * 400, output: 6 * 80, reasoningOutput: 0 });

      // What the monitor makes of it: each command as it starts, in order; the tokens with the cached
      // part apart (input without it), priced from the config (Codex reports no cost), the thread id.
      const prices = { 'local-*': { inputPerMTok: 2, outputPerMTok: 8, cacheReadPerMTok: 0.5 } };
      // The stream never names the model: the monitor takes it from Codex's config.toml, as here.
      const model = await codexAdapter.configuredModel?.(codexEnv(repo.home, 'sk-local-test'));
      assert.equal(model, 'local-test-model');
      const argv = codexAdapter.invocation(contextOf(repo, taskFile)).argv;
      const parsed = parseRun(
        codexAdapter,
        run.stdout + run.stderr,
        { worktree: repo.worktree, argv, model },
        { prices },
      );
      assert.equal(parsed.steps.length, 5, parsed.steps.join('\n'));
      assert.ok(parsed.steps.every((x) => x.startsWith('Bash: ')));
      assert.equal(parsed.steps[0], "Bash: cat '.pipeline-task/TASK-001.attempt-1.md'");
      assert.equal(parsed.steps[2], `Bash: ${CHECK}`);
      assert.match(parsed.steps[3]!, /^Bash: git add -A && git commit/);
      assert.deepEqual(parsed.lines[2], `agent-1 TASK-001 (test): Bash: ${CHECK}`);
      assert.equal(parsed.progress.session, facts.threadId);
      assert.equal(parsed.progress.message, 'Done.');
      assert.ok(parsed.final);
      assert.deepEqual(parsed.models, [
        {
          model: 'local-test-model',
          input: 6 * 1200,
          output: 6 * 80,
          cacheRead: 6 * 400,
          cacheWrite: 0,
          costUsd: (6 * 1200 * 2 + 6 * 80 * 8 + 6 * 400 * 0.5) / 1_000_000,
          costSource: 'prices',
        },
      ]);
      assert.equal(parsed.progress.usage?.costUsd, parsed.models[0]!.costUsd);
      const commands = events.filter((e) => e.type === 'item.completed' && e.item?.type === 'command_execution');
      assert.equal(commands.length, 5);
      assert.ok(commands.every((e) => e.item?.exit_code === 0));
      assert.match(commands[3]!.item!.command!, /git add -A && git commit/);
      // The saved sample shows the same kinds of events in the same order.
      const sample = eventsOf(await readFile(FIXTURE, 'utf8'));
      assert.deepEqual(
        events.map((e) => `${e.type}${e.item ? `:${e.item.type}` : ''}`),
        sample.map((e) => `${e.type}${e.item ? `:${e.item.type}` : ''}`),
      );
    });

    void test('the sandbox: git dirs read-only unless added, neighbours writable only under /tmp', async () => {
      // A model that probes the sandbox: a commit with the git dirs withheld (deny "commit"), then a
      // write beside the worktree and one into the main checkout.
      const probe =
        'echo probe > probe.txt && git add probe.txt && git commit -q -m probe; echo "commit=$?"; ' +
        'touch ../neighbour; echo "neighbour=$?"; touch ../../repo/intruder; echo "main-checkout=$?"';
      const model: ScriptedModel = (t) =>
        t.toolResults.length === 0
          ? { action: { kind: 'shell', command: probe } }
          : { action: { kind: 'text', text: 'ok' } };
      const s = keep(await runStage(parent, model, { permissions: { allow: [], deny: ['commit'], extraArgs: [] } }));
      assert.equal(s.run.code, 0, describeRun(s.run));
      const out = s.server.requests.at(-1)!.toolResults[0]!;
      assert.match(out, /\.git\/worktrees\/agent-1\/index\.lock': Read-only file system/);
      assert.match(out, /commit=128/);
      assert.equal((await git(s.repo.worktree, ['log', '--format=%s', 'main..HEAD'])).trim(), '');
      if (where === '/tmp') {
        // /tmp is one of Codex's writable roots: everything under it is, other agents' worktrees too.
        assert.match(out, /neighbour=0/);
        assert.match(out, /main-checkout=0/);
      } else {
        assert.match(out, /neighbour=1/);
        assert.match(out, /main-checkout=1/);
      }
    });
  });
}

/** A model that runs one command and ends; the command's output is the run's first tool result. */
function oneCommand(command: string): ScriptedModel {
  return (t) =>
    t.toolResults.length === 0 ? { action: { kind: 'shell', command } } : { action: { kind: 'text', text: 'ok' } };
}

void test("with the engine's git dirs an agent commits on its task branch but cannot move main", async () => {
  // The engine gives the sandbox the task branches' refs and reflogs (refs/heads/pipeline), not the
  // whole refs/: with all of refs/ writable an agent could move the target branch itself.
  const probe =
    'echo a > a.txt && git add a.txt && git commit -q -m work; echo "commit=$?"; ' +
    'git update-ref refs/heads/main HEAD; echo "move-main=$?"';
  const parent = await nonTmpParent();
  const s = keep(await runStage(parent, oneCommand(probe)));
  assert.deepEqual(s.repo.gitWritableDirs.slice(2), [
    join(s.repo.repo, '.git', 'refs', 'heads', 'pipeline'),
    join(s.repo.repo, '.git', 'logs', 'refs', 'heads', 'pipeline'),
  ]);
  const out = s.server.requests.at(-1)!.toolResults[0]!;
  assert.match(out, /commit=0/);
  assert.match(out, /refs\/heads\/main\.lock': Read-only file system/);
  assert.match(out, /move-main=128/);
  assert.equal((await git(s.repo.worktree, ['log', '--format=%s', 'main..HEAD'])).trim(), 'work');
});

void test('deny "tmp" closes /tmp to a worktree under it; the worktree itself stays writable', async () => {
  const s = keep(
    await runStage(undefined, oneCommand('touch inside; echo "inside=$?"; touch ../neighbour; echo "neighbour=$?"'), {
      permissions: { allow: [], deny: ['tmp'], extraArgs: [] },
    }),
  );
  assert.equal(s.run.code, 0, describeRun(s.run));
  const out = s.server.requests.at(-1)!.toolResults[0]!;
  assert.match(out, /inside=0/);
  // stderr and stdout share the command's output, in no fixed order.
  assert.match(out, /neighbour': Read-only file system/);
  assert.match(out, /neighbour=1/);
});

void test('the network: refused in the sandbox by default, open with allow "network"', async () => {
  const listener = createServer((socket) => socket.end());
  await new Promise<void>((ok) => listener.listen(0, '127.0.0.1', ok));
  cleanups.push(() => new Promise<void>((ok) => listener.close(() => ok())));
  const port = (listener.address() as AddressInfo).port;
  const probe = `node -e 'require("net").connect(${port}, "127.0.0.1").on("connect", () => { console.log("connected"); process.exit(0) }).on("error", (e) => { console.log(e.code); process.exit(1) })'`;
  const closed = keep(await runStage(undefined, oneCommand(probe)));
  assert.match(closed.server.requests.at(-1)!.toolResults[0]!, /Process exited with code 1[\s\S]*EPERM/);
  const open = keep(
    await runStage(undefined, oneCommand(probe), { permissions: { allow: ['network'], deny: [], extraArgs: [] } }),
  );
  assert.match(open.server.requests.at(-1)!.toolResults[0]!, /Process exited with code 0[\s\S]*connected/);
});

void test('codex exec resume continues the thread, in the same sandbox, from the id in the stream', async () => {
  // The first run edits; the resumed one commits. The model sees the whole conversation again.
  let resumed = false;
  const model: ScriptedModel = (t) => {
    if (!resumed)
      return t.toolResults.length === 0
        ? { action: { kind: 'shell', command: 'echo first > first.txt' } }
        : { action: { kind: 'text', text: 'Edited.' } };
    return t.toolResults.length === 1
      ? { action: { kind: 'shell', command: 'git add -A && git commit -q -m resumed && echo committed' } }
      : { action: { kind: 'text', text: 'Committed.' } };
  };
  const s = keep(await runStage(undefined, model));
  assert.equal(s.run.code, 0, describeRun(s.run));
  const first = readCodexStream(s.run.stdout);
  assert.ok(first.threadId);
  resumed = true;
  const ctx = { ...contextOf(s.repo, s.taskFile), prompt: 'Now commit it.' };
  const inv = codexResumeInvocation(ctx, first.threadId);
  const run = await runCli([agentCliPath('codex'), ...inv.argv.slice(1)], {
    cwd: s.repo.worktree,
    env: { ...codexEnv(s.repo.home, 'sk-local-test'), ...inv.env },
  });
  assert.equal(run.code, 0, describeRun(run));
  const second = readCodexStream(run.stdout);
  assert.equal(second.threadId, first.threadId);
  assert.equal(second.lastMessage, 'Committed.');
  assert.equal((await git(s.repo.worktree, ['log', '--format=%s', 'main..HEAD'])).trim(), 'resumed');
  const last = s.server.requests.at(-1)!;
  assert.equal(last.prompt, PROMPT(s.taskFile), 'the first prompt is still the first user message');
  assert.equal(last.toolResults.length, 2);
  assert.match(last.toolResults[1]!, /committed/);
  // The usage of a resumed thread is the whole thread's: both runs' four responses.
  assert.deepEqual(second.usage, { input: 4 * 100, cachedInput: 0, output: 4 * 20, reasoningOutput: 0 });
  // The attempt's own share is what the thread grew by in this run: its two responses.
  const argv = inv.argv;
  const before = parseRun(codexAdapter, s.run.stdout, { worktree: s.repo.worktree, argv, model: 'm' });
  const share = parseRun(
    codexAdapter,
    run.stdout,
    { worktree: s.repo.worktree, argv, model: 'm' },
    { threadBefore: before.models },
  );
  assert.deepEqual(
    share.models.map((m) => [m.model, m.input, m.output]),
    [['m', 2 * 100, 2 * 20]],
  );
  assert.deepEqual(share.steps, ['Bash: git add -A && git commit -q -m resumed && echo committed']);
});

describe("the adapter's reading of Codex's real failures", () => {
  const errorModel =
    (status: number, body: unknown, headers?: Record<string, string>): ScriptedModel =>
    () => ({ action: headers ? { kind: 'error', status, body, headers } : { kind: 'error', status, body } });

  void test('a rejected key (401) is permanent', async () => {
    const s = keep(
      await runStage(
        undefined,
        errorModel(401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } }),
      ),
    );
    assert.equal(s.run.code, 1, describeRun(s.run));
    const f = codexAdapter.classify(s.run, s.run.stdout + s.run.stderr);
    assert.equal(f?.kind, 'permanent', JSON.stringify(f));
    assert.match(f.summary, /unexpected status 401 Unauthorized: Incorrect API key provided/);
  });

  void test('no key at all is permanent, before any request', async () => {
    const s = keep(await runStage(undefined, errorModel(500, {}), { key: null }));
    assert.equal(s.run.code, 1, describeRun(s.run));
    assert.equal(s.server.requests.length, 0);
    const f = codexAdapter.classify(s.run, s.run.stdout + s.run.stderr);
    assert.deepEqual(f, { kind: 'permanent', summary: 'Missing environment variable: `PIPELINE_TEST_OPENAI_KEY`.' });
  });

  void test("server errors (500) are transient, after Codex's own retries", async () => {
    // One request retry and one stream retry: Codex sends 2 × 2 requests before it gives up.
    const s = keep(
      await runStage(undefined, errorModel(500, { error: { message: 'boom', type: 'server_error' } }), { retries: 1 }),
    );
    assert.equal(s.run.code, 1, describeRun(s.run));
    assert.equal(s.server.requests.length, 4);
    assert.match(s.run.stdout, /Reconnecting\.\.\. 1\/1/);
    const f = codexAdapter.classify(s.run, s.run.stdout + s.run.stderr);
    assert.equal(f?.kind, 'transient', JSON.stringify(f));
    assert.match(f.summary, /currently experiencing high demand/);
  });

  void test('a usage limit (429 usage_limit_reached) is a limit with its reset time', async () => {
    for (const inSeconds of [2 * 3600, 3 * 86400]) {
      const resetsAt = Math.floor(Date.now() / 1000) + inSeconds;
      const s = keep(
        await runStage(
          undefined,
          errorModel(429, {
            error: { type: 'usage_limit_reached', message: 'The usage limit has been reached', resets_at: resetsAt },
          }),
        ),
      );
      assert.equal(s.run.code, 1, describeRun(s.run));
      assert.equal(s.server.requests.length, 1, 'a usage limit is not retried');
      const f = codexAdapter.classify(s.run, s.run.stdout + s.run.stderr);
      assert.equal(f?.kind, 'limit', JSON.stringify(f));
      assert.match(f.summary, /hit your usage limit\. Try again at /);
      // Codex prints the local time to the minute; the adapter rounds up to the next minute.
      assert.ok(f.resetAt !== undefined, f.summary);
      assert.ok(Math.abs(f.resetAt - resetsAt * 1000) <= 60_000, `${new Date(f.resetAt).toString()} for ${f.summary}`);
    }
  });

  void test('a rate limit (a plain 429) is a limit without a reset time', async () => {
    const s = keep(
      await runStage(
        undefined,
        errorModel(
          429,
          { error: { message: 'Rate limit reached', type: 'rate_limit_exceeded' } },
          { 'retry-after': '1' },
        ),
      ),
    );
    assert.equal(s.run.code, 1, describeRun(s.run));
    const f = codexAdapter.classify(s.run, s.run.stdout + s.run.stderr);
    assert.deepEqual(f, { kind: 'limit', summary: 'exceeded retry limit, last status: 429 Too Many Requests' });
  });

  void test('nothing listening: Codex waits for the network; stopped, the run is transient', async () => {
    // Codex retries a refused connection without end ("Reconnecting... waiting for network"),
    // whatever its retry settings: only the pipeline's stage timeout ends such a run.
    const s = keep(await runStage(undefined, errorModel(500, {}), { refused: true, stopWhen: /waiting for network/ }));
    assert.equal(s.run.signal, 'SIGTERM', describeRun(s.run));
    const f = codexAdapter.classify(s.run, s.run.stdout + s.run.stderr);
    assert.equal(f?.kind, 'transient', JSON.stringify(f));
    assert.match(f.summary, /Reconnecting\.\.\. waiting for network \(Connection failed: error sending request/);
  });

  void test('--full-auto (gone in 0.171.0) is permanent', async () => {
    const s = keep(
      await runStage(undefined, errorModel(500, {}), {
        permissions: { allow: [], deny: [], extraArgs: ['--full-auto'] },
      }),
    );
    assert.equal(s.run.code, 2, describeRun(s.run));
    assert.equal(s.server.requests.length, 0);
    const f = codexAdapter.classify(s.run, s.run.stdout + s.run.stderr);
    assert.deepEqual(f, { kind: 'permanent', summary: "error: unexpected argument '--full-auto' found" });
  });
});
