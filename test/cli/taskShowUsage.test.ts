import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttemptUsage, ModelUsageRecord, Task } from '../../src/engine/model/schema';
import { Pipeline } from '../../src/engine/pipeline';
import type { StatusReport } from '../../src/engine/statusReport';
import { json, ok, requireCli, withRepo } from './cliKit';

/**
 * `pipeline task show` prints each attempt's tokens and cost and the task's total, from the attempts
 * recorded in the journal the way the monitor records them ('attempt.usage'); `--json` and
 * `status --json` carry the same figures.
 */

requireCli();

const AT = '2026-05-04T10:00:00.000Z';

function model(
  name: string,
  input: number,
  output: number,
  cacheRead: number,
  costUsd: number | null,
): ModelUsageRecord {
  return {
    model: name,
    input,
    output,
    cacheRead,
    cacheWrite: 0,
    costUsd,
    costSource: costUsd === null ? null : 'prices',
  };
}

function attempt(n: number, stage: string, agent: string, models: ModelUsageRecord[]): AttemptUsage {
  return { attempt: n, stage, agent, at: AT, models, session: `session-${n}` };
}

test('task show: tokens and cost of each attempt and the total; a task with none shows no spending', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Parser', '--id', 'TASK-001');
    await ok(dir, 'task', 'add', 'Printer', '--id', 'TASK-002');
    const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'usage setup' });
    try {
      const b = p.newBatch();
      b.record({
        type: 'attempt.usage',
        id: 'TASK-001',
        usage: attempt(1, 'architect', 'architect', [model('claude-opus-4', 1200, 340, 5000, 0.5)]),
      });
      b.record({
        type: 'attempt.usage',
        id: 'TASK-001',
        usage: attempt(2, 'implementation', 'implementer', [
          model('gpt-5', 2000, 300, 0, 1.25),
          model('local-model', 800, 90, 0, null),
        ]),
      });
      await p.commit(b);
    } finally {
      await p.close();
    }

    const shown = await ok(dir, 'task', 'show', 'TASK-001');
    const spending = shown.slice(shown.indexOf('  spending:'), shown.indexOf('  history:'));
    assert.deepEqual(spending.trimEnd().split('\n'), [
      '  spending:',
      '    attempt 1   architect by architect         claude-opus-4: 1200 in · 340 out · 5000 cache read tokens, $0.5000',
      '    attempt 2   implementation by implementer  2 models: 2800 in · 390 out tokens, $1.25',
      '      gpt-5: 2000 in · 300 out tokens, $1.25',
      '      local-model: 800 in · 90 out tokens, no price',
      '    total: 4000 in · 730 out · 5000 cache read tokens, $1.75 (1 model use without a price not counted)',
    ]);

    // The same figures for scripts.
    const t = await json<Task>(dir, 'task', 'show', 'TASK-001', '--json');
    assert.deepEqual(
      [t.usage?.input, t.usage?.output, t.usage?.cacheRead, t.usage?.costUsd, t.usage?.attempts.length],
      [4000, 730, 5000, 1.75, 2],
    );
    const s = await json<StatusReport>(dir, 'status', '--json');
    assert.equal(s.usage.total.costUsd, t.usage?.costUsd);
    assert.equal(s.usage.total.input, t.usage?.input);

    // A task no agent has worked on says nothing of spending.
    const other = await ok(dir, 'task', 'show', 'TASK-002');
    assert.ok(!other.includes('spending:'), other);
  });
});
