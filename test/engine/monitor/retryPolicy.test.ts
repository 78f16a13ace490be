import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRetry, retryDelayMs } from '../../../src/engine/monitor/retryPolicy';

const cfg = { maxAttempts: 4, baseDelayMs: 1000, maxDelayMs: 5000, jitter: 0.5 };

test('backoff doubles per failure up to the cap', () => {
  const none = () => 0;
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((f) => retryDelayMs(f, cfg, none)),
    [1000, 2000, 4000, 5000, 5000],
  );
});

test('jitter takes at most its fraction off the delay', () => {
  assert.equal(
    retryDelayMs(2, cfg, () => 1),
    1000,
  );
  for (let i = 0; i < 100; i++) {
    const d = retryDelayMs(3, cfg);
    assert.ok(d >= 2000 && d <= 4000, String(d));
  }
});

test('retries until maxAttempts, then gives up with the count in the reason', () => {
  const f = { reason: 'exit 1', class: 'transient' as const };
  assert.equal(decideRetry(0, f, cfg).retry, true);
  assert.equal(decideRetry(2, f, cfg).retry, true);
  const last = decideRetry(3, f, cfg);
  assert.equal(last.retry, false);
  assert.match(last.retry ? '' : last.reason, /4 of 4 attempts/);
});

test('permanent failures are never retried', () => {
  const d = decideRetry(0, { reason: 'command not found: claude', class: 'permanent' }, cfg);
  assert.equal(d.retry, false);
  assert.match(d.retry ? '' : d.reason, /not retried/);
});
