import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyState, type Agent, type PipelineState } from '../../src/engine/model/schema';
import { statusBarText } from '../../src/views/statusBarText';
import { clockTime } from '../../src/views/timeText';
import { newTask } from '../support/taskFixtures';

/**
 * The status-bar item's words, in plain Node: the modes, busy agents, agents paused by a usage
 * limit (each with when it resumes in the tooltip, soonest first), waiting and blocked tasks.
 */

// Local times, so "HH:MM" is what a person in this machine's zone reads.
const NOW = new Date(2026, 4, 4, 10, 0, 0).getTime();
const iso = (ms: number) => new Date(ms).toISOString();

function agent(id: string, fields: Partial<Agent> = {}): Agent {
  return {
    id,
    role: 'tester',
    command: 'claude',
    status: 'idle',
    current_task: null,
    since: null,
    created_at: iso(NOW - 3_600_000),
    ...fields,
  };
}

function state(agents: Agent[], tasks = [newTask('TASK-001', 0, { status: 'queued' })]): PipelineState {
  const s = emptyState();
  for (const a of agents) s.agents[a.id] = a;
  for (const t of tasks) s.tasks[t.id] = t;
  return s;
}

const stopped = { running: false, leader: null };

void test('no paused agent: the words as before, nothing about pauses', () => {
  const t = statusBarText(
    state([agent('a'), agent('b', { status: 'working', current_task: 'TASK-001' })]),
    stopped,
    NOW,
  );
  assert.equal(t.text, '$(debug-pause) parallel · production · 1/2 busy · 1 waiting');
  assert.equal(
    t.tooltip,
    [
      'Agent Pipeline: stopped',
      'orchestration parallel, rollout production',
      '1 of 2 agents busy, 1 task waiting, 0 blocked, 0 done',
    ].join('\n'),
  );
  assert.equal(t.warn, false);
});

void test('paused agents: counted beside the busy ones, each with its reset time and reason in the tooltip, soonest first', () => {
  const later = NOW + 2 * 3_600_000;
  const sooner = NOW + 30 * 60_000;
  const s = state([
    agent('claude-1', {
      status: 'paused',
      paused_until: iso(later),
      paused_reason: 'API Error: Request rejected (429)\n Limit resets at …',
    }),
    agent('claude-2', { status: 'paused', paused_until: iso(sooner), paused_reason: 'usage limit reached' }),
    agent('codex-1', { status: 'working', current_task: 'TASK-001', command: 'codex' }),
  ]);
  const t = statusBarText(s, { running: true, leader: null }, NOW);
  assert.equal(t.text, '$(sync~spin) parallel · production · 1/3 busy · $(debug-pause) 2 paused · 1 waiting');
  const lines = t.tooltip.split('\n');
  assert.equal(lines[0], 'Agent Pipeline: running in this window');
  assert.equal(lines[2], '1 of 3 agents busy, 2 paused, 1 task waiting, 0 blocked, 0 done');
  assert.deepEqual(lines.slice(3), [
    `claude-2 paused until ${clockTime(iso(sooner), NOW)}: usage limit reached`,
    `claude-1 paused until ${clockTime(iso(later), NOW)}: API Error: Request rejected (429) Limit resets at …`,
  ]);
  assert.match(lines[3]!, /^claude-2 paused until 10:30: /);
  // A pause is not a problem a person must solve: no warning colour for it.
  assert.equal(t.warn, false);
});

void test('a reset on another day names the day; a followed pipeline, blocked tasks and a pause together', () => {
  const tomorrow = new Date(2026, 4, 5, 9, 15).getTime();
  const s = state(
    [agent('claude-1', { status: 'paused', paused_until: iso(tomorrow), paused_reason: null })],
    [
      newTask('TASK-001', 0, { status: 'blocked', blocked_reason: 'no' }),
      newTask('TASK-002', 1, { status: 'pending' }),
    ],
  );
  const t = statusBarText(s, { running: false, leader: { label: 'pipeline run', pid: 42, host: 'box' } }, NOW);
  assert.equal(t.text, '$(eye) parallel · production · 0/1 busy · $(debug-pause) 1 paused · 1 waiting · $(error) 1');
  assert.match(t.tooltip, /^Agent Pipeline: led by pipeline run \(pid 42 on box\)$/m);
  assert.match(t.tooltip, /^claude-1 paused until May 5 09:15$/m);
  assert.equal(t.warn, true);
});
