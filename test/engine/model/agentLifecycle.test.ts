import { test } from 'node:test';
import assert from 'node:assert/strict';
import { transitionAgent, type AgentEvent } from '../../../src/engine/model/agentLifecycle';
import { AGENT_STATUSES, type Agent, type AgentStatus } from '../../../src/engine/model/schema';
import { isPipelineError } from '../../../src/engine/errors';

const UNTIL = '2026-01-02T05:00:00.000Z';

function agent(status: AgentStatus): Agent {
  const working = status === 'working';
  return {
    id: 'impl-1',
    role: 'implementer',
    command: 'scripted',
    status,
    current_task: working ? 'TASK-001' : null,
    since: working ? '2026-01-01T00:00:00.000Z' : null,
    created_at: '2026-01-01T00:00:00.000Z',
    ...(status === 'paused' ? { paused_until: '2026-01-02T01:00:00.000Z', paused_reason: 'usage limit' } : {}),
  };
}

const AT = '2026-01-02T00:00:00.000Z';
const EVENTS: AgentEvent[] = [
  { type: 'take', task: 'TASK-002', at: AT },
  { type: 'release' },
  { type: 'stop' },
  { type: 'start' },
  { type: 'pause', until: UNTIL, reason: "You've hit your limit" },
  { type: 'resume' },
];

/** The status each (status, event) pair leads to; null: nothing changes; 'throws': illegal. */
const EXPECTED: Record<AgentStatus, Record<AgentEvent['type'], AgentStatus | null | 'throws'>> = {
  idle: { take: 'working', release: null, stop: 'offline', start: null, pause: 'paused', resume: null },
  working: { take: 'throws', release: 'idle', stop: 'offline', start: 'idle', pause: 'throws', resume: null },
  paused: { take: 'throws', release: null, stop: 'offline', start: 'idle', pause: 'paused', resume: 'idle' },
  blocked: { take: 'throws', release: null, stop: 'offline', start: 'idle', pause: null, resume: null },
  offline: { take: 'throws', release: null, stop: null, start: 'idle', pause: null, resume: null },
};

test('the table covers every status and every event', () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), [...AGENT_STATUSES].sort());
  for (const status of AGENT_STATUSES)
    assert.deepEqual(Object.keys(EXPECTED[status]).sort(), EVENTS.map((e) => e.type).sort(), status);
});

test('every event in every agent status does what the table says', () => {
  for (const status of AGENT_STATUSES) {
    for (const event of EVENTS) {
      const want = EXPECTED[status][event.type];
      if (want === 'throws') {
        assert.throws(
          () => transitionAgent(agent(status), event),
          (e: unknown) => isPipelineError(e) && e.code === 'illegal-transition',
        );
        continue;
      }
      const change = transitionAgent(agent(status), event);
      if (want === null) {
        assert.equal(change, null, `${status} + ${event.type}`);
        continue;
      }
      assert.equal(change?.status, want, `${status} + ${event.type}`);
      // Only a working agent has a task and a start time; only a paused one a time to resume; leaving
      // a pause forgets it.
      if (want === 'working') assert.deepEqual(change, { status: 'working', current_task: 'TASK-002', since: AT });
      else if (want === 'paused')
        assert.deepEqual(change, {
          status: 'paused',
          current_task: null,
          since: null,
          paused_until: UNTIL,
          paused_reason: "You've hit your limit",
        });
      else if (status === 'paused')
        assert.deepEqual(change, {
          status: want,
          current_task: null,
          since: null,
          paused_until: null,
          paused_reason: null,
        });
      else assert.deepEqual(change, { status: want, current_task: null, since: null });
    }
  }
});

test('a release for another task than the agent is on changes nothing', () => {
  assert.equal(transitionAgent(agent('working'), { type: 'release', task: 'TASK-009' }), null);
  assert.equal(transitionAgent(agent('working'), { type: 'release', task: 'TASK-001' })?.status, 'idle');
});
