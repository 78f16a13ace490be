import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyState, type PipelineState } from '../../../src/engine/model/schema';
import { applyRecord, type StateRecord } from '../../../src/engine/model/stateRecords';
import { checkRecreation, recordsRecreating } from '../../../src/engine/model/stateImport';
import { newTask } from '../../support/taskFixtures';

/**
 * A state moved to another store as the records that recreate it: the replay must give the same
 * state, numbering included, whatever history made it (removed tasks, explicit ids).
 */

function stateOf(records: StateRecord[]): PipelineState {
  const s = emptyState();
  for (const r of records) applyRecord(s, r);
  return s;
}

const at = '2026-01-01T00:00:00.000Z';

void test('removed tasks and explicit ids: the replay numbers new tasks as the source would', () => {
  const source = stateOf([
    { type: 'task.added', task: newTask('TASK-001', 0) },
    { type: 'task.added', task: newTask('TASK-002', 1) },
    { type: 'task.added', task: newTask('FIX-7', 2) },
    { type: 'task.added', task: newTask('TASK-003', 3, { prerequisites: ['TASK-001'] }) },
    { type: 'task.removed', id: 'TASK-002', at },
    { type: 'task.added', task: newTask('TASK-004', 4) },
    { type: 'task.added', task: newTask('TASK-005', 5) },
    { type: 'task.removed', id: 'TASK-005', at },
    { type: 'mode.rollout', mode: 'pilot' },
    { type: 'decision', text: 'would start TASK-001', at },
  ]);
  assert.equal(source.next_task_number, 6);
  const records = recordsRecreating(source, 'TASK');
  assert.deepEqual(checkRecreation(source, records), [], 'no note: the numbering came along');
  assert.deepEqual(stateOf(records), source);
  // The removed numbers were taken and given back: no task of theirs is left.
  assert.equal(Object.keys(stateOf(records).tasks).sort().join(' '), 'FIX-7 TASK-001 TASK-003 TASK-004');
});

void test('a state the records cannot recreate is refused, nothing written', () => {
  const source = stateOf([{ type: 'task.added', task: newTask('TASK-001', 0) }]);
  const records = recordsRecreating(source, 'TASK');
  const tampered = structuredClone(source);
  tampered.agents['ghost'] = {
    id: 'ghost',
    role: 'tester',
    command: 'scripted',
    status: 'idle',
    current_task: null,
    since: null,
    created_at: at,
  };
  assert.throws(() => checkRecreation(tampered, records), /do not recreate it \(they differ in agents\)/);
});
