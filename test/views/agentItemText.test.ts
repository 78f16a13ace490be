import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Agent } from '../../src/engine/model/schema';
import type { AgentProgress } from '../../src/engine/progress/progressBoard';
import { agentItemText } from '../../src/views/agentItemText';
import { clockTime, since } from '../../src/views/timeText';

/**
 * The Agents tree's words for an agent: a working one with its current step and cost so far, a
 * paused one with the time it resumes, an idle one as before; read in plain Node (no VS Code).
 */

// Local times, so "HH:MM" is what a person in this machine's zone reads.
const NOW = new Date(2026, 4, 4, 10, 0, 0).getTime();
const iso = (ms: number) => new Date(ms).toISOString();

function agent(fields: Partial<Agent> = {}): Agent {
  return {
    id: 'tester',
    role: 'tester',
    command: 'claude',
    status: 'idle',
    current_task: null,
    since: null,
    created_at: iso(NOW - 3_600_000),
    ...fields,
  };
}

function progress(fields: Partial<AgentProgress> = {}): AgentProgress {
  return {
    agentId: 'tester',
    taskId: 'TASK-007',
    stage: 'test',
    attempt: 2,
    startedAt: NOW - 125_000,
    step: 'Bash: npm test',
    stepAt: NOW - 5_000,
    steps: 4,
    message: 'Running the tests now.',
    usage: { input: 12_300, output: 480, cacheRead: 2000, cacheWrite: 400, costUsd: 0.0497 },
    session: 'abc',
    ...fields,
  };
}

const working = agent({ status: 'working', current_task: 'TASK-007', since: iso(NOW - 125_000) });

void test('a working agent: its current step and its cost so far beside the name, the details in the tooltip', () => {
  const t = agentItemText(working, progress(), NOW);
  assert.equal(t.description, 'tester · working · TASK-007 · 2m · Bash: npm test · $0.0497');
  assert.equal(
    t.tooltip,
    [
      'tester: tester, working on TASK-007 for 2m',
      'test, attempt 2, 4 steps so far',
      'now: Bash: npm test',
      'said: Running the tests now.',
      'spent so far: 12k in · 480 out · 2.4k cache, $0.0497',
      'command: claude',
    ].join('\n'),
  );
});

void test('a working agent before its first step and before any spending: "starting", no cost', () => {
  const t = agentItemText(working, progress({ step: null, steps: 0, message: null, usage: null }), NOW);
  assert.equal(t.description, 'tester · working · TASK-007 · 2m · starting');
  assert.ok(!t.tooltip.includes('spent'), t.tooltip);
  assert.match(t.tooltip, /^now: starting$/m);
});

void test('a long or multi-line step is one shortened line beside the name and whole in the tooltip', () => {
  const step = `Bash: ${'x'.repeat(100)}\n  && npm test`;
  const t = agentItemText(working, progress({ step }), NOW);
  const shown = t.description.split(' · ')[4]!;
  assert.equal(shown.length, 60);
  assert.ok(shown.endsWith('…') && !shown.includes('\n'));
  assert.ok(t.tooltip.includes(`now: Bash: ${'x'.repeat(100)} && npm test`));
});

void test("progress about another task (a leader that died mid-attempt) is not shown as this one's", () => {
  const t = agentItemText(working, progress({ taskId: 'TASK-001' }), NOW);
  assert.equal(t.description, 'tester · working · TASK-007 · 2m');
  assert.ok(!t.tooltip.includes('Bash'));
});

void test('a paused agent: "paused until HH:MM" beside the name, the reason in the tooltip', () => {
  const until = new Date(2026, 4, 4, 17, 30, 0).getTime();
  const paused = agent({ status: 'paused', paused_until: iso(until), paused_reason: 'usage limit reached' });
  const t = agentItemText(paused, undefined, NOW);
  assert.equal(t.description, 'tester · paused until 17:30');
  assert.match(t.tooltip, /^paused until 17:30: usage limit reached$/m);
  // A reset on another day names the day.
  const later = agent({ status: 'paused', paused_until: iso(new Date(2026, 4, 6, 9, 5).getTime()) });
  assert.equal(agentItemText(later, undefined, NOW).description, 'tester · paused until May 6 09:05');
});

void test('an idle agent reads as before: role and status', () => {
  assert.deepEqual(agentItemText(agent(), progress(), NOW), {
    description: 'tester · idle',
    tooltip: 'tester: tester, idle\ncommand: claude',
  });
});

void test('since and clockTime', () => {
  assert.equal(since(null, NOW), '');
  assert.equal(since(iso(NOW - 42_000), NOW), '42s');
  assert.equal(since(iso(NOW - 3_900_000), NOW), '1h5m');
  assert.equal(clockTime(iso(new Date(2026, 4, 4, 8, 7).getTime()), NOW), '08:07');
});
