import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { always, geminiInstalled, googleError, playGemini } from '../support/geminiKit';

/**
 * Failures of the real Gemini CLI 0.61.0 that another attempt would meet the same way, and the
 * adapter's reading of them: permanent, so the task is blocked at once. The runs are independent
 * and run side by side.
 */

const skip = geminiInstalled() ? false : 'the pinned Gemini CLI is not installed: node scripts/agentClis/install.mjs';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0)) await close();
});

const unused = always({ kind: 'text', text: 'unused' });

describe('Gemini CLI 0.61.0: permanent failures', { skip, concurrency: true }, () => {
  test('no key: exit 41 before any request', async () => {
    const { run, server, failure, close } = await playGemini(unused, { apiKey: null });
    closers.push(close);
    assert.equal(run.code, 41);
    assert.equal(server.requests.length, 0);
    assert.equal(failure?.kind, 'permanent');
    assert.match(failure.summary, /must specify the GEMINI_API_KEY/);
  });

  for (const [status, code, message] of [
    [401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'],
    [403, 'PERMISSION_DENIED', 'Permission denied: Consumer has been suspended.'],
  ] as const) {
    test(`a key the API refuses (${status}): no retry, the HTTP status as exit code`, async () => {
      const { run, turns, failure, close } = await playGemini(always(googleError(status, code, message)));
      closers.push(close);
      assert.equal(run.code, status - 256, 'the status, modulo 256');
      assert.equal(turns.length, 1);
      assert.deepEqual(failure, { kind: 'permanent', summary: message });
    });
  }

  test('an untrusted folder (no --skip-trust): exit 55 before any request', async () => {
    const { run, server, failure, close } = await playGemini(unused, {
      tweakArgv: (argv) => argv.filter((a) => a !== '--skip-trust'),
    });
    closers.push(close);
    assert.equal(run.code, 55);
    assert.equal(server.requests.length, 0);
    assert.equal(failure?.kind, 'permanent');
    assert.match(failure.summary, /not running in a trusted directory/);
  });

  test('a bad flag: exit 1 and the usage', async () => {
    const { run, server, failure, close } = await playGemini(unused, { extraArgs: ['--no-such-flag'] });
    closers.push(close);
    assert.equal(run.code, 1);
    assert.equal(server.requests.length, 0);
    assert.equal(failure?.kind, 'permanent');
    assert.match(failure.summary, /Unknown arguments?: .*such-flag/);
  });
});
