import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../../../src/engine/model/configSchema';
import { emptyState } from '../../../src/engine/model/schema';
import { applyRecord } from '../../../src/engine/model/stateRecords';
import { buildTasks } from '../../../src/engine/model/taskFactory';
import { isPipelineError } from '../../../src/engine/errors';

const config = configSchema.parse({});
const AT = '2026-01-01T00:00:00.000Z';

function add(state: ReturnType<typeof emptyState>, specs: Parameters<typeof buildTasks>[0]) {
  const tasks = buildTasks(specs, state, config, AT);
  for (const task of tasks) applyRecord(state, { type: 'task.added', task });
  return tasks.map((t) => t.id);
}

test('generated ids count up from TASK-001 and skip ids that are taken', () => {
  const s = emptyState();
  assert.deepEqual(add(s, [{ spec: { title: 'a' } }, { spec: { title: 'b' } }]), ['TASK-001', 'TASK-002']);
  assert.deepEqual(add(s, [{ spec: { id: 'TASK-003', title: 'explicit' } }]), ['TASK-003']);
  assert.deepEqual(add(s, [{ spec: { title: 'c' } }]), ['TASK-004']);
});

test('imported or explicit ids of another prefix or number do not make generated ids jump', () => {
  const s = emptyState();
  add(s, [
    { spec: { id: 'TM-10', title: 'imported' } },
    { spec: { id: 'FIX-7', title: 'explicit' } },
    { spec: { id: 'TM-10.2', title: 'subtask' } },
  ]);
  assert.deepEqual(add(s, [{ spec: { title: 'next' } }]), ['TASK-001']);
  add(s, [{ spec: { id: 'TASK-005', title: 'ahead' } }]);
  assert.deepEqual(
    add(s, [{ spec: { title: 'x' } }, { spec: { title: 'y' } }, { spec: { title: 'z' } }, { spec: { title: 'w' } }]),
    ['TASK-002', 'TASK-003', 'TASK-004', 'TASK-006'],
  );
});

test('a duplicate id and an invalid task are refused with the place named, and nothing is built', () => {
  const s = emptyState();
  add(s, [{ spec: { id: 'TASK-001', title: 'a' } }]);
  assert.throws(
    () => buildTasks([{ spec: { id: 'TASK-001', title: 'again' }, source: 'tasks.json [3]' }], s, config, AT),
    (e: unknown) => isPipelineError(e) && e.code === 'duplicate-id' && e.details.where === 'tasks.json [3]',
  );
  assert.throws(
    () => buildTasks([{ spec: { title: '  ' }, source: 'arguments' }], s, config, AT),
    (e: unknown) => isPipelineError(e) && e.code === 'invalid-task' && /title/.test(e.message),
  );
  assert.throws(
    () => buildTasks([{ spec: { title: 'x', prerequisites: ['not an id'] } }], s, config, AT),
    (e: unknown) => isPipelineError(e) && e.code === 'invalid-task' && /prerequisites\[0\]/.test(e.message),
  );
});
