import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupedRowMemory, RowMemory, type RowContent } from '../../src/views/treeRows';

/**
 * What the trees redraw after a change: only the rows that changed, the groups that gained or lost a
 * row, and the whole tree only when a group appears or goes (VS Code cannot add a row under a parent
 * it was never told of).
 */

const row = (source: object, text = ''): RowContent => ({ source, text });

void test('a row redraws when its object is replaced or its words change, and not otherwise', () => {
  const memory = new RowMemory();
  const a = { id: 'a' };
  const b = { id: 'b' };
  assert.deepEqual(
    memory.update([
      ['a', row(a, 'idle')],
      ['b', row(b, 'idle')],
    ]),
    [],
    'rows seen the first time are new, not changed',
  );
  assert.deepEqual(
    memory.update([
      ['a', row(a, 'idle')],
      ['b', row(b, 'idle')],
    ]),
    [],
  );
  const a2 = { id: 'a' };
  assert.deepEqual(
    memory.update([
      ['a', row(a2, 'idle')],
      ['b', row(b, 'idle')],
    ]),
    ['a'],
  );
  assert.deepEqual(
    memory.update([
      ['a', row(a2, 'idle')],
      ['b', row(b, 'working · 1m')],
    ]),
    ['b'],
  );
  // A row that went and came back is new again.
  assert.deepEqual(memory.update([['a', row(a2, 'idle')]]), []);
  assert.deepEqual(
    memory.update([
      ['a', row(a2, 'idle')],
      ['b', row(b, 'working · 2m')],
    ]),
    [],
  );
});

void test('a row drawn from a new but equal object (a state read again) does not redraw when its detail is the same', () => {
  const memory = new RowMemory();
  const detail = (title: string) => () => JSON.stringify([title, 'pending']);
  memory.update([['TASK-001', { source: { id: 1 }, text: 'pending', detail: detail('Parser') }]]);
  assert.deepEqual(memory.update([['TASK-001', { source: { id: 1 }, text: 'pending', detail: detail('Parser') }]]), []);
  assert.deepEqual(
    memory.update([['TASK-001', { source: { id: 1 }, text: 'pending', detail: detail('Input parser') }]]),
    ['TASK-001'],
    'a new title is a change the words beside the row do not show',
  );
});

void test('the Tasks tree redraws from the root first, then only the task that changed within its group', () => {
  const memory = new GroupedRowMemory();
  const t1 = { id: 'TASK-001' };
  const t2 = { id: 'TASK-002' };
  const groups = [
    { id: 'stage:architecture', label: 'Architecture (architect)', tasks: ['TASK-001'] },
    { id: 'ready', label: 'Ready to start', tasks: ['TASK-002'] },
  ];
  assert.deepEqual(
    memory.update(groups, [
      ['TASK-001', row(t1, 'queued')],
      ['TASK-002', row(t2, 'pending')],
    ]),
    {
      all: true,
    },
  );
  assert.equal(
    memory.update(groups, [
      ['TASK-001', row(t1, 'queued')],
      ['TASK-002', row(t2, 'pending')],
    ]),
    undefined,
  );
  // TASK-001 is assigned: same group, new row.
  const t1b = { id: 'TASK-001' };
  assert.deepEqual(
    memory.update(groups, [
      ['TASK-001', row(t1b, 'working')],
      ['TASK-002', row(t2, 'pending')],
    ]),
    {
      all: false,
      groups: [],
      rows: ['TASK-001'],
    },
  );
});

void test('a task that moves between groups redraws both groups; a group that appears redraws the root', () => {
  const memory = new GroupedRowMemory();
  const t1 = { id: 'TASK-001' };
  const t2 = { id: 'TASK-002' };
  const before = [
    { id: 'stage:architecture', label: 'Architecture (architect)', tasks: ['TASK-001', 'TASK-002'] },
    { id: 'stage:test', label: 'Test (tester)', tasks: ['TASK-003'] },
  ];
  const rows = (a: object): [string, RowContent][] => [
    ['TASK-001', row(a)],
    ['TASK-002', row(t2)],
  ];
  memory.update(before, rows(t1));
  const moved = [
    { id: 'stage:architecture', label: 'Architecture (architect)', tasks: ['TASK-002'] },
    { id: 'stage:test', label: 'Test (tester)', tasks: ['TASK-001', 'TASK-003'] },
  ];
  const t1b = { id: 'TASK-001' };
  assert.deepEqual(memory.update(moved, rows(t1b)), {
    all: false,
    groups: ['stage:architecture', 'stage:test'],
    rows: ['TASK-001'],
  });
  const merging = [...moved, { id: 'merging', label: 'Merging', tasks: ['TASK-004'] }];
  assert.deepEqual(memory.update(merging, rows(t1b)), { all: true });
  // After clear(), the next update redraws from the root.
  memory.clear();
  assert.deepEqual(memory.update(merging, rows(t1b)), { all: true });
});
