import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptUsage, ModelUsageRecord } from '../../src/engine/model/schema';
import { taskSpending } from '../../src/views/taskSpending';

/**
 * The Tasks tree tooltip's spending, in plain Node: the sum over every attempt of every stage (a
 * limit's requeue, a failed attempt and a resumed one alike), each stage's share in the order the
 * task went through them, and model uses without a price said apart.
 */

const AT = '2026-01-01T00:00:00.000Z';

function model(costUsd: number | null, input = 1000, fields: Partial<ModelUsageRecord> = {}): ModelUsageRecord {
  return {
    model: 'm',
    input,
    output: 100,
    cacheRead: 0,
    cacheWrite: 0,
    costUsd,
    costSource: costUsd === null ? null : 'cli',
    ...fields,
  };
}

function attempt(n: number, stage: string, models: ModelUsageRecord[]): AttemptUsage {
  return { attempt: n, stage, agent: `${stage}-agent`, at: AT, session: null, models };
}

function usage(attempts: AttemptUsage[]) {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: 0, attempts };
}

void test('no attempt recorded yet: nothing to say', () => {
  assert.equal(taskSpending({}), null);
  assert.equal(taskSpending({ usage: usage([]) }), null);
});

void test('one attempt of one stage: the total alone, no stage breakdown', () => {
  const s = taskSpending({
    usage: usage([attempt(1, 'test', [model(0.0123, 1500, { cacheRead: 400, cacheWrite: 200 })])]),
  });
  assert.deepEqual(s, {
    total: '$0.0123 over 1 attempt (1.5k in · 100 out · 600 cache)',
    byStage: null,
    unpriced: null,
  });
});

void test('attempts of several stages and models: summed over all of them, each stage once in the order the task met it', () => {
  const s = taskSpending({
    usage: usage([
      // Recorded out of order (a late grace period): the order is the attempts'.
      attempt(3, 'implementation', [model(0.5), model(0.25, 2000, { model: 'n' })]),
      attempt(1, 'test', [model(0.1)]),
      attempt(2, 'test', [model(0.2)]),
      attempt(4, 'implementation', [model(0.45)]),
    ]),
  });
  assert.deepEqual(s, {
    total: '$1.50 over 4 attempts (6.0k in · 500 out)',
    byStage: 'test $0.3000 · implementation $1.20',
    unpriced: null,
  });
});

void test('tokens without a price: left out of the cost, counted, and said', () => {
  const s = taskSpending({
    usage: usage([attempt(1, 'test', [model(null), model(0.02)]), attempt(2, 'review', [model(null)])]),
  });
  assert.equal(s?.total, '$0.0200 over 2 attempts (3.0k in · 300 out)');
  assert.equal(s?.byStage, 'test $0.0200 · review $0.0000');
  assert.equal(s?.unpriced, '2 model uses without a price not counted');
});
