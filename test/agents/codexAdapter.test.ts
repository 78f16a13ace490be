import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentInvocationContext } from '../../src/engine/agents/cli/agentCli';
import {
  codexAdapter,
  codexMessages,
  codexResetAt,
  codexResumeInvocation,
  readCodexStream,
} from '../../src/engine/agents/cli/codexAdapter';
import { isPipelineError } from '../../src/engine/errors';

/**
 * The Codex adapter without the CLI: the argv it builds for each permission, the reset times it
 * reads from Codex's words, its reading of cut and mixed output tails. The real CLI's behaviour
 * behind these is checked in codex.test.ts.
 */

const GIT_DIRS = ['/r/.git/worktrees/a1', '/r/.git/objects', '/r/.git/refs', '/r/.git/logs'];

function ctx(permissions: Partial<AgentInvocationContext['permissions']> = {}): AgentInvocationContext {
  return {
    taskFile: '/w/a1/.pipeline-task/TASK-001.attempt-1.md',
    taskId: 'TASK-001',
    worktree: '/w/a1',
    role: 'implementer',
    gitWritableDirs: GIT_DIRS,
    prompt: '-Read the task file /w/a1/.pipeline-task/TASK-001.attempt-1.md',
    permissions: { allow: [], deny: [], extraArgs: [], ...permissions },
  };
}

const ADD_DIRS = GIT_DIRS.flatMap((d) => ['--add-dir', d]);

void test('by default: exec --json in the workspace-write sandbox, the git dirs writable, the prompt after --', () => {
  const inv = codexAdapter.invocation(ctx());
  assert.deepEqual(inv.argv, [
    'codex',
    'exec',
    '--json',
    '--sandbox',
    'workspace-write',
    '--cd',
    '/w/a1',
    ...ADD_DIRS,
    '--',
    '-Read the task file /w/a1/.pipeline-task/TASK-001.attempt-1.md',
  ]);
  assert.deepEqual(inv.env, {});
  assert.ok(!inv.argv.includes('danger-full-access') && !inv.argv.includes('--full-auto'));
});

void test('permissions widen and narrow the sandbox; extra arguments go in before the prompt', () => {
  const wide = codexAdapter.invocation(
    ctx({ allow: ['network', '/opt/cache'], extraArgs: ['-m', 'gpt-5.6', '-c', 'model_reasoning_effort="low"'] }),
  ).argv;
  assert.deepEqual(wide.slice(7), [
    ...ADD_DIRS,
    '--add-dir',
    '/opt/cache',
    '-c',
    'sandbox_workspace_write.network_access=true',
    '-m',
    'gpt-5.6',
    '-c',
    'model_reasoning_effort="low"',
    '--',
    ctx().prompt,
  ]);

  const noCommit = codexAdapter.invocation(ctx({ deny: ['commit', 'tmp'] })).argv;
  assert.ok(!noCommit.includes('--add-dir'), 'no git dir is writable');
  assert.ok(noCommit.includes('sandbox_workspace_write.exclude_slash_tmp=true'));
  assert.ok(noCommit.includes('sandbox_workspace_write.exclude_tmpdir_env_var=true'));

  const readOnly = codexAdapter.invocation(ctx({ deny: ['write'] })).argv;
  assert.deepEqual(readOnly.slice(2, 5), ['--json', '--sandbox', 'read-only']);
  assert.ok(!readOnly.includes('--add-dir'));

  const full = codexAdapter.invocation(ctx({ allow: ['danger-full-access'] })).argv;
  assert.deepEqual(full.slice(3, 5), ['--sandbox', 'danger-full-access']);
  assert.ok(!full.includes('--add-dir'), 'nothing to add where nothing is sandboxed');
});

void test('an unknown permission is refused, naming the config entry and the choices', () => {
  const cases: [Partial<AgentInvocationContext['permissions']>, string][] = [
    [{ allow: ['network', 'relative/dir'] }, 'agentCli.codex.allow[1]'],
    [{ deny: ['push'] }, 'agentCli.codex.deny[0]'],
  ];
  for (const [permissions, where] of cases) {
    assert.throws(
      () => codexAdapter.invocation(ctx(permissions)),
      (e: unknown) =>
        isPipelineError(e) &&
        e.code === 'invalid-config' &&
        e.details.file === '.pipeline/config.json' &&
        e.details.where === where &&
        /Use /.test(e.details.fix ?? ''),
    );
  }
});

void test('resume: the same options before `resume`, then the thread id and the prompt', () => {
  const inv = codexResumeInvocation(ctx(), '01a231eb-491f-7613-97d8-d922dda4e832');
  assert.deepEqual(inv.argv.slice(0, 7), ['codex', 'exec', '--json', '--sandbox', 'workspace-write', '--cd', '/w/a1']);
  assert.deepEqual(inv.argv.slice(-4), ['resume', '--', '01a231eb-491f-7613-97d8-d922dda4e832', ctx().prompt]);
});

void test("reset times: Codex's local times to the minute, rounded up; the apps' relative times", () => {
  const now = new Date(2026, 11, 1, 13, 5, 30).getTime();
  assert.equal(
    codexResetAt('You’ve hit your usage limit. Try again at 4:32 PM.', now),
    new Date(2026, 11, 1, 16, 33).getTime(),
  );
  assert.equal(
    codexResetAt(
      'You’ve hit your usage limit. Visit https://chatgpt.com/settings/usage to purchase more credits or try again at 12:05 AM.',
      now,
    ),
    new Date(2026, 11, 2, 0, 6).getTime(),
    'a time long past today is tomorrow',
  );
  assert.equal(
    codexResetAt("You've hit your usage limit. Try again at Dec 4th, 2026 1:32 PM.", now),
    new Date(2026, 11, 4, 13, 33).getTime(),
  );
  assert.equal(
    codexResetAt('You’ve hit your usage limit. Try again at Jan 1st, 2027 12:00 PM.', now),
    new Date(2027, 0, 1, 12, 1).getTime(),
  );
  assert.equal(
    codexResetAt('send a request to your admin or try again in 3 days 6 hours 57 minutes.', now),
    now + ((3 * 24 + 6) * 60 + 57) * 60_000,
  );
  assert.equal(codexResetAt('You’ve hit your usage limit. Try again later.', now), undefined);
});

void test('classify: the last words decide; retries, warnings and a cut first line are read right', () => {
  const exit1 = { code: 1, signal: null };
  // A tail cut in the middle of an event still gives up its message.
  const cut = 'rror","message":"Reconnecting... 4/5 (unexpected status 401 Unauthorized: bad key)"}\n';
  assert.deepEqual(codexMessages(cut), ['Reconnecting... 4/5 (unexpected status 401 Unauthorized: bad key)']);
  const tail = [
    cut.trim(),
    '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `m` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}}',
    '{"type":"error","message":"unexpected status 401 Unauthorized: bad key, url: http://127.0.0.1:1/v1/responses"}',
    '{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: bad key, url: http://127.0.0.1:1/v1/responses"}}',
    'WARNING: proceeding, even though we could not create PATH aliases',
  ].join('\n');
  assert.equal(codexAdapter.classify(exit1, tail)?.kind, 'permanent');

  const cases: [string, string | null][] = [
    ['{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 502 Bad Gateway"}}', 'transient'],
    ['{"type":"turn.failed","error":{"message":"unexpected status 503 Service Unavailable: down"}}', 'transient'],
    ['{"type":"turn.failed","error":{"message":"stream disconnected before completion: idle timeout"}}', 'transient'],
    ['{"type":"turn.failed","error":{"message":"Quota exceeded. Check your plan and billing details."}}', 'limit'],
    ['{"type":"turn.failed","error":{"message":"unexpected status 404 Not Found: no such model"}}', 'permanent'],
    ['Error loading config.toml:\n/h/.codex/config.toml:1:19: unclosed array, expected `]`', 'permanent'],
    ["error: invalid value 'bogus' for '--sandbox <SANDBOX_MODE>'", 'permanent'],
    ['{"type":"turn.failed","error":{"message":"something nobody has seen before"}}', null],
  ];
  for (const [text, kind] of cases) assert.equal(codexAdapter.classify(exit1, text)?.kind ?? null, kind, text);
  assert.equal(codexAdapter.classify({ code: 0, signal: null }, cases[0]![0]), null, 'a run that succeeded');
});

void test('the JSON stream: the thread id, the last message, the usage (the saved real sample)', () => {
  const facts = readCodexStream(readFileSync(join(__dirname, 'fixtures', 'codex-stream.jsonl'), 'utf8'));
  assert.deepEqual(facts, {
    threadId: '01a231df-e52c-7781-9df5-12b3b379853f',
    lastMessage: 'Done.',
    usage: { input: 9600, cachedInput: 2400, output: 480, reasoningOutput: 0 },
  });
  assert.deepEqual(readCodexStream('not json\n{"type":"turn.started"}\n{broken'), {
    threadId: null,
    usage: null,
    lastMessage: null,
  });
});
