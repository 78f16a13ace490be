import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PipelineMetrics } from '../../../src/engine/observability/pipelineMetrics';
import { cliOf } from '../../../src/engine/observability/usageMetrics';
import type { AttemptUsage, ModelUsageRecord } from '../../../src/engine/model/schema';
import { Pipeline } from '../../../src/engine/pipeline';
import { statusReport } from '../../../src/engine/statusReport';
import { SCRIPTED, sandbox, type Sandbox } from '../monitor/monitorKit';
import { eventually, metric, parseProm } from './obsKit';

/**
 * Tokens, cost and pauses on `/metrics`, after attempts and a pause recorded in the journal the way
 * the monitor records them ('attempt.usage', the agents' 'pause' and 'resume'): the exposition text
 * of the leader, of a window that follows, and of a leader opened again after a restart, against
 * what `status --json` and `task show` read from the same records.
 */

const AT = '2026-05-04T10:00:00.000Z';
const UNTIL = '2031-01-15T17:30:00.000Z';

function model(
  name: string,
  t: [input: number, output: number, cacheRead: number, cacheWrite: number],
  costUsd: number | null,
): ModelUsageRecord {
  const [input, output, cacheRead, cacheWrite] = t;
  return { model: name, input, output, cacheRead, cacheWrite, costUsd, costSource: costUsd === null ? null : 'cli' };
}

function attempt(n: number, stage: string, agent: string, models: ModelUsageRecord[]): AttemptUsage {
  return { attempt: n, stage, agent, at: AT, models, session: null };
}

/** Sample lines of one metric family, in the order prom-client writes them. */
function family(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

void test('cliOf: a preset is its own CLI, a command template is custom', () => {
  assert.equal(cliOf('claude'), 'claude');
  assert.equal(cliOf('codex'), 'codex');
  assert.equal(cliOf('scripted'), 'scripted');
  assert.equal(cliOf('node agent.js {taskFile}'), 'custom');
  assert.equal(cliOf('constructor'), 'custom');
});

void test('tokens, cost and paused agents on /metrics: leader, follower and a restarted leader agree with the records', async () => {
  const sb: Sandbox = await sandbox({
    tasks: [
      { id: 'TASK-001', title: 'Parser' },
      { id: 'TASK-002', title: 'Printer' },
    ],
    agents: [
      ['tester', 'tester', 'claude'],
      ['spare', 'tester', 'claude'],
      ['impl', 'implementer', 'codex'],
      ['helper', 'implementer', SCRIPTED],
    ],
    config: {
      stages: [
        { name: 'test', role: 'tester' },
        { name: 'implementation', role: 'implementer' },
      ],
    },
  });
  const p = await Pipeline.open({ cwd: sb.dir, role: 'lead', label: 'usage metrics leader' });
  const f = await Pipeline.open({ cwd: sb.dir, role: 'follow', label: 'usage metrics follower', followIntervalMs: 50 });
  const metrics = PipelineMetrics.attach(p, { processMetrics: false });
  const fMetrics = PipelineMetrics.attach(f, { processMetrics: false });
  try {
    // Nothing spent yet: no token series; every CLI in use shows 0 paused agents.
    const before = await metrics.metricsText();
    assert.deepEqual(family(before, 'pipeline_agent_tokens_total'), []);
    assert.deepEqual(family(before, 'pipeline_agent_cost_usd_total'), []);
    assert.deepEqual(family(before, 'pipeline_agents_paused').sort(), [
      'pipeline_agents_paused{cli="claude"} 0',
      'pipeline_agents_paused{cli="codex"} 0',
      'pipeline_agents_paused{cli="custom"} 0',
    ]);
    assert.match(before, /^# TYPE pipeline_agent_tokens_total counter$/m);
    assert.match(before, /^# TYPE pipeline_agent_cost_usd_total counter$/m);
    assert.match(before, /^# TYPE pipeline_agents_paused gauge$/m);

    // Three attempts over two tasks, two stages, three models (one without a price), then a pause
    // of the claude agents, each committed as the monitor commits them.
    const b = p.newBatch();
    b.record({
      type: 'attempt.usage',
      id: 'TASK-001',
      usage: attempt(1, 'test', 'tester', [model('opus', [1000, 100, 400, 200], 0.5)]),
    });
    b.record({
      type: 'attempt.usage',
      id: 'TASK-001',
      usage: attempt(2, 'implementation', 'impl', [
        model('gpt-5', [2000, 300, 0, 0], 1.25),
        model('gpt-5-mini', [500, 50, 0, 0], null),
      ]),
    });
    b.record({
      type: 'attempt.usage',
      id: 'TASK-002',
      usage: attempt(1, 'test', 'tester', [model('opus', [3000, 20, 1000, 0], 0.125)]),
    });
    await p.commit(b);
    const pause = p.newBatch();
    for (const id of ['tester', 'spare'])
      pause.agentEvent(id, { type: 'pause', until: UNTIL, reason: 'usage limit reached' });
    await p.commit(pause);

    const expectedTokens = [
      'pipeline_agent_tokens_total{agent="tester",stage="test",model="opus",kind="input"} 4000',
      'pipeline_agent_tokens_total{agent="tester",stage="test",model="opus",kind="output"} 120',
      'pipeline_agent_tokens_total{agent="tester",stage="test",model="opus",kind="cache_read"} 1400',
      'pipeline_agent_tokens_total{agent="tester",stage="test",model="opus",kind="cache_write"} 200',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5",kind="input"} 2000',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5",kind="output"} 300',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5",kind="cache_read"} 0',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5",kind="cache_write"} 0',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5-mini",kind="input"} 500',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5-mini",kind="output"} 50',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5-mini",kind="cache_read"} 0',
      'pipeline_agent_tokens_total{agent="impl",stage="implementation",model="gpt-5-mini",kind="cache_write"} 0',
    ].sort();
    const expectedCost = [
      'pipeline_agent_cost_usd_total{agent="tester",stage="test",model="opus"} 0.625',
      'pipeline_agent_cost_usd_total{agent="impl",stage="implementation",model="gpt-5"} 1.25',
      'pipeline_agent_cost_usd_total{agent="impl",stage="implementation",model="gpt-5-mini"} 0',
    ].sort();
    const expectedPaused = [
      'pipeline_agents_paused{cli="claude"} 2',
      'pipeline_agents_paused{cli="codex"} 0',
      'pipeline_agents_paused{cli="custom"} 0',
    ];
    const untilSeconds = Date.parse(UNTIL) / 1000;
    const expectedUntil = [
      `pipeline_agent_paused_until_seconds{agent="spare",cli="claude"} ${untilSeconds}`,
      `pipeline_agent_paused_until_seconds{agent="tester",cli="claude"} ${untilSeconds}`,
    ];
    const assertExposition = (text: string, who: string) => {
      assert.deepEqual(family(text, 'pipeline_agent_tokens_total').sort(), expectedTokens, `${who}: tokens`);
      assert.deepEqual(family(text, 'pipeline_agent_cost_usd_total').sort(), expectedCost, `${who}: cost`);
      assert.deepEqual(family(text, 'pipeline_agents_paused').sort(), expectedPaused, `${who}: paused`);
      assert.deepEqual(family(text, 'pipeline_agent_paused_until_seconds').sort(), expectedUntil, `${who}: until`);
    };
    const leaderText = await metrics.metricsText();
    assertExposition(leaderText, 'leader');

    // The same figures as `status --json` and `task show` (the task's totals) read.
    const samples = parseProm(leaderText);
    const report = statusReport(p.state, p.config, p.leader);
    assert.equal(metric(samples, 'pipeline_agent_cost_usd_total'), report.usage.total.costUsd);
    assert.equal(metric(samples, 'pipeline_agent_tokens_total', { kind: 'input' }), report.usage.total.input);
    assert.equal(metric(samples, 'pipeline_agent_tokens_total', { kind: 'output' }), report.usage.total.output);
    assert.equal(metric(samples, 'pipeline_agent_tokens_total', { kind: 'cache_read' }), report.usage.total.cacheRead);
    for (const [stage, totals] of Object.entries(report.usage.byStage))
      assert.equal(metric(samples, 'pipeline_agent_cost_usd_total', { stage }), totals.costUsd, stage);
    // `task show`'s totals are the tasks' own: together, what the cost counters say.
    const taskTotal = p.state.tasks['TASK-001']!.usage!.costUsd + p.state.tasks['TASK-002']!.usage!.costUsd;
    assert.equal(taskTotal, 1.875);
    assert.equal(metric(samples, 'pipeline_agent_cost_usd_total'), taskTotal);

    // The metrics panel's snapshot (and /snapshot.json) carries the same totals.
    const snap = metrics.metricsSnapshot();
    assert.deepEqual(snap.usage.total, report.usage.total);
    assert.deepEqual(snap.usage.byStage, report.usage.byStage);
    assert.equal(snap.usage.unpriced, 1);

    // A window that follows reads the same records from the journal.
    const caughtUp = async () => {
      try {
        assertExposition(await fMetrics.metricsText(), 'follower');
        return true;
      } catch {
        return false;
      }
    };
    await eventually(caughtUp, 30_000, "the follower's metrics to show the records").catch(() => undefined);
    assertExposition(await fMetrics.metricsText(), 'follower');

    // The reset time comes: nobody is paused, the spending stays.
    const resume = p.newBatch();
    for (const id of ['tester', 'spare']) resume.agentEvent(id, { type: 'resume' });
    await p.commit(resume);
    const after = await metrics.metricsText();
    assert.deepEqual(family(after, 'pipeline_agents_paused').sort(), [
      'pipeline_agents_paused{cli="claude"} 0',
      'pipeline_agents_paused{cli="codex"} 0',
      'pipeline_agents_paused{cli="custom"} 0',
    ]);
    assert.deepEqual(family(after, 'pipeline_agent_paused_until_seconds'), []);
    assert.deepEqual(family(after, 'pipeline_agent_cost_usd_total').sort(), expectedCost);
  } finally {
    fMetrics.dispose();
    metrics.dispose();
    await f.close();
    await p.close();
  }

  // A leader opened again (a restart of `pipeline run`) starts from the recorded totals.
  const again = await Pipeline.open({ cwd: sb.dir, role: 'lead', label: 'usage metrics leader again' });
  const againMetrics = PipelineMetrics.attach(again, { processMetrics: false });
  try {
    const text = await againMetrics.metricsText();
    assert.equal(family(text, 'pipeline_agent_tokens_total').length, 12);
    assert.equal(metric(parseProm(text), 'pipeline_agent_cost_usd_total'), 1.875);
    assert.equal(metric(parseProm(text), 'pipeline_agent_tokens_total', { agent: 'tester', kind: 'input' }), 4000);
  } finally {
    againMetrics.dispose();
    await again.close();
    await sb.cleanup();
  }
});
