import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { checkAgents } from '../../../src/engine/agents/cli/doctor';
import { agentCliPath } from '../../support/agentCliKit';

/**
 * `pipeline doctor` against the real CLIs at their pinned versions: it finds them, reads their
 * versions, sees a key, and has each CLI parse the preset's own flags (and a user's extra ones).
 */
function envWith(keys: Record<string, string>): NodeJS.ProcessEnv {
  const bin = dirname(agentCliPath('claude'));
  return { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: '/nonexistent-home', ...keys };
}

void test('the pinned CLIs: installed, their versions, a key, and the presets’ flags parse', async () => {
  const env = envWith({ ANTHROPIC_API_KEY: 'k', OPENAI_API_KEY: 'k', GEMINI_API_KEY: 'k' });
  const checks = await checkAgents(
    [
      { id: 'architect', command: 'claude' },
      { id: 'tester', command: 'codex' },
      { id: 'implementer', command: 'gemini' },
    ],
    { env },
  );
  for (const c of checks) assert.deepEqual(c.problems, [], `${c.agent}: ${c.problems.join('; ')}`);
  assert.match(checks[0]!.version ?? '', /^2\.1\.332/);
  assert.match(checks[1]!.version ?? '', /0\.171\.0/);
  assert.match(checks[2]!.version ?? '', /^0\.61\.0/);
  assert.equal(checks[0]!.credentials.detail, 'ANTHROPIC_API_KEY set');
  for (const c of checks) assert.equal(c.flags.verdict, 'ok', `${c.agent}: ${c.flags.detail}`);
});

void test('what cannot work is named with its fix: no key, a flag the version refuses, a program not installed', async () => {
  const env = envWith({});
  const [claude, codex, missing] = await checkAgents(
    [
      { id: 'architect', command: 'claude' },
      { id: 'tester', command: 'codex' },
      { id: 'reviewer', command: 'my-reviewer --task {taskFile}' },
    ],
    { env, permissions: { codex: { allow: [], deny: [], extraArgs: ['--full-auto'] } } },
  );
  assert.match(claude!.problems.join('\n'), /claude has no key \(ANTHROPIC_API_KEY.*\) and no login/);
  assert.match(claude!.flags.detail, /Not logged in/, 'the flags parsed: the CLI went on to ask for a login');
  assert.equal(codex!.flags.verdict, 'problem');
  assert.match(codex!.flags.detail, /refused by this version: error: unexpected argument '--full-auto'/);
  assert.deepEqual(missing!.problems, ['my-reviewer is not installed (not found on PATH)']);
});
