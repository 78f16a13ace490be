import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  cli,
  fails,
  json,
  logicalState,
  mentions,
  ok,
  requireCli,
  shown,
  stateFiles,
  status,
  withRepo,
  type StatusJson,
} from './cliKit';

/** `pipeline task edit`, `pipeline task remove` and `pipeline next`, as a user runs them. */

requireCli();

type TaskJson = StatusJson['tasks'][string] & { description: string; paths: string[] };

async function task(dir: string, id: string): Promise<TaskJson> {
  return json<TaskJson>(dir, 'task', 'show', id, '--json');
}

test('task edit replaces each field it names, keeps the others, and the scheduler follows the new prerequisites', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Design the API', '--paths', 'src/api/**', '--label', 'backend');
    await ok(dir, 'task', 'add', 'Write the tests', '--depends-on', 'TASK-001');
    await ok(dir, 'task', 'add', 'Docs');

    assert.equal(
      (
        await ok(
          dir,
          'task',
          'edit',
          'TASK-002',
          '--title',
          'Write the API tests',
          '--priority',
          'high',
          '--labels',
          'pilot,tests',
          '--paths',
          'test/api/**,src/api/**',
          '--depends-on',
          'TASK-003,TASK-001,TASK-003',
        )
      ).trim(),
      'Edited TASK-002: title "Write the API tests"; priority "high"; paths test/api/**, src/api/**; labels pilot, tests; prerequisites TASK-003, TASK-001.',
    );
    const t2 = await task(dir, 'TASK-002');
    assert.deepEqual(
      [t2.title, t2.priority, t2.labels, t2.paths, t2.prerequisites, t2.status],
      [
        'Write the API tests',
        'high',
        ['pilot', 'tests'],
        ['test/api/**', 'src/api/**'],
        ['TASK-003', 'TASK-001'],
        'pending',
      ],
      'each named field replaced; the prerequisites without the duplicate',
    );
    mentions(await ok(dir, 'task', 'show', 'TASK-002'), 'TASK-003 (pending at architect)');

    // A description from a file; '' clears a list; fields not named stay as they were.
    const desc = join(dir, 'desc.md');
    await writeFile(desc, '# The design\n\nOne endpoint per resource.\n');
    assert.equal(
      (await ok(dir, 'task', 'edit', 'TASK-001', '--description-file', desc, '--paths', '', '--labels', '')).trim(),
      'Edited TASK-001: description; paths (none); labels (none).',
    );
    const t1 = await task(dir, 'TASK-001');
    assert.deepEqual(
      [t1.title, t1.description, t1.paths, t1.labels],
      ['Design the API', '# The design\n\nOne endpoint per resource.\n', [], []],
    );

    // With its prerequisites cleared, TASK-002 is ready, and ahead of TASK-001 by its priority.
    await ok(dir, 'task', 'edit', 'TASK-002', '--depends-on', '');
    assert.deepEqual((await task(dir, 'TASK-002')).prerequisites, []);
    mentions(await ok(dir, 'next'), 'TASK-002: Write the API tests', 'the highest priority (high) of the 3 tasks');
  });
});

test('task edit refuses a cycle, an unknown prerequisite or task, a bad priority, title, path or file, and nothing at all; none changes anything', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    await ok(dir, 'task', 'add', 'Second', '--depends-on', 'TASK-001');
    await ok(dir, 'task', 'add', 'Third', '--depends-on', 'TASK-002');
    const before = await logicalState(dir);
    const files = await stateFiles(dir);

    const cycle = await fails(dir, 1, 'task', 'edit', 'TASK-001', '--depends-on', 'TASK-003');
    mentions(
      cycle,
      'would form a cycle',
      'TASK-001 → TASK-003 → TASK-002 → TASK-001',
      'at: TASK-001.prerequisites',
      'fix:',
    );
    mentions(
      await fails(dir, 1, 'task', 'edit', 'TASK-001', '--depends-on', 'TASK-001'),
      'Task TASK-001 cannot wait for itself',
      'fix: Leave TASK-001 out of its own --depends-on',
    );
    // The id blamed is the one that does not exist, and the task is the one being edited.
    mentions(
      await fails(dir, 1, 'task', 'edit', 'TASK-002', '--depends-on', 'TASK-001,TASK-999'),
      'Task TASK-002 cannot wait for TASK-999: there is no task TASK-999',
      'fix:',
    );
    mentions(
      await fails(dir, 1, 'task', 'edit', 'TASK-404', '--title', 'x'),
      'Unknown task TASK-404',
      'pipeline task list',
    );
    mentions(
      await fails(dir, 2, 'task', 'edit', 'TASK-001', '--priority', 'urgent'),
      'Unknown priority "urgent"',
      'at: --priority',
      'critical, high, medium, low',
    );
    mentions(await fails(dir, 1, 'task', 'edit', 'TASK-001', '--title', '   '), 'title', 'at: --title');
    mentions(
      await fails(dir, 2, 'task', 'edit', 'TASK-001', '--paths', 'src/**,/etc/**'),
      'Invalid task path: "/etc/**" is not relative to the repository root',
      'at: --paths',
      'fix:',
    );
    mentions(
      await fails(dir, 2, 'task', 'edit', 'TASK-001', '--paths', '../other/**'),
      '"../other/**" leaves the repository',
    );
    const missing = join(dir, 'no-such.md');
    const noFile = await fails(dir, 2, 'task', 'edit', 'TASK-001', '--description-file', missing);
    mentions(noFile, 'Cannot read the description file', `file: ${missing} (--description-file)`, 'fix:');
    assert.doesNotMatch(noFile, /unexpected error|\n\s+at /, 'no stack trace');
    mentions(
      await fails(dir, 2, 'task', 'edit', 'TASK-001', '--description', 'a', '--description-file', missing),
      '--description or --description-file, not both',
    );
    mentions(await fails(dir, 2, 'task', 'edit', 'TASK-001'), 'Nothing to change in TASK-001', '--depends-on');
    mentions(await fails(dir, 2, 'task', 'edit', 'task one', '--title', 'x'), 'Invalid task id "task one"');

    assert.deepEqual(await logicalState(dir), before, 'nothing was changed');
    assert.deepEqual(await stateFiles(dir), files, 'no journal record was written');
  });
});

test('task remove takes out a task not started; one others wait for only with --force, which releases them', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Keep');
    await ok(dir, 'task', 'add', 'Drop', '--depends-on', 'TASK-001');
    await ok(dir, 'task', 'add', 'Needs drop', '--depends-on', 'TASK-001,TASK-002');
    await ok(dir, 'task', 'add', 'Also needs drop', '--depends-on', 'TASK-002');
    await ok(dir, 'task', 'add', 'Blocked alone');
    await ok(dir, 'task', 'block', 'TASK-005', 'not yet');
    const before = await logicalState(dir);

    const refused = await fails(dir, 1, 'task', 'remove', 'TASK-002');
    mentions(
      refused,
      'TASK-002 cannot be removed: TASK-003, TASK-004 wait for it',
      '--force',
      'pipeline task edit TASK-003',
    );
    mentions(await fails(dir, 1, 'task', 'remove', 'TASK-404'), 'Unknown task TASK-404');
    assert.deepEqual(await logicalState(dir), before, 'a refused removal changes nothing');

    const forced = await ok(dir, 'task', 'remove', 'TASK-002', '--force');
    assert.equal(
      forced,
      'Removed TASK-002: Drop\nTASK-003, TASK-004 no longer wait for it (taken out of their prerequisites).\n',
    );
    // A blocked task no agent has worked on can go too.
    assert.equal(await ok(dir, 'task', 'remove', 'TASK-005'), 'Removed TASK-005: Blocked alone\n');

    const s = await status(dir);
    assert.deepEqual(Object.keys(s.tasks).sort(), ['TASK-001', 'TASK-003', 'TASK-004']);
    assert.deepEqual(s.tasks['TASK-003']!.prerequisites, ['TASK-001']);
    assert.deepEqual(s.tasks['TASK-004']!.prerequisites, []);
    mentions(await fails(dir, 1, 'task', 'show', 'TASK-002'), 'Unknown task TASK-002');
    // TASK-004 waited only for the removed task: it is ready now. Ids are not reused.
    mentions(await ok(dir, 'next'), 'TASK-001: Keep', 'of the 2 tasks ready to enter');
    assert.equal((await ok(dir, 'task', 'add', 'After')).trim(), 'Added TASK-006: After');
  });
});

interface NextJson {
  next: {
    id: string;
    title: string;
    priority: string;
    status: string;
    stage: string;
    why: string;
    explanation: string;
  } | null;
  ready: number;
  waiting: { id: string; status: string; explanation: string }[];
  notStarted: number;
  inFlight: number;
}

test('next: the task that enters next and why (priority, then age); what holds the best back when none is ready; --json', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    assert.equal(
      (await ok(dir, 'next')).trim(),
      'No task is waiting to enter the pipeline. Add one with `pipeline task add <title>`.',
    );
    assert.deepEqual(await json<NextJson>(dir, 'next', '--json'), {
      next: null,
      ready: 0,
      waiting: [],
      notStarted: 0,
      inFlight: 0,
    });

    await ok(dir, 'task', 'add', 'Base');
    await ok(dir, 'task', 'add', 'Older high', '--priority', 'high');
    await ok(dir, 'task', 'add', 'Waits', '--depends-on', 'TASK-001', '--priority', 'critical');
    await ok(dir, 'task', 'add', 'Newer high', '--priority', 'high');
    assert.equal(
      await ok(dir, 'next'),
      [
        'TASK-002: Older high',
        '  priority: high',
        '  why:      the highest priority (high) of the 3 tasks ready to enter, and the oldest of the 2 with that priority',
        '  now:      TASK-002 has all its prerequisites merged and enters the pipeline at the architect stage.',
        '',
      ].join('\n'),
    );
    const n = await json<NextJson>(dir, 'next', '--json');
    assert.equal(n.next?.id, 'TASK-002');
    assert.deepEqual([n.ready, n.notStarted, n.inFlight, n.waiting], [3, 4, 0, []]);

    // Nothing ready: the best candidates, best first, each with what holds it back.
    for (const id of ['TASK-001', 'TASK-002', 'TASK-004']) await ok(dir, 'task', 'block', id, `waiting on ${id}`);
    const none = await ok(dir, 'next');
    mentions(
      none,
      'No task is ready to enter the pipeline (4 not started). What holds back the best candidates:',
      'TASK-003 (critical) Waits',
      'TASK-003 waits for its prerequisites to be merged: TASK-001 (blocked: waiting on TASK-001)',
      'TASK-002 (high) Older high',
      'waiting on TASK-002',
    );
    const order = ['TASK-003', 'TASK-002', 'TASK-004'].map((id) => none.indexOf(`  ${id} (`));
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      `best first:\n${none}`,
    );
    assert.doesNotMatch(none, /^ {2}TASK-001 \(/m, 'three candidates by default, the lowest priority left out');
    const one = await json<NextJson>(dir, 'next', '--json', '--limit', '1');
    assert.deepEqual(
      [one.next, one.ready, one.waiting.map((w) => [w.id, w.status])],
      [null, 0, [['TASK-003', 'pending']]],
    );

    for (const bad of ['0', 'two', '1.5']) {
      const r = await cli(dir, ['next', '--limit', bad]);
      assert.equal(r.code, 2, shown(r));
      mentions(r.stderr, '--limit takes a whole number of at least 1', `"${bad}"`);
    }
  });
});

test('next in pilot mode: only a task with the pilot label enters; the others say why they would not', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Everyday', '--priority', 'critical');
    await ok(dir, 'task', 'add', 'Try it', '--label', 'pilot');
    await ok(dir, 'mode', 'rollout', 'pilot');
    const n = await json<NextJson>(dir, 'next', '--json');
    assert.deepEqual([n.next?.id, n.ready, n.notStarted], ['TASK-002', 1, 2]);
    assert.equal(n.next?.why, 'the only task ready to enter the pipeline');

    await ok(dir, 'task', 'edit', 'TASK-002', '--labels', '');
    const none = await ok(dir, 'next');
    mentions(none, 'No task is ready', 'TASK-001 (critical) Everyday', 'it lacks the "pilot" label');
  });
});
