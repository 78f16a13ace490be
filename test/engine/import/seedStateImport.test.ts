import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectAndParse, importFile } from '../../../src/engine/import/taskImport';
import {
  assertPrerequisitesFirst,
  fixture,
  importErrorOf,
  importRejection,
  task,
  warningMatching,
} from './importTestKit';

/** The seed's state JSON: its statuses, its queues, and the example it gives. */

const SEED_STATE = fixture('seed-state.json');

/** The state example of the seed document (000_616263fa1ad16fcf.txt, "State Management"), verbatim. */
const SEED_EXAMPLE = `{
  "version": "1.0.0",
  "orchestration_mode": "parallel",
  "mode": "production",
  "tasks": {
    "TASK-001": {
      "id": "TASK-001",
      "status": "arch_wip",
      "assigned_to": "architect",
      "created_at": "2024-07-24T10:00:00Z"
    }
  },
  "agents": {
    "architect": {
      "status": "working",
      "current_task": "TASK-001"
    }
  },
  "queues": {
    "unassigned": ["TASK-002", "TASK-003"],
    "completed": []
  }
}`;

function state(tasks: Record<string, unknown>, queues: Record<string, string[]> = {}): string {
  return JSON.stringify({ version: '1.0.0', tasks, queues });
}

void test("the seed's own example imports: the task in flight and the two only listed in a queue", () => {
  const r = detectAndParse(SEED_EXAMPLE, 'state.json');
  assert.equal(r.format, 'seed-state');
  assert.equal(r.tag, undefined);
  assert.deepEqual(
    r.tasks.map((t) => [t.spec.id, t.spec.title, t.status, t.source]),
    [
      ['TASK-001', 'TASK-001', 'pending', 'tasks.TASK-001'],
      ['TASK-002', 'TASK-002', 'pending', 'queues.unassigned[0]'],
      ['TASK-003', 'TASK-003', 'pending', 'queues.unassigned[1]'],
    ],
  );
  warningMatching(r, /agents and modes .* are not imported/);
  warningMatching(
    r,
    /Listed in a queue but not in "tasks", imported with their id as title \(2\): TASK-002, TASK-003\./,
  );
  warningMatching(
    r,
    /Work in progress in the state \(such as arch_wip\), imported as pending.*\(1\): TASK-001 \(arch_wip\)\./,
  );
  warningMatching(r, /Tasks without a title, titled with their id \(1\): TASK-001\./);
});

void test('the seed statuses: work in flight restarts as pending, completed is done, blocked keeps a reason', async () => {
  const r = await importFile(SEED_STATE);
  const status = (id: string) => [task(r, id).status, task(r, id).reason];
  assert.deepEqual(status('TASK-001'), ['pending', undefined]); // arch_wip
  assert.deepEqual(status('TASK-004'), ['pending', undefined]); // test_wip
  assert.deepEqual(status('TASK-005'), ['pending', undefined]); // impl_wip
  assert.deepEqual(status('TASK-006'), ['pending', undefined]); // review
  assert.deepEqual(status('TASK-007'), ['done', undefined]); // completed
  assert.deepEqual(status('TASK-008'), ['blocked', 'Imported with status "blocked".']);
  assert.deepEqual(status('TASK-010'), ['pending', undefined]); // unassigned
  // No status: from the queue. The seed's "blocked" queue is "Dependency blocked": pending.
  assert.deepEqual(status('TASK-009'), ['pending', undefined]);
  assert.deepEqual(status('TASK-002'), ['pending', undefined]);
  warningMatching(
    r,
    /Work in progress in the state .*\(4\): TASK-001 \(arch_wip\), TASK-004 \(test_wip\), TASK-005 \(impl_wip\), TASK-006 \(review\)\./,
  );
  assertPrerequisitesFirst(r);
});

void test('the seed fields: title, description, prerequisites, priority, paths and labels when present', async () => {
  const r = await importFile(SEED_STATE);
  assert.deepEqual(task(r, 'TASK-004').spec, {
    id: 'TASK-004',
    title: 'Add the export endpoint',
    description: 'CSV and JSON export of the report.',
    prerequisites: ['TASK-001'],
    priority: 'high',
    paths: ['src/export/**'],
    labels: [],
  });
  assert.equal(task(r, 'TASK-008').spec.priority, 'critical');
  assert.equal(task(r, 'TASK-010').spec.priority, 'medium');
  assert.deepEqual(task(r, 'TASK-010').spec.labels, ['docs']);
  warningMatching(r, /Unknown priority, imported as medium \(1\): TASK-010 \("p2"\)\./);
  // A prerequisite only listed in a queue is a task like the others.
  assert.deepEqual(task(r, 'TASK-009').spec.prerequisites, ['TASK-002']);
});

void test('a status from the queue: completed → done, others → pending; status and queue disagreeing → the status, with a warning', () => {
  const r = detectAndParse(
    state(
      {
        'TASK-1': { title: 'a' },
        'TASK-2': { title: 'b' },
        'TASK-3': { title: 'c', status: 'completed' },
        'TASK-4': { title: 'd', status: 'unassigned' },
      },
      { completed: ['TASK-1', 'TASK-4'], implementation: ['TASK-2', 'TASK-3'] },
    ),
    'q.json',
  );
  assert.deepEqual(
    r.tasks.map((t) => [t.spec.id, t.status]),
    [
      ['TASK-1', 'done'],
      ['TASK-2', 'pending'],
      ['TASK-3', 'done'],
      ['TASK-4', 'pending'],
    ],
  );
  warningMatching(
    r,
    /Status and queue disagree; the status counts \(2\): TASK-3 \(status completed, queue implementation\), TASK-4 \(status unassigned, queue completed\)\./,
  );
});

void test('a blocked_reason is kept; our own statuses (queued, working, done, cancelled) are understood too', () => {
  const r = detectAndParse(
    state({
      'TASK-1': { title: 'a', status: 'blocked', blocked_reason: 'needs a database password' },
      'TASK-2': { title: 'b', status: 'queued' },
      'TASK-3': { title: 'c', status: 'working' },
      'TASK-4': { title: 'd', status: 'done' },
      'TASK-5': { title: 'e', status: 'cancelled' },
      'TASK-6': { title: 'f', status: 'custom_wip' },
      'TASK-7': { title: 'g', status: 'frozen' },
    }),
    'own.json',
  );
  assert.deepEqual(
    r.tasks.map((t) => [t.spec.id, t.status, t.reason]),
    [
      ['TASK-1', 'blocked', 'needs a database password'],
      ['TASK-2', 'pending', undefined],
      ['TASK-3', 'pending', undefined],
      ['TASK-4', 'done', undefined],
      ['TASK-5', 'cancelled', undefined],
      ['TASK-6', 'pending', undefined],
      ['TASK-7', 'pending', undefined],
    ],
  );
  warningMatching(r, /Unknown status, imported as pending \(1\): TASK-7 \("frozen"\)\./);
});

void test('a task in the blocked queue without prerequisites is named; --prefix and --tag do not apply', () => {
  const r = detectAndParse(state({ 'TASK-1': { title: 'a' } }, { blocked: ['TASK-1'] }), 'b.json', {
    prefix: 'TM',
    tag: 'x',
  });
  assert.equal(task(r, 'TASK-1').status, 'pending');
  warningMatching(r, /In the "blocked" queue .* with no prerequisites listed, imported as pending \(1\): TASK-1\./);
  warningMatching(r, /--prefix applies to Task Master files/);
  warningMatching(r, /--tag applies to Task Master files and was ignored/);
});

void test('bad ids, unknown prerequisites and duplicate keys are errors that name the place', () => {
  let e = importErrorOf(() => detectAndParse(state({ 'task 1': { title: 'a' } }), 's.json'), 's.json');
  assert.equal(e.details.where, 'tasks["task 1"]');
  assert.match(e.message, /"task 1" is not a valid task id/);

  e = importErrorOf(() => detectAndParse(state({ 'TASK-1': { id: 'TASK-2', title: 'a' } }), 's.json'), 's.json');
  assert.equal(e.details.where, 'tasks.TASK-1.id');

  e = importErrorOf(() => detectAndParse(state({}, { unassigned: ['TASK-1', '../etc'] }), 's.json'), 's.json');
  assert.equal(e.details.where, 'queues.unassigned[1]');

  e = importErrorOf(
    () => detectAndParse(state({ 'TASK-1': { title: 'a', prerequisites: ['TASK-9'] } }), 's.json'),
    's.json',
  );
  assert.equal(e.details.where, 'tasks.TASK-1.prerequisites[0]');
  assert.match(e.message, /TASK-1 depends on "TASK-9", which is not a task in s\.json/);

  e = importErrorOf(
    () => detectAndParse(state({ 'TASK-1': { title: 'a', labels: ['Not A Name'] } }), 's.json'),
    's.json',
  );
  assert.equal(e.details.where, 'tasks.TASK-1.labels[0]');

  e = importErrorOf(() => detectAndParse(state({ 'TASK-1': { title: 'a', status: 7 } }), 's.json'), 's.json');
  assert.equal(e.details.where, 'tasks.TASK-1.status');
});

void test('a task id twice in "tasks" is an error with its line and column, not a silent loss', async () => {
  const file = fixture('malformed', 'duplicate-seed-id.json');
  const err = await importRejection(importFile(file), file);
  assert.equal(err.details.where, '6:5');
  assert.match(err.message, /Duplicate key "TASK-002" in tasks at line 6, column 5/);
});

void test('a state with a prerequisite cycle: accepted among completed tasks, refused with one that is not', () => {
  const state = (statusB: string) =>
    JSON.stringify({
      tasks: {
        'TASK-001': { id: 'TASK-001', status: 'completed', prerequisites: ['TASK-002'] },
        'TASK-002': { id: 'TASK-002', status: statusB, prerequisites: ['TASK-001'] },
        'TASK-003': { id: 'TASK-003', status: 'unassigned', prerequisites: ['TASK-002'] },
      },
    });
  const done = detectAndParse(state('completed'), 'state.json');
  assert.deepEqual(
    done.tasks.map((t) => `${t.spec.id}:${t.status}:${t.spec.prerequisites.join('+')}`),
    ['TASK-001:done:', 'TASK-002:done:TASK-001', 'TASK-003:pending:TASK-002'],
  );
  assert.match(warningMatching(done, /cycles/), /\(1\): TASK-001, TASK-002 \(dropped TASK-001 → TASK-002\)\.$/);

  const e = importErrorOf(() => detectAndParse(state('unassigned'), 'state.json'), 'state.json');
  assert.equal(e.details.where, 'tasks.TASK-002.prerequisites');
  assert.match(
    e.message,
    /in state\.json form a cycle: TASK-002 \(tasks\.TASK-002\) → TASK-001 \(tasks\.TASK-001\) → TASK-002\. Each waits for the next, and TASK-002 is not done/,
  );
});
