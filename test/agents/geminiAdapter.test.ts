import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyGemini, geminiAdapter, geminiPolicy } from '../../src/engine/agents/cli/geminiAdapter';
import type { AgentInvocationContext } from '../../src/engine/agents/cli/agentCli';

/**
 * The Gemini adapter without the CLI: its argv, its policy file, and classify() on the words Gemini
 * CLI 0.61.0 wrote in gemini.test.ts (copied from those runs), so a change of wording shows here.
 */

const ctx = (permissions: Partial<AgentInvocationContext['permissions']> = {}): AgentInvocationContext => ({
  taskFile: '/w/agent-1/.pipeline-task/TASK-001.attempt-2.md',
  taskId: 'TASK-001',
  worktree: '/w/agent-1',
  role: 'implementer',
  gitWritableDirs: ['/w/repo/.git/worktrees/agent-1', '/w/repo/.git/objects', '/w/repo/.git/refs', '/w/repo/.git/logs'],
  prompt: 'Read the task file /w/agent-1/.pipeline-task/TASK-001.attempt-2.md and do the task.',
  permissions: { allow: [], deny: [], extraArgs: [], ...permissions },
});

test('argv: headless prompt, trusted for this run, edits approved, the run’s policy, stream-json', () => {
  const inv = geminiAdapter.invocation(ctx());
  assert.deepEqual(inv.argv, [
    'gemini',
    '--prompt',
    ctx().prompt,
    '--skip-trust',
    '--approval-mode',
    'auto_edit',
    '--policy',
    '/w/agent-1/.pipeline-task/gemini-policy.toml',
    '--output-format',
    'stream-json',
  ]);
  assert.deepEqual(inv.env, { GEMINI_CLI_NO_RELAUNCH: 'true' });
  assert.deepEqual(
    inv.files?.map((f) => f.path),
    ['/w/agent-1/.pipeline-task/gemini-policy.toml'],
  );
});

test('extra arguments are split into words like a template, quotes kept together', () => {
  const inv = geminiAdapter.invocation(ctx({ extraArgs: ['--model gemini-2.5-pro', '--include-directories "/a b"'] }));
  assert.deepEqual(inv.argv.slice(-4), ['--model', 'gemini-2.5-pro', '--include-directories', '/a b']);
});

test('policy: the shell allowed with redirection, git push and git worktree denied above it', () => {
  const p = geminiPolicy(ctx());
  assert.match(p, /toolName = "run_shell_command"\ndecision = "allow"\npriority = 100\nallowRedirection = true/);
  assert.match(p, /commandPrefix = "git push"\ndecision = "deny"\npriority = 900/);
  assert.match(p, /commandPrefix = "git worktree"\ndecision = "deny"\npriority = 900/);
});

test('policy: allow and deny take tool names and run_shell_command(<prefix>), quoted for TOML', () => {
  const p = geminiPolicy(
    ctx({ allow: ['mcp_docs_*', 'activate_skill'], deny: ['web_fetch', 'run_shell_command(rm "x)'] }),
  );
  assert.match(p, /toolName = "mcp_docs_\*"\ndecision = "allow"\npriority = 200/);
  assert.match(p, /toolName = "activate_skill"\ndecision = "allow"/);
  assert.match(p, /toolName = "web_fetch"\ndecision = "deny"\npriority = 900/);
  assert.match(p, /toolName = "run_shell_command"\ncommandPrefix = "rm \\"x"\ndecision = "deny"/);
});

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const c = (code: number | null, text: string) => classifyGemini({ code, signal: null }, text, NOW);

test('classify: a clean exit or nothing recognised is not a failure kind', () => {
  assert.equal(c(0, 'Done.'), null);
  assert.equal(c(1, 'something odd happened'), null);
});

test('classify: no key, an untrusted folder, a refused key, a bad flag, an unknown model: permanent', () => {
  const noKey = c(
    41,
    'When using Gemini API, you must specify the GEMINI_API_KEY environment variable.\nUpdate your environment and try again (no reload needed if using .env)!',
  );
  assert.deepEqual(noKey, {
    kind: 'permanent',
    summary: 'When using Gemini API, you must specify the GEMINI_API_KEY environment variable.',
  });
  const untrusted = c(
    55,
    'Gemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, …',
  );
  assert.equal(untrusted?.kind, 'permanent');
  assert.match(untrusted.summary, /trusted directory/);
  const result401 =
    '{"type":"result","timestamp":"2026-12-01T13:37:04.063Z","status":"error","error":{"type":"unknown","message":"[API Error: {\\"error\\":{\\"code\\":401,\\"message\\":\\"Request had invalid authentication credentials.\\",\\"status\\":\\"UNAUTHENTICATED\\"}}]"},"stats":{}}';
  assert.deepEqual(c(145, result401), {
    kind: 'permanent',
    summary: 'Request had invalid authentication credentials.',
  });
  // Only the stderr line, no result event (a tail cut short): the API's JSON still names the cause.
  const stderr400 =
    'Error when talking to Gemini API Full report available at: /tmp/x.json _ApiError: {"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}\n  status: 400\n}';
  assert.deepEqual(c(144, stderr400), {
    kind: 'permanent',
    summary: 'API key not valid. Please pass a valid API key.',
  });
  assert.equal(c(1, 'Unknown argument: bogus\nUsage: gemini [options] [command]\n')?.kind, 'permanent');
  assert.equal(
    c(1, '      --screen-reader  Enable …  [boolean]\n  -h, --help  Show help  [boolean]')?.kind,
    'permanent',
  );
  assert.equal(
    c(
      148,
      '{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}',
    )?.kind,
    'permanent',
  );
});

test('classify: a server error or a dead connection: transient', () => {
  const r500 =
    '{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: {\\"error\\":{\\"code\\":500,\\"message\\":\\"An internal error has occurred.\\",\\"status\\":\\"INTERNAL\\"}}]"}}';
  assert.deepEqual(c(244, r500), { kind: 'transient', summary: 'An internal error has occurred.' });
  assert.deepEqual(
    c(
      1,
      '{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: exception TypeError: fetch failed sending request]"}}',
    ),
    { kind: 'transient', summary: 'exception TypeError: fetch failed sending request' },
  );
  assert.equal(c(247, 'Attempt 10 failed with status 503.')?.kind, 'transient');
});

test('classify: quota and rate limits: limit, with the reset the API gave', () => {
  const daily = [
    '{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: You have exhausted your daily quota on this model.]\\nPlease wait and try again later."}}',
    "TerminalQuotaError: You have exhausted your daily quota on this model.\n  cause: {\n    code: 429,\n    message: 'You exceeded your current quota, please check your plan and billing details.\\n' +\n      'Please retry in 3600s.',",
  ].join('\n');
  assert.deepEqual(c(173, daily), {
    kind: 'limit',
    summary: 'You have exhausted your daily quota on this model.',
    resetAt: NOW + 3600_000,
  });
  const suggested =
    '{"type":"result","status":"error","error":{"type":"unknown","message":"[API Error: Resource has been exhausted (e.g. check quota).\\nSuggested retry after 34.5s.]"}}';
  assert.deepEqual(c(173, suggested), {
    kind: 'limit',
    summary: 'Resource has been exhausted (e.g. check quota).',
    resetAt: NOW + 34_500,
  });
  assert.deepEqual(c(173, '"retryDelay": "900ms"'), {
    kind: 'limit',
    summary: '"retryDelay": "900ms"',
    resetAt: NOW + 900,
  });
  // A 429 with nothing about when: a limit without a reset; the monitor picks the pause.
  const plain = c(173, 'Attempt 10 failed: Resource has been exhausted (e.g. check quota).');
  assert.equal(plain?.kind, 'limit');
  assert.equal(plain.resetAt, undefined);
});

test('the adapter describes itself for agent add, the README and pipeline doctor', () => {
  assert.equal(geminiAdapter.name, 'gemini');
  assert.equal(geminiAdapter.binary, 'gemini');
  assert.deepEqual(geminiAdapter.versionArgs, ['--version']);
  assert.ok(geminiAdapter.credentialEnv.includes('GEMINI_API_KEY'));
  assert.match(geminiAdapter.permissionsSummary, /git push/);
});
