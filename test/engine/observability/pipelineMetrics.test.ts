import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TypedEvents } from '../../../src/engine/model/events';
import { PipelineMetrics, type MetricsSource } from '../../../src/engine/observability/pipelineMetrics';
import { Ring } from '../../../src/engine/observability/timeSeries';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import { configSchema } from '../../../src/engine/model/configSchema';
import { emptyState, type Agent, type PipelineState, type Task } from '../../../src/engine/model/schema';
import type { LeaderInfo } from '../../../src/engine/store/leaderLease';
import { transitionTask, type TaskEvent } from '../../../src/engine/model/taskLifecycle';
import { metric, parseProm } from './obsKit';

/**
 * The metrics on a fake pipeline and a fake clock: every figure from events (as a leader sees them)
 * or from refreshed states (as a follower does), and the time series' intervals to the millisecond.
 */

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const config = configSchema.parse({
  stages: [
    { name: 'design', role: 'architect' },
    { name: 'build', role: 'implementer' },
  ],
  reworkStage: 'build',
  conflictStages: ['build'],
});

class FakeSource implements MetricsSource {
  events = new TypedEvents<PipelineEventMap>();
  state: PipelineState = emptyState();
  config = config;
  isLeader = true;
  leader: LeaderInfo | null = {
    pid: 4242,
    host: 'box',
    epoch: 3,
    since: new Date(T0 - 60_000).toISOString(),
    renewedAt: new Date(T0).toISOString(),
    label: 'pipeline run',
  };
  storeWarnings: string[] = [];
  clock = T0;
  now = () => this.clock;

  task(id: string, status: Task['status'] = 'queued', stage = 'design'): Task {
    const t: Task = {
      id,
      title: id,
      description: '',
      prerequisites: [],
      priority: 'medium',
      paths: [],
      labels: [],
      status,
      stage,
      assigned_to: null,
      branch: `pipeline/${id}`,
      attempt: 0,
      failures: 0,
      not_before: null,
      blocked_reason: null,
      created_at: new Date(this.clock).toISOString(),
      updated_at: new Date(this.clock).toISOString(),
      seq: 0,
      merged_commit: null,
      history: [],
    };
    this.state.tasks[id] = t;
    return t;
  }

  agent(id: string, role: string): Agent {
    const a: Agent = {
      id,
      role,
      command: 'scripted',
      status: 'idle',
      current_task: null,
      since: null,
      created_at: new Date(this.clock).toISOString(),
    };
    this.state.agents[id] = a;
    return a;
  }

  /** A transition as the leader commits it: state, then the events. */
  transition(id: string, event: TaskEvent, emit = true): Task {
    const before = this.state.tasks[id]!;
    const after = transitionTask(before, event, new Date(this.clock).toISOString());
    this.state.tasks[id] = after;
    if (emit) this.events.emit('task:transition', { before, after, event });
    if (event.type === 'assign' || before.status === 'working') {
      const agentId = event.type === 'assign' ? event.agent : before.assigned_to!;
      const a = this.state.agents[agentId]!;
      const na: Agent =
        event.type === 'assign'
          ? { ...a, status: 'working', current_task: id }
          : { ...a, status: 'idle', current_task: null };
      this.state.agents[agentId] = na;
      if (emit) this.events.emit('agent:changed', { before: a, after: na });
    }
    if (emit) this.events.emit('state:changed', { seq: 0 });
    return after;
  }
}

async function samples(m: PipelineMetrics) {
  return parseProm(await m.metricsText());
}

void test('a leader: counts, durations, handoffs and the time series from events, on a fake clock', async () => {
  const s = new FakeSource();
  s.agent('arch', 'architect');
  s.agent('impl', 'implementer');
  s.task('T-1');
  s.task('T-2', 'pending');
  const m = PipelineMetrics.attach(s, { intervalMs: 1000, windowMs: 20_000, processMetrics: false, now: s.now });
  let changes = 0;
  const sub = m.onDidChange(() => changes++);

  let x = await samples(m);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'queued', stage: 'design' }), 1);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'pending', stage: 'design' }), 1);
  assert.equal(
    metric(x, 'pipeline_tasks', { status: 'done', stage: 'build' }),
    0,
    'every status of every stage is there from the start',
  );
  assert.equal(metric(x, 'pipeline_agents_idle'), 2);
  assert.equal(metric(x, 'pipeline_agents', { role: 'implementer', status: 'idle' }), 1);
  assert.equal(metric(x, 'pipeline_leader_info', { pid: '4242', host: 'box', label: 'pipeline run', epoch: '3' }), 1);
  assert.equal(metric(x, 'pipeline_leader_uptime_seconds'), 60);
  assert.equal(metric(x, 'pipeline_orchestration_mode', { mode: 'parallel' }), 1);

  // t=0: T-1 assigned to design; t=2.5 s completed → build; t=3 s assigned, agent started at 3.1 s.
  s.transition('T-1', { type: 'assign', agent: 'arch', attempt: 1 });
  s.events.emit('agent:started', {
    agentId: 'arch',
    taskId: 'T-1',
    stage: 'design',
    attempt: 1,
    command: 'x',
    at: s.clock + 100,
  });
  s.clock = T0 + 2500;
  s.transition('T-1', { type: 'complete', nextStage: 'build' });
  s.clock = T0 + 3000;
  s.transition('T-1', { type: 'assign', agent: 'impl', attempt: 2 });
  s.clock = T0 + 3100;
  s.events.emit('agent:started', {
    agentId: 'impl',
    taskId: 'T-1',
    stage: 'build',
    attempt: 2,
    command: 'x',
    at: s.clock,
  });
  // t=4 s the attempt fails (retried), t=4.2 s assigned again, t=5 s done → merging, t=5.5 s merged.
  s.clock = T0 + 4000;
  s.transition('T-1', { type: 'fail', reason: 'exit 1', notBefore: new Date(s.clock).toISOString() });
  s.clock = T0 + 4200;
  s.transition('T-1', { type: 'assign', agent: 'impl', attempt: 3 });
  s.clock = T0 + 5000;
  s.transition('T-1', { type: 'complete', nextStage: null });
  s.events.emit('check:finished', { taskId: 'T-1', stage: 'build', passed: true, evidence: 'e', durationMs: 250 });
  s.clock = T0 + 5500;
  s.transition('T-1', { type: 'merged', commit: 'abc' });
  s.events.emit('merge:finished', { taskId: 'T-1', into: 'main', commit: 'abc', conflicts: [], durationMs: 40 });
  s.events.emit('mode:switchPending', { to: 'sequential', busy: ['impl'] });
  x = await samples(m);
  assert.equal(metric(x, 'pipeline_orchestration_switch_pending', { mode: 'sequential' }), 1);
  s.events.emit('mode:orchestration', { from: 'parallel', to: 'sequential' });
  s.events.emit('mode:rollout', { from: 'production', to: 'pilot' });
  assert.ok(changes > 10);

  x = await samples(m);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'done', stage: 'build' }), 1);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'queued' }), 0);
  assert.equal(metric(x, 'pipeline_tasks'), 2, 'a task is counted once, wherever it is');
  assert.equal(metric(x, 'pipeline_task_attempts_total', { stage: 'design' }), 1);
  assert.equal(metric(x, 'pipeline_task_attempts_total', { stage: 'build' }), 2);
  assert.equal(metric(x, 'pipeline_task_retries_total', { stage: 'build' }), 1);
  assert.equal(metric(x, 'pipeline_stage_duration_seconds_sum', { stage: 'design', outcome: 'completed' }), 2.5);
  assert.equal(metric(x, 'pipeline_stage_duration_seconds_sum', { stage: 'build', outcome: 'failed' }), 1);
  assert.equal(metric(x, 'pipeline_stage_duration_seconds_sum', { stage: 'build', outcome: 'completed' }), 0.8);
  assert.equal(
    metric(x, 'pipeline_stage_duration_seconds_bucket', { stage: 'design', outcome: 'completed', le: '2' }),
    0,
  );
  assert.equal(
    metric(x, 'pipeline_stage_duration_seconds_bucket', { stage: 'design', outcome: 'completed', le: '5' }),
    1,
  );
  assert.equal(metric(x, 'pipeline_handoff_latency_seconds_count'), 1, 'a retry is not a handoff');
  assert.ok(
    Math.abs(metric(x, 'pipeline_handoff_latency_seconds_sum', { from_stage: 'design', to_stage: 'build' }) - 0.6) <
      1e-9,
  );
  assert.equal(metric(x, 'pipeline_merges_total'), 1);
  assert.equal(metric(x, 'pipeline_merge_duration_seconds_count', { result: 'merged' }), 1);
  assert.equal(metric(x, 'pipeline_checks_total', { stage: 'build', result: 'passed' }), 1);
  assert.equal(metric(x, 'pipeline_agent_starts_total'), 2);
  assert.equal(metric(x, 'pipeline_agents_busy'), 0);
  assert.equal(metric(x, 'pipeline_orchestration_mode', { mode: 'sequential' }), 1);
  assert.equal(metric(x, 'pipeline_orchestration_mode', { mode: 'parallel' }), 0, 'only the current mode is reported');
  assert.equal(metric(x, 'pipeline_orchestration_switch_pending'), 0);
  assert.equal(metric(x, 'pipeline_rollout_mode', { mode: 'pilot' }), 1);
  assert.equal(metric(x, 'pipeline_rollout_mode'), 1);

  // The series: one point per second from T0, utilisation time-weighted over 2 agents.
  s.clock = T0 + 7200;
  const snap = m.metricsSnapshot();
  assert.deepEqual(
    snap.series.map((p) => p.t - T0),
    [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000],
  );
  assert.deepEqual(
    snap.series.map((p) => p.merged),
    [0, 0, 0, 0, 0, 1, 0, 0],
  );
  assert.deepEqual(
    snap.series.map((p) => p.stagesCompleted),
    [0, 0, 1, 0, 0, 1, 0, 0],
  );
  // [0,1): 1 of 2 busy; [2,3): busy until 2.5; [3,4): busy; [4,5): busy except 4.0–4.2.
  assert.deepEqual(
    snap.series.map((p) => p.utilisation),
    [0.5, 0.5, 0.25, 0.5, 0.4, 0, 0, 0],
  );
  assert.deepEqual(snap.series[0]!.queueDepth, { design: 0, build: 0 });
  assert.equal(snap.tasks.byStatus.done, 1);
  assert.deepEqual(snap.tasks.byStage, { design: { pending: 1 }, build: { done: 1 } });
  assert.deepEqual(snap.counters, {
    added: 0,
    attempts: 3,
    retries: 1,
    merged: 1,
    conflicts: 0,
    checksPassed: 1,
    checksFailed: 0,
    stagesCompleted: 2,
  });
  assert.deepEqual(
    snap.recent.stages.map((d) => [d.stage, d.outcome, d.seconds]),
    [
      ['design', 'completed', 2.5],
      ['build', 'failed', 1],
      ['build', 'completed', 0.8],
    ],
  );
  assert.deepEqual(
    snap.recent.handoffs.map((d) => [d.stage, d.toStage, d.seconds, d.taskId]),
    [['design', 'build', 0.6, 'T-1']],
  );
  assert.equal(snap.leader?.uptimeSeconds, 67.2);
  assert.deepEqual(snap.modes, { orchestration: 'sequential', rollout: 'pilot', pendingSwitch: null });
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(snap)));

  // A long quiet spell: the window keeps 20 intervals, the last one current.
  s.clock = T0 + 100_500;
  const later = m.metricsSnapshot().series;
  assert.equal(later.length, 20);
  assert.equal(later[later.length - 1]!.t, T0 + 100_000);
  assert.equal(later[0]!.t, T0 + 81_000);
  assert.ok(later.every((p) => p.merged === 0 && p.utilisation === 0));

  // Disposed: no more figures, nothing registered.
  sub.dispose();
  m.dispose();
  s.transition('T-2', { type: 'ready' });
  assert.equal((await m.metricsText()).trim(), '');
});

void test('a follower: figures from refreshed states, durations from the history, handoffs end at the assignment', async () => {
  const s = new FakeSource();
  s.isLeader = false;
  s.agent('arch', 'architect');
  s.agent('impl', 'implementer');
  s.task('T-1');
  // Already working when the metrics attach: its duration counts from its assignment.
  s.transition('T-1', { type: 'assign', agent: 'arch', attempt: 1 }, false);
  s.clock = T0 + 1000;
  const m = PipelineMetrics.attach(s, { intervalMs: 1000, processMetrics: false, now: s.now });
  let x = await samples(m);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'working', stage: 'design' }), 1);
  assert.equal(metric(x, 'pipeline_agents_busy'), 1);
  assert.equal(metric(x, 'pipeline_is_leader'), 0);

  // Several changes land between two refreshes.
  s.clock = T0 + 4000;
  s.transition('T-1', { type: 'complete', nextStage: 'build' }, false);
  s.clock = T0 + 4300;
  s.transition('T-1', { type: 'assign', agent: 'impl', attempt: 2 }, false);
  s.task('T-2');
  s.state.orchestration_mode = 'sequential';
  s.clock = T0 + 4500;
  s.events.emit('state:changed', { seq: 9 });
  x = await samples(m);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'working', stage: 'build' }), 1);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'working', stage: 'design' }), 0);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'queued', stage: 'design' }), 1);
  assert.equal(metric(x, 'pipeline_tasks_added_total'), 1);
  assert.equal(metric(x, 'pipeline_stage_duration_seconds_sum', { stage: 'design', outcome: 'completed' }), 4);
  assert.ok(
    Math.abs(metric(x, 'pipeline_handoff_latency_seconds_sum', { from_stage: 'design', to_stage: 'build' }) - 0.3) <
      1e-9,
  );
  assert.equal(metric(x, 'pipeline_task_attempts_total'), 1, 'the assignment before attach is not counted');
  assert.equal(metric(x, 'pipeline_agents', { role: 'implementer', status: 'working' }), 1);
  assert.equal(metric(x, 'pipeline_agents', { role: 'architect', status: 'idle' }), 1);
  assert.equal(metric(x, 'pipeline_orchestration_mode', { mode: 'sequential' }), 1);

  // An unchanged refresh changes nothing.
  s.events.emit('state:changed', { seq: 9 });
  const withoutEvents = (xs: typeof x) => xs.filter((v) => v.name !== 'pipeline_events_total');
  assert.deepEqual(withoutEvents(await samples(m)), withoutEvents(x));

  s.clock = T0 + 6000;
  s.transition('T-1', { type: 'complete', nextStage: null }, false);
  s.transition('T-1', { type: 'merged', commit: 'c' }, false);
  s.events.emit('state:changed', { seq: 10 });
  x = await samples(m);
  assert.equal(metric(x, 'pipeline_merges_total'), 1);
  assert.equal(metric(x, 'pipeline_tasks', { status: 'done' }), 1);
  assert.equal(
    m.metricsSnapshot().series.reduce((a, p) => a + p.merged, 0),
    1,
  );

  // The leader changes hands: read when scraped.
  s.leader = { ...s.leader!, pid: 7, epoch: 4, label: 'VS Code window' };
  x = await samples(m);
  assert.equal(metric(x, 'pipeline_leader_info', { pid: '7', epoch: '4' }), 1);
  assert.equal(metric(x, 'pipeline_leader_info'), 1, 'one leader at a time');
  s.leader = null;
  x = await samples(m);
  assert.equal(metric(x, 'pipeline_leader_info'), 0);
  assert.equal(metric(x, 'pipeline_leader_uptime_seconds'), 0);
  m.dispose();
});

void test('the ring keeps the last items, oldest first', () => {
  const r = new Ring<number>(3);
  assert.deepEqual(r.toArray(), []);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.toArray(), [3, 4, 5]);
  assert.equal(r.length, 3);
});
