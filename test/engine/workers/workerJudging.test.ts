import assert from 'node:assert/strict';
import { test } from 'node:test';
import { agentWorkerNote, workerLines } from '../../../src/cli/workerLines';
import { parseConfig } from '../../../src/engine/home/configFile';
import type { Agent, PipelineState } from '../../../src/engine/model/schema';
import { emptyState } from '../../../src/engine/model/schema';
import type { LeaderInfo } from '../../../src/engine/ports/statePort';
import {
  coordinatorLabel,
  DEFAULT_WORKER_LEASE_MS,
  workersStatus,
  type OpenClaimRow,
  type WorkerRow,
} from '../../../src/engine/workers/workerStatus';
import { agentItemText } from '../../../src/views/agentItemText';
import { newTask } from '../../support/taskFixtures';

/**
 * How the workers' rows are judged, without a database: live or offline by each worker's own
 * lease, which agents a live worker runs, what waits because none does, and the words status and
 * the Agents tree print for them. The database-backed path is in workerStatus.test.ts.
 */

const config = parseConfig(
  JSON.stringify({
    targetBranch: 'main',
    stages: [
      { name: 'architect', role: 'architect' },
      { name: 'test', role: 'tester' },
      { name: 'implementation', role: 'implementer' },
      { name: 'review', role: 'human' },
    ],
  }),
  '/repo/.pipeline/config.json',
);

function agent(id: string, role: string, fields: Partial<Agent> = {}): Agent {
  return {
    id,
    role,
    command: 'claude',
    status: 'idle',
    current_task: null,
    since: null,
    created_at: '2026-01-01T00:00:00.000Z',
    ...fields,
  };
}

function state(): PipelineState {
  const s = emptyState();
  s.agents = {
    architect: agent('architect', 'architect', { status: 'working', current_task: 'TASK-001' }),
    tester: agent('tester', 'tester'),
    'impl-a': agent('impl-a', 'implementer'),
    'impl-b': agent('impl-b', 'implementer'),
  };
  s.tasks = {
    'TASK-001': newTask('TASK-001', 1, { status: 'working', stage: 'architect', attempt: 1, assigned_to: 'architect' }),
    'TASK-002': newTask('TASK-002', 2, { status: 'queued', stage: 'test' }),
    'TASK-003': newTask('TASK-003', 3, { status: 'queued', stage: 'implementation' }),
    'TASK-004': newTask('TASK-004', 4, { status: 'queued', stage: 'review' }),
  };
  return s;
}

function worker(name: string, fields: Partial<WorkerRow> = {}): WorkerRow {
  return {
    name,
    host: 'build-1',
    pid: 100,
    agents: [],
    coordinate: false,
    lease_ms: 2_000,
    stopped: false,
    started_at: new Date('2026-01-01T00:00:00.000Z'),
    heartbeat_age: 0.5,
    ...fields,
  };
}

const leader = (label: string): LeaderInfo => ({
  pid: 1,
  host: 'coord',
  epoch: 3,
  since: '2026-01-01T00:00:00.000Z',
  renewedAt: '2026-01-01T00:00:00.000Z',
  label,
});

const claim: OpenClaimRow = {
  task_id: 'TASK-001',
  attempt: 1,
  stage: 'architect',
  agent: 'architect',
  epoch: '7',
  status: 'claimed',
  worker: 'w1',
  lease_left: 1.24,
  offered_age: 3,
};

void test('a worker is live within its own lease, offline past it or once stopped; an old row is judged by the default lease', () => {
  const w = workersStatus(
    {
      workers: [
        worker('w1', { agents: ['architect', 'tester'], heartbeat_age: 1.9 }),
        worker('w2', { agents: ['impl-a'], heartbeat_age: 2.1 }),
        worker('w3', { agents: ['impl-b'], stopped: true, heartbeat_age: 0 }),
        worker('w4', { agents: ['impl-b'], lease_ms: null, heartbeat_age: DEFAULT_WORKER_LEASE_MS / 1000 - 1 }),
      ],
      claims: [claim],
    },
    state(),
    config,
    leader(coordinatorLabel('coord')),
  );
  assert.deepEqual(
    w.workers.map((e) => [e.name, e.live, e.lease_seconds]),
    [
      ['w1', true, 2],
      ['w2', false, 2],
      ['w3', false, 2],
      ['w4', true, DEFAULT_WORKER_LEASE_MS / 1000],
    ],
  );
  assert.deepEqual(w.workers[0]!.claims, [
    { task: 'TASK-001', stage: 'architect', agent: 'architect', attempt: 1, epoch: '7', lease_left_seconds: 1.2 },
  ]);
  assert.deepEqual(w.agent_workers['impl-a'], { workers: ['w2'], live_workers: [], live: false });
  assert.deepEqual(w.agent_workers['impl-b'], { workers: ['w3', 'w4'], live_workers: ['w4'], live: true });
  // impl-b (on w4) can take the implementation stage, so only nothing waits for a worker.
  assert.deepEqual(w.waiting_for_workers, []);
});

void test('work no live worker can take waits, named: a queued task of a role whose agents are offline, an offer to a dead agent; a human stage never', () => {
  const w = workersStatus(
    {
      workers: [worker('w1', { agents: ['architect'] }), worker('w2', { agents: ['tester'], heartbeat_age: 60 })],
      claims: [
        { ...claim, task_id: 'TASK-005', status: 'offered', worker: null, agent: 'impl-a', stage: 'implementation' },
        { ...claim, task_id: 'TASK-006', status: 'offered', worker: null, agent: 'architect' },
      ],
    },
    state(),
    config,
    leader(coordinatorLabel('coord')),
  );
  assert.deepEqual(
    w.waiting_for_workers.map((x) => x.message),
    [
      'TASK-005 attempt 1 (implementation) is offered to impl-a: waiting for a worker running impl-a',
      'TASK-002 (test) is queued: waiting for a worker running tester',
      'TASK-003 (implementation) is queued: waiting for a worker running impl-a or impl-b',
    ],
  );
  assert.deepEqual(w.offers_not_taken, { 'impl-a': 1, architect: 1 });
  const lines = workerLines(w);
  assert.ok(
    lines.includes('waiting: TASK-002 (test) is queued: waiting for a worker running tester'),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => /^ {2}w2 +OFFLINE +build-1 pid 100 \(heartbeat 60\.0 s ago, lease 2 s\)/.test(l)));
  assert.ok(lines.includes('offered, not taken yet: impl-a 1, architect 1'));
  assert.equal(agentWorkerNote('tester', w), '[offline: w2 is offline]');
  assert.equal(agentWorkerNote('impl-a', w), '[offline: no worker runs it]');
  assert.equal(agentWorkerNote('architect', w), '[on w1]');
});

void test('under a `pipeline run` or a VS Code window the agents run in the leader: workers are listed, agents are not judged by them', () => {
  const w = workersStatus(
    { workers: [worker('w1', { agents: ['architect'], heartbeat_age: 60 })], claims: [] },
    state(),
    config,
    leader('pipeline run'),
  );
  assert.equal(w.workers.length, 1);
  assert.deepEqual(w.agent_workers, {});
  assert.deepEqual(w.waiting_for_workers, []);
  assert.equal(agentWorkerNote('architect', w), '');
  // Nobody leads and workers were seen: they are how this pipeline runs its agents.
  const idle = workersStatus(
    { workers: [worker('w1', { agents: ['architect'], heartbeat_age: 60 })], claims: [] },
    state(),
    config,
    null,
  );
  assert.equal(idle.agent_workers.architect?.live, false);
});

void test("the Agents tree says which live worker runs an agent, or that it is offline, and leaves a pipeline in files' rows alone", () => {
  const a = agent('tester', 'tester');
  const on = agentItemText(a, undefined, Date.now(), { workers: ['w1', 'w2'], live_workers: ['w2'], live: true });
  assert.match(on.description, / · on w2$/);
  assert.match(on.tooltip, /^runs on w2$/m);
  const off = agentItemText(a, undefined, Date.now(), { workers: ['w1'], live_workers: [], live: false });
  assert.match(off.description, / · offline: no live worker$/);
  assert.match(
    off.tooltip,
    /^offline: its workers \(w1\) are offline; it is offered no work until a live worker runs it$/m,
  );
  const files = agentItemText(a, undefined, Date.now());
  assert.doesNotMatch(files.description + files.tooltip, /worker/);
});
