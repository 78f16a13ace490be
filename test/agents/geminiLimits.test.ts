import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { always, FIXED_MODEL, geminiInstalled, geminiSettings, googleError, playGemini } from '../support/geminiKit';

/**
 * The real Gemini CLI 0.61.0 meeting a failing API: server errors and a dead connection (transient:
 * retried with back-off) and usage limits (limit: the agent pauses until the reset the API named).
 * Gemini CLI retries 5xx and short rate limits itself first; `general.maxAttempts` bounds that (ten
 * attempts by default, five to thirty seconds apart: about five minutes for a 500 with routing).
 * The runs are independent and run side by side.
 */

const skip = geminiInstalled() ? false : 'the pinned Gemini CLI is not installed: node scripts/agentClis/install.mjs';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('Gemini CLI 0.61.0: transient failures and limits', { skip, concurrency: true }, () => {
  test('server errors (500): retried by Gemini CLI itself, then transient', async () => {
    const { run, turns, failure, close } = await playGemini(
      always(googleError(500, 'INTERNAL', 'An internal error has occurred.')),
      // Two attempts, one back-off of about 5 s, instead of ten.
      { settings: geminiSettings({ maxAttempts: 2 }), extraArgs: FIXED_MODEL },
    );
    closers.push(close);
    assert.equal(run.code, 500 - 256);
    assert.equal(turns.length, 2, 'general.maxAttempts bounds its attempts');
    assert.ok(turns[1]!.at - turns[0]!.at >= 3000, 'its first back-off is 5 s ± 30%');
    assert.deepEqual(failure, { kind: 'transient', summary: 'An internal error has occurred.' });
  });

  test('nothing listening: fetch failed, transient', async () => {
    const { run, failure, close } = await playGemini(always({ kind: 'text', text: 'unused' }), {
      settings: geminiSettings({ maxAttempts: 1 }),
      extraArgs: FIXED_MODEL,
      // Port 9 (discard): nothing listens there on 127.0.0.1.
      baseUrl: 'http://127.0.0.1:9',
    });
    closers.push(close);
    assert.equal(run.code, 1);
    assert.equal(failure?.kind, 'transient');
    assert.match(failure.summary, /fetch failed/);
  });

  test('a daily quota exhausted (429 RESOURCE_EXHAUSTED, QuotaFailure, RetryInfo): limit with resetAt', async () => {
    const started = Date.now();
    const { run, turns, failure, close } = await playGemini(
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
    closers.push(close);
    assert.equal(run.code, 429 - 256);
    assert.equal(turns.length, 1, 'a daily quota is not retried');
    assert.equal(failure?.kind, 'limit');
    assert.match(failure.summary, /exhausted your daily quota/);
    // The delay is only in the API's message, which Gemini CLI prints with the error on stderr.
    assert.ok(failure.resetAt !== undefined);
    assert.ok(failure.resetAt >= started + 3600_000 && failure.resetAt <= Date.now() + 3600_000);
  });

  test('a rate limit with a long RetryInfo delay: not retried past 5 minutes, limit with resetAt', async () => {
    const started = Date.now();
    const { run, turns, failure, close } = await playGemini(
      always(
        googleError(429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', [
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '900s' },
        ]),
      ),
      { extraArgs: FIXED_MODEL },
    );
    closers.push(close);
    assert.equal(run.code, 429 - 256);
    assert.equal(turns.length, 1);
    assert.equal(failure?.kind, 'limit');
    assert.equal(failure.summary, 'Resource has been exhausted (e.g. check quota).');
    assert.ok(failure.resetAt !== undefined);
    assert.ok(failure.resetAt >= started + 900_000 && failure.resetAt <= Date.now() + 900_000);
  });
});
