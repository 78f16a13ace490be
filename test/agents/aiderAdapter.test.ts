import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aiderAdapter, classifyAider } from '../../src/engine/agents/cli/aiderAdapter';
import type { AgentInvocationContext } from '../../src/engine/agents/cli/agentCli';

/**
 * The Aider adapter. No test here runs the real Aider: it is a PyPI package and this machine reaches
 * only the npm registry and Debian's packages. The texts below are Aider's and litellm's own words,
 * taken from Aider's source (aider/exceptions.py, onboarding.py, args.py) and its issue tracker.
 */

const ctx = (extraArgs: string[] = []): AgentInvocationContext => ({
  taskFile: '/w/agent-1/.pipeline-task/TASK-001.attempt-2.md',
  taskId: 'TASK-001',
  worktree: '/w/agent-1',
  role: 'implementer',
  gitWritableDirs: [],
  prompt: 'Read the task file /w/agent-1/.pipeline-task/TASK-001.attempt-2.md and do the task.',
  permissions: { allow: [], deny: [], extraArgs },
});

test('argv: one message, the git-excluded task file editable in its chat, no commits, nothing asked', () => {
  const inv = aiderAdapter.invocation(ctx());
  assert.deepEqual(inv.argv, [
    'aider',
    '--message',
    ctx().prompt,
    '--file',
    '/w/agent-1/.pipeline-task/TASK-001.attempt-2.md',
    '--add-gitignore-files',
    '--yes-always',
    '--no-auto-commits',
    '--no-dirty-commits',
    '--no-gitignore',
    '--no-suggest-shell-commands',
    '--no-check-update',
    '--no-show-release-notes',
    '--no-analytics',
    '--no-pretty',
    '--chat-history-file',
    '/w/agent-1/.pipeline-task/aider.chat.history.md',
    '--input-history-file',
    '/w/agent-1/.pipeline-task/aider.input.history',
  ]);
  assert.ok(!inv.argv.includes('--read'), 'a read-only task file could not take the marker');
});

test('its repository-map cache folders ignore themselves, so the stage commit leaves them out', () => {
  const files = aiderAdapter.invocation(ctx()).files ?? [];
  assert.deepEqual(
    files.map((f) => f.path),
    ['/w/agent-1/.aider.tags.cache.v3/.gitignore', '/w/agent-1/.aider.tags.cache.v4/.gitignore'],
  );
  assert.ok(files.every((f) => f.content.split('\n').includes('*')));
});

test('extra arguments come last, split into words', () => {
  const argv = aiderAdapter.invocation(ctx(['--model sonnet', '--test-cmd "npm test" --auto-test'])).argv;
  assert.deepEqual(argv.slice(-5), ['--model', 'sonnet', '--test-cmd', 'npm test', '--auto-test']);
});

const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);
const c = (text: string, code: number | null = 0) => classifyAider({ code, signal: null }, text, NOW);

test('a missing or refused key: permanent, even though Aider exits 0', () => {
  const missing = [
    'Warning: gpt-4o expects these environment variables',
    '- OPENAI_API_KEY: Not set',
    'litellm.AuthenticationError: AuthenticationError: OpenAIException - The api_key client option must be set either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable',
    'The API provider is not able to authenticate you. Check your API key.',
  ].join('\n');
  assert.deepEqual(c(missing), {
    kind: 'permanent',
    summary: 'The API provider is not able to authenticate you. Check your API key.',
  });
  const anthropic =
    'litellm.AuthenticationError: AnthropicException - {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}';
  assert.equal(c(anthropic)?.kind, 'permanent');
  const noModel = [
    'No LLM model was specified and no API keys were provided.',
    'OpenRouter provides free and paid access to many LLMs.',
    'OpenRouter authentication did not complete successfully.',
  ].join('\n');
  const f = c(noModel, 1);
  assert.equal(f?.kind, 'permanent');
  assert.match(f.summary, /OpenRouter authentication did not complete.*--model/);
});

test('rate limits: limit, with the reset the provider named', () => {
  const openai = [
    'litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29500, Requested 1200. Please try again in 1m30s. Visit https://platform.openai.com/account/rate-limits to learn more.',
    'The API provider has rate limited you. Try again later or check your quotas.',
    'Retrying in 32.0 seconds...',
  ].join('\n');
  assert.deepEqual(c(openai), {
    kind: 'limit',
    summary: 'The API provider has rate limited you. Try again later or check your quotas.',
    resetAt: NOW + 90_000,
  });
  const gemini =
    'litellm.RateLimitError: litellm.RateLimitError: VertexAIException - {\n  "error": {\n    "code": 429,\n    "message": "You exceeded your current quota, please check your plan and billing details. Please retry in 27.9s.",\n    "status": "RESOURCE_EXHAUSTED",\n    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27s"}]\n  }\n}';
  assert.deepEqual(c(gemini)?.resetAt, NOW + 27_900);
  assert.equal(c('"retryDelay": "27s" RESOURCE_EXHAUSTED')?.resetAt, NOW + 27_000);
  const anthropic =
    'litellm.RateLimitError: AnthropicException - {"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50,000 input tokens per minute."}}';
  const a = c(anthropic);
  assert.equal(a?.kind, 'limit');
  assert.equal(a.resetAt, undefined);
  assert.equal(c('429 Too Many Requests, retry-after: 20')?.resetAt, NOW + 20_000);
});

test('credits or a quota used up, with no reset: permanent (a person must act)', () => {
  const openai =
    'litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.\nThe API provider has rate limited you. Try again later or check your quotas.';
  assert.equal(c(openai)?.kind, 'permanent');
  assert.equal(c('Insufficient credits with the API provider. Please add credits.')?.kind, 'permanent');
});

test('server and network failures: transient', () => {
  const overloaded = [
    'litellm.InternalServerError: AnthropicException - Overloaded. Handle with `litellm.InternalServerError`.',
    "The API provider's servers are down or overloaded.",
  ].join('\n');
  assert.deepEqual(c(overloaded), { kind: 'transient', summary: "The API provider's servers are down or overloaded." });
  assert.equal(c('litellm.APIConnectionError: Connection error.')?.kind, 'transient');
});

test('a bad flag, an old Aider, an unknown model, a context too big: permanent', () => {
  assert.equal(c('usage: aider [-h] ...\naider: error: unrecognized arguments: --bogus', 2)?.kind, 'permanent');
  const old = c('aider: error: unrecognized arguments: --add-gitignore-files', 2);
  assert.match(old?.summary ?? '', /0\.85 or later/);
  assert.equal(
    c('litellm.NotFoundError: OpenAIException - The model `gpt-9` does not exist or you do not have access to it.')
      ?.kind,
    'permanent',
  );
  assert.equal(
    c('Your estimated chat context of 250,000 tokens exceeds the 200,000 token limit for sonnet!')?.kind,
    'permanent',
  );
});

test('nothing recognised: null, whatever the exit', () => {
  assert.equal(c('Applied edit to src/greeting.ts'), null);
  assert.equal(c('something else', 1), null);
});

test('the adapter describes itself', () => {
  assert.equal(aiderAdapter.name, 'aider');
  assert.equal(aiderAdapter.binary, 'aider');
  assert.deepEqual(aiderAdapter.versionArgs, ['--version']);
  assert.ok(aiderAdapter.credentialEnv.includes('ANTHROPIC_API_KEY'));
});
