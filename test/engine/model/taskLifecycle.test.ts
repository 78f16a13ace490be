import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TASK_STATUSES, type Task, type TaskStatus } from '../../../src/engine/model/schema';
import { LEGAL_FROM, transitionTask, type TaskEvent } from '../../../src/engine/model/taskLifecycle';
import { isPipelineError } from '../../../src/engine/errors';
import { stateRecordSchema } from '../../../src/engine/model/stateRecords';

function task(status: TaskStatus, extra: Partial<Task> = {}): Task {
  return {
    id: 'TASK-001',
    title: 't',
    description: '',
    prerequisites: [],
    priority: 'medium',
    paths: [],
    labels: [],
    status,
    stage: 'implementation',
    assigned_to: status === 'working' ? 'impl-1' : null,
    branch: 'pipeline/TASK-001',
    attempt: status === 'working' ? 2 : 1,
    failures: 1,
    not_before: null,
    blocked_reason: status === 'blocked' ? 'why' : null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    seq: 0,
    merged_commit: null,
    history: [],
    ...extra,
  };
}

const EVENTS: TaskEvent[] = [
  { type: 'ready' },
  { type: 'assign', agent: 'impl-2', attempt: 3 },
  { type: 'complete', nextStage: 'supervisor' },
  { type: 'changes_requested', reworkStage: 'implementation', reason: 'tests missing' },
  { type: 'fail', reason: 'exit 1', notBefore: '2026-01-01T00:01:00.000Z' },
  { type: 'block', reason: 'needs a key' },
  { type: 'unblock' },
  { type: 'requeue', reason: 'forced switch' },
  { type: 'merged', commit: 'abc123' },
  { type: 'conflict', reworkStage: 'implementation', files: ['src/a.ts'] },
  { type: 'cancel', reason: 'not needed' },
];

/** The status each legal (event, from) pair must lead to. */
const EXPECTED_TO: Record<TaskEvent['type'], TaskStatus> = {
  ready: 'queued',
  assign: 'working',
  complete: 'queued',
  changes_requested: 'queued',
  fail: 'queued',
  block: 'blocked',
  unblock: 'pending',
  requeue: 'queued',
  merged: 'done',
  conflict: 'queued',
  cancel: 'cancelled',
};

const AT = '2026-01-02T00:00:00.000Z';

test('every event from every status: legal ones move to the documented status, illegal ones throw', () => {
  let legal = 0;
  let illegal = 0;
  for (const from of TASK_STATUSES) {
    for (const ev of EVENTS) {
      const before = task(from);
      const frozen = JSON.stringify(before);
      if (LEGAL_FROM[ev.type].includes(from)) {
        const after = transitionTask(before, ev, AT);
        assert.equal(after.status, EXPECTED_TO[ev.type], `${ev.type} from ${from}`);
        assert.equal(after.history.length, 1);
        assert.deepEqual(after.history[0]?.from, from);
        assert.equal(after.history[0]?.to, after.status);
        assert.equal(after.updated_at, AT);
        legal++;
      } else {
        assert.throws(
          () => transitionTask(before, ev, AT),
          (e: unknown) =>
            isPipelineError(e) &&
            e.code === 'illegal-transition' &&
            e.message.includes(from) &&
            e.message.includes(ev.type),
          `${ev.type} from ${from} must be illegal`,
        );
        illegal++;
      }
      assert.equal(JSON.stringify(before), frozen, 'the input task is never modified');
    }
  }
  assert.ok(legal > 0 && illegal > 0);
  assert.equal(legal + illegal, TASK_STATUSES.length * EVENTS.length);
});

test('done and cancelled are final', () => {
  for (const from of ['done', 'cancelled'] as const) {
    for (const ev of EVENTS) assert.throws(() => transitionTask(task(from), ev, AT));
  }
});

test('assign records the agent and the attempt, and refuses an attempt that is not newer', () => {
  const t = transitionTask(task('queued', { attempt: 4 }), { type: 'assign', agent: 'arch-1', attempt: 5 }, AT);
  assert.equal(t.assigned_to, 'arch-1');
  assert.equal(t.attempt, 5);
  assert.equal(t.history[0]?.agent, 'arch-1');
  assert.throws(() =>
    transitionTask(task('queued', { attempt: 4 }), { type: 'assign', agent: 'arch-1', attempt: 4 }, AT),
  );
});

test('complete moves to the next stage, or to merging after the last stage, and forgets failures', () => {
  const next = transitionTask(task('working'), { type: 'complete', nextStage: 'supervisor' }, AT);
  assert.equal(next.stage, 'supervisor');
  assert.equal(next.status, 'queued');
  assert.equal(next.failures, 0);
  assert.equal(next.assigned_to, null);
  const last = transitionTask(task('working', { stage: 'supervisor' }), { type: 'complete', nextStage: null }, AT);
  assert.equal(last.status, 'merging');
  assert.equal(last.stage, 'supervisor');
});

test('fail counts the failure and sets the backoff; unblock forgets both', () => {
  const f = transitionTask(
    task('working', { failures: 1 }),
    { type: 'fail', reason: 'exit 3', notBefore: '2026-01-02T00:00:05.000Z' },
    AT,
  );
  assert.equal(f.failures, 2);
  assert.equal(f.not_before, '2026-01-02T00:00:05.000Z');
  assert.equal(f.stage, 'implementation');
  const b = transitionTask(f, { type: 'block', reason: 'retries ran out' }, AT);
  assert.equal(b.blocked_reason, 'retries ran out');
  const u = transitionTask(b, { type: 'unblock' }, AT);
  assert.equal(u.failures, 0);
  assert.equal(u.not_before, null);
  assert.equal(u.blocked_reason, null);
  assert.equal(u.stage, 'implementation', 'an unblocked task resumes at the stage where it stopped');
});

test('requeue counts no failure; with notBefore it holds the task back, and the journal record keeps it', () => {
  const plain = transitionTask(task('working'), { type: 'requeue', reason: 'forced switch' }, AT);
  assert.deepEqual([plain.status, plain.failures, plain.not_before, plain.attempt], ['queued', 1, null, 2]);
  const event: TaskEvent = { type: 'requeue', reason: 'a git lock is held', notBefore: '2026-01-02T00:00:02.000Z' };
  const held = transitionTask(task('working'), event, AT);
  assert.deepEqual([held.status, held.failures, held.not_before], ['queued', 1, '2026-01-02T00:00:02.000Z']);
  assert.equal(held.history[0]?.note, 'a git lock is held');
  const record = { type: 'task.transition', id: 'TASK-001', event, at: AT };
  assert.deepEqual(stateRecordSchema.parse(JSON.parse(JSON.stringify(record))), record);
});

test('changes requested and merge conflicts go back to the rework stage with the reason in history', () => {
  const c = transitionTask(
    task('working', { stage: 'supervisor' }),
    { type: 'changes_requested', reworkStage: 'implementation', reason: 'add tests' },
    AT,
  );
  assert.equal(c.stage, 'implementation');
  assert.equal(c.history[0]?.note, 'add tests');
  const m = transitionTask(
    task('merging', { stage: 'supervisor' }),
    { type: 'conflict', reworkStage: 'implementation', files: ['a.ts', 'b.ts'] },
    AT,
  );
  assert.equal(m.stage, 'implementation');
  assert.match(m.history[0]?.note ?? '', /a\.ts, b\.ts/);
});

test('merged records the commit', () => {
  const d = transitionTask(task('merging'), { type: 'merged', commit: 'deadbeef' }, AT);
  assert.equal(d.status, 'done');
  assert.equal(d.merged_commit, 'deadbeef');
});
