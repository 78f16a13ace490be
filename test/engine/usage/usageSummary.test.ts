import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentLine } from '../../../src/cli/statusCommands';
import { configSchema } from '../../../src/engine/model/configSchema';
import {
  emptyState,
  type Agent,
  type AttemptUsage,
  type ModelUsageRecord,
  type PipelineState,
} from '../../../src/engine/model/schema';
import type { AgentProgress } from '../../../src/engine/progress/progressBoard';
import { statusReport } from '../../../src/engine/statusReport';
import { usageSummary } from '../../../src/engine/usage/usageSummary';
import { newTask } from '../../support/taskFixtures';

const AT = '2026-01-01T00:00:00.000Z';

function m(model: string, input: number, output: number, costUsd: number | null): ModelUsageRecord {
  return { model, input, output, cacheRead: 10, cacheWrite: 0, costUsd, costSource: costUsd === null ? null : 'cli' };
}

function attempt(n: number, stage: string, agent: string, models: ModelUsageRecord[]): AttemptUsage {
  return { attempt: n, stage, agent, at: AT, models, session: null };
}

function agent(id: string, fields: Partial<Agent> = {}): Agent {
  return {
    id,
    role: 'tester',
    command: 'claude',
    status: 'idle',
    current_task: null,
    since: null,
    created_at: AT,
    ...fields,
  };
}

/** Two tasks: one merged after two attempts on two stages, one at work with a model that has no price. */
function state(): PipelineState {
  const s = emptyState();
  const done = [
    attempt(1, 'test', 'tester', [m('opus', 100, 10, 0.5)]),
    attempt(2, 'implementation', 'impl', [m('opus', 200, 20, 1), m('haiku', 50, 5, 0.25)]),
  ];
  const working = [attempt(1, 'test', 'tester', [m('local', 1000, 100, null)])];
  s.tasks['TASK-001'] = newTask('TASK-001', 1, {
    status: 'done',
    usage: { input: 350, output: 35, cacheRead: 30, cacheWrite: 0, costUsd: 1.75, attempts: done },
  });
  s.tasks['TASK-002'] = newTask('TASK-002', 2, {
    status: 'working',
    stage: 'test',
    assigned_to: 'tester',
    usage: { input: 1000, output: 100, cacheRead: 10, cacheWrite: 0, costUsd: 0, attempts: working },
  });
  s.agents.tester = agent('tester', { status: 'working', current_task: 'TASK-002', since: AT });
  s.agents.impl = agent('impl', { role: 'implementer' });
  return s;
}

void test('usageSummary adds every attempt up, by stage, agent and model; merged tasks and unpriced uses apart', () => {
  const u = usageSummary(state());
  assert.deepEqual(u.total, { input: 1350, output: 135, cacheRead: 40, cacheWrite: 0, costUsd: 1.75 });
  assert.deepEqual(u.byStage, {
    test: { input: 1100, output: 110, cacheRead: 20, cacheWrite: 0, costUsd: 0.5 },
    implementation: { input: 250, output: 25, cacheRead: 20, cacheWrite: 0, costUsd: 1.25 },
  });
  assert.deepEqual(Object.keys(u.byAgent).sort(), ['impl', 'tester']);
  assert.equal(u.byAgent.tester!.input, 1100);
  assert.deepEqual(Object.fromEntries(Object.entries(u.byModel).map(([k, v]) => [k, v.input])), {
    opus: 300,
    haiku: 50,
    local: 1000,
  });
  assert.deepEqual(u.byAgentModel['impl\u0000haiku'], {
    input: 50,
    output: 5,
    cacheRead: 10,
    cacheWrite: 0,
    costUsd: 0.25,
    agent: 'impl',
    model: 'haiku',
  });
  assert.deepEqual(u.merged, { tasks: 1, costUsd: 1.75 });
  assert.equal(u.unpriced, 1);
  assert.deepEqual(usageSummary(emptyState()).total, { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: 0 });
});

function progress(agentId: string, taskId: string, step: string | null): AgentProgress {
  return {
    agentId,
    taskId,
    stage: 'test',
    attempt: 1,
    startedAt: 0,
    step,
    stepAt: step ? 1 : null,
    steps: step ? 2 : 0,
    message: null,
    usage: { input: 12_345, output: 480, cacheRead: 2400, cacheWrite: 0, costUsd: 0.0497 },
    session: null,
  };
}

void test('status: the progress of agents at work on its task only, and the usage without the per-pair breakdown', () => {
  const config = configSchema.parse({});
  const r = statusReport(state(), config, null, [], {
    tester: progress('tester', 'TASK-002', 'Bash: npm test'),
    // Left by an attempt the state no longer shows: the agent is idle.
    impl: progress('impl', 'TASK-001', 'Edit src/a.ts'),
    // An agent the state does not know.
    ghost: progress('ghost', 'TASK-002', 'Read x'),
  });
  assert.deepEqual(Object.keys(r.progress), ['tester']);
  assert.equal(r.progress.tester?.step, 'Bash: npm test');
  assert.equal(r.usage.total.input, 1350);
  assert.equal('byAgentModel' in r.usage, false);
  // What --json prints survives JSON as it is.
  assert.deepEqual((JSON.parse(JSON.stringify(r)) as typeof r).progress, r.progress);
});

void test('status lines: a working agent with its step and spending so far, a paused one with its reset', () => {
  const s = state();
  assert.equal(
    agentLine(s.agents.tester!, progress('tester', 'TASK-002', 'Bash: npm test')),
    'tester          tester       working  TASK-002 test attempt 1: Bash: npm test (12k in · 480 out · 2.4k cache, $0.0497)',
  );
  assert.equal(
    agentLine(s.agents.tester!, progress('tester', 'TASK-002', null)),
    'tester          tester       working  TASK-002 test attempt 1: starting (12k in · 480 out · 2.4k cache, $0.0497)',
  );
  assert.equal(agentLine(s.agents.impl!, undefined), 'impl            implementer  idle');
  const until = new Date(2031, 0, 15, 17, 30).toISOString();
  assert.equal(
    agentLine(
      agent('codex-1', {
        status: 'paused',
        current_task: 'TASK-003',
        paused_until: until,
        paused_reason: 'usage limit',
      }),
      undefined,
    ),
    'codex-1         tester       paused   TASK-003 paused until 17:30: usage limit',
  );
});
