import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configSchema } from '../../src/engine/model/configSchema';
import { emptyState, type AttemptUsage, type PipelineState } from '../../src/engine/model/schema';
import type { AgentProgress } from '../../src/engine/progress/progressBoard';
import { usageSummary } from '../../src/engine/usage/usageSummary';
import { costView } from '../../src/views/costView';
import { inFlightRows } from '../../src/views/inFlightRows';
import { newTask } from '../support/taskFixtures';

/**
 * The metrics panel's payload, in plain Node: the cost figures the page shows (in total, per merged
 * task, by stage in stage order) from the same summary as `status --json`, and the tasks in flight
 * with what their agents do now and have cost so far.
 */

const AT = '2026-01-01T00:00:00.000Z';
const config = configSchema.parse({
  stages: [
    { name: 'architect', role: 'architect' },
    { name: 'test', role: 'tester' },
    { name: 'implementation', role: 'implementer' },
  ],
  reworkStage: 'implementation',
  conflictStages: ['implementation'],
});

function attempt(n: number, stage: string, agent: string, costUsd: number | null, input = 1000): AttemptUsage {
  return {
    attempt: n,
    stage,
    agent,
    at: AT,
    session: null,
    models: [
      {
        model: 'm',
        input,
        output: 100,
        cacheRead: 0,
        cacheWrite: 0,
        costUsd,
        costSource: costUsd === null ? null : 'cli',
      },
    ],
  };
}

function totals(attempts: AttemptUsage[]) {
  const t = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: 0, attempts };
  for (const a of attempts)
    for (const m of a.models) {
      t.input += m.input;
      t.output += m.output;
      t.costUsd += m.costUsd ?? 0;
    }
  return t;
}

function state(): PipelineState {
  const s = emptyState();
  s.tasks['TASK-001'] = newTask('TASK-001', 1, {
    status: 'done',
    usage: totals([attempt(1, 'implementation', 'impl', 1.5), attempt(2, 'architect', 'arch', 0.5)]),
  });
  s.tasks['TASK-002'] = newTask('TASK-002', 2, {
    status: 'done',
    usage: totals([attempt(1, 'implementation', 'impl', 0.25), attempt(2, 'review', 'person', null, 0)]),
  });
  s.tasks['TASK-003'] = newTask('TASK-003', 3, {
    status: 'working',
    stage: 'test',
    assigned_to: 'tester',
    history: [{ at: '2026-01-01T00:05:00.000Z', event: 'assign', from: 'queued', to: 'working', stage: 'test' }],
  });
  s.tasks['TASK-004'] = newTask('TASK-004', 4, { status: 'queued', stage: 'implementation' });
  s.tasks['TASK-005'] = newTask('TASK-005', 5, { status: 'queued', stage: 'architect' });
  return s;
}

void test('costView: total, per merged task, and each stage in stage order, with the unpriced uses noted', () => {
  const s = state();
  const u = usageSummary(s);
  const view = costView({ stages: config.stages.map((x) => x.name), usage: u });
  assert.deepEqual(view, {
    total: '$2.25',
    tokens: '3.0k in · 400 out',
    perMergedTask: '$1.13',
    byStage: [
      { stage: 'architect', cost: '$0.5000', tokens: '1.0k in · 100 out' },
      { stage: 'implementation', cost: '$1.75', tokens: '2.0k in · 200 out' },
      // A stage no longer configured still spent; it comes last.
      { stage: 'review', cost: '$0.0000', tokens: '0 in · 100 out' },
    ],
    note: '1 model use had no price (not counted)',
  });
});

void test('costView before any spending: $0, no stages, "—" per merged task, no note', () => {
  const view = costView({ stages: ['architect'], usage: usageSummary(emptyState()) });
  assert.deepEqual(view, { total: '$0.0000', tokens: '0 in · 0 out', perMergedTask: '—', byStage: [], note: null });
});

void test("inFlightRows: the working task with its agent's step and cost so far; queued past the first stage without", () => {
  const s = state();
  const progress: AgentProgress = {
    agentId: 'tester',
    taskId: 'TASK-003',
    stage: 'test',
    attempt: 1,
    startedAt: Date.parse(AT),
    step: 'Edit src/parser.ts',
    stepAt: Date.parse(AT),
    steps: 3,
    message: null,
    usage: { input: 500, output: 20, cacheRead: 0, cacheWrite: 0, costUsd: 0.0123 },
    session: null,
  };
  const board = new Map([['tester', progress]]);
  const rows = inFlightRows({ state: s, config, progress: { get: (id) => board.get(id) } });
  assert.deepEqual(
    rows.map((r) => [r.id, r.status, r.stage, r.agent, r.step, r.cost]),
    [
      ['TASK-003', 'working', 'test', 'tester', 'Edit src/parser.ts', '$0.0123'],
      ['TASK-004', 'queued', 'implementation', null, null, null],
    ],
  );
  assert.equal(rows[0]!.since, Date.parse('2026-01-01T00:05:00.000Z'));
  // Progress about another task is not this one's.
  board.set('tester', { ...progress, taskId: 'TASK-009' });
  const stale = inFlightRows({ state: s, config, progress: { get: (id) => board.get(id) } });
  assert.deepEqual([stale[0]!.step, stale[0]!.cost], [null, null]);
});
