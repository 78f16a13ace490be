import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PipelineError } from '../../../src/engine/errors';
import { TASK_ID_PATTERN } from '../../../src/engine/model/ids';
import { detectAndParse, importFile } from '../../../src/engine/import/taskImport';
import {
  assertPrerequisitesFirst,
  fixture,
  fixtureText,
  importErrorOf,
  importRejection,
  task,
  warningMatching,
  withTempDir,
} from './importTestKit';

/**
 * Task Master's tasks.json, tagged (v0.17+) and untagged, from fixtures written in the shapes Task
 * Master itself writes: numeric ids from the older scripts, string ids from tm-core.
 */

const TAGGED = fixture('taskmaster-tagged.json');
const LEGACY = fixture('taskmaster-legacy.json');

/** A legacy file from a list of tasks, for the small cases. */
function legacy(tasks: unknown[]): string {
  return JSON.stringify({ tasks, metadata: { projectName: 'test' } });
}
function tmTask(id: number | string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    title: `Task ${id}`,
    description: '',
    details: '',
    testStrategy: '',
    status: 'pending',
    dependencies: [],
    priority: 'medium',
    subtasks: [],
    ...fields,
  };
}

void test('a tagged file: the master tag by default, ids with the TM prefix, subtasks included', async () => {
  const r = await importFile(TAGGED);
  assert.equal(r.format, 'taskmaster-tagged');
  assert.equal(r.tag, 'master');
  // 10 tasks and 11 subtasks in master; the feature-oauth tag is not imported.
  assert.equal(r.tasks.length, 21);
  assert.deepEqual(
    r.tasks
      .map((t) => t.spec.id)
      .filter((id) => !id.includes('.'))
      .sort((a, b) => Number(a.slice(3)) - Number(b.slice(3))),
    ['TM-1', 'TM-2', 'TM-3', 'TM-4', 'TM-5', 'TM-6', 'TM-7', 'TM-8', 'TM-9', 'TM-10'],
  );
  for (const t of r.tasks) assert.match(t.spec.id, TASK_ID_PATTERN);
  assert.equal(task(r, 'TM-3.2').source, 'master.tasks[2].subtasks[1]');
  assert.equal(task(r, 'TM-8').source, 'master.tasks[7]');
  warningMatching(r, /Only tag "master" was imported; the file also has "feature-oauth" \(3 tasks\)/);
  assertPrerequisitesFirst(r);
});

void test('detectAndParse on the text gives what importFile gives on the file', async () => {
  const fromFile = await importFile(TAGGED);
  const fromText = detectAndParse(await fixtureText('taskmaster-tagged.json'), TAGGED);
  assert.deepEqual(fromText, fromFile);
});

void test('--prefix changes the ids and the prerequisites alike', async () => {
  const r = await importFile(TAGGED, { prefix: 'AUTH' });
  assert.ok(r.tasks.every((t) => t.spec.id.startsWith('AUTH-')));
  assert.deepEqual(task(r, 'AUTH-3.2').spec.prerequisites, ['AUTH-3.1', 'AUTH-1', 'AUTH-2']);
  for (const bad of ['tm', 'T-M', '1TM', 'ABCDEFGHIJKLMNOPQ', '']) {
    assert.throws(
      () => detectAndParse(legacy([tmTask(1)]), 'x.json', { prefix: bad }),
      (e: unknown) => e instanceof PipelineError && e.code === 'usage' && e.details.where === '--prefix',
    );
  }
});

void test('--tag imports another tag; tm-core string ids and a string sibling dependency', async () => {
  const r = await importFile(TAGGED, { tag: 'feature-oauth', prefix: 'OAUTH' });
  assert.equal(r.tag, 'feature-oauth');
  assert.deepEqual(
    r.tasks.map((t) => t.spec.id),
    ['OAUTH-1.1', 'OAUTH-1.2', 'OAUTH-1', 'OAUTH-2', 'OAUTH-3'],
  );
  // tm-core writes subtask dependencies as strings; "1" in task 1's subtask is its sibling 1.1.
  assert.deepEqual(task(r, 'OAUTH-1.2').spec.prerequisites, ['OAUTH-1.1']);
  assert.deepEqual(task(r, 'OAUTH-3').spec.prerequisites, ['OAUTH-1', 'OAUTH-2']);
  assert.equal(task(r, 'OAUTH-3').source, 'feature-oauth.tasks[2]');
  warningMatching(r, /the file also has "master" \(10 tasks\)/);
});

void test('an unknown --tag is an error that lists the tags', async () => {
  const e = await importRejection(importFile(TAGGED, { tag: 'nope' }), TAGGED);
  assert.match(e.message, /Tag "nope" is not in .*; its tags are "master", "feature-oauth"/);
  assert.match(e.details.fix ?? '', /--tag/);
});

void test('without a master tag: the only tag is used, several tags need --tag', () => {
  const one = JSON.stringify({ 'feature-x': { tasks: [tmTask(1)] } });
  const r = detectAndParse(one, 'one.json');
  assert.equal(r.tag, 'feature-x');
  assert.deepEqual(
    r.tasks.map((t) => t.spec.id),
    ['TM-1'],
  );
  warningMatching(r, /no "master" tag; imported its only tag, "feature-x"/);

  const two = JSON.stringify({ a: { tasks: [tmTask(1)] }, b: { tasks: [tmTask(1)] } });
  const e = importErrorOf(() => detectAndParse(two, 'two.json'), 'two.json');
  assert.match(e.message, /no "master" tag, and several others \("a", "b"\)/);
  assert.deepEqual(
    detectAndParse(two, 'two.json', { tag: 'b' }).tasks.map((t) => t.spec.id),
    ['TM-1'],
  );
});

void test("the default tag is Task Master's current tag from .taskmaster/state.json, then config.json", async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, '.taskmaster');
    await mkdir(join(home, 'tasks'), { recursive: true });
    const file = join(home, 'tasks', 'tasks.json');
    await writeFile(file, await fixtureText('taskmaster-tagged.json'));

    // No state: master.
    assert.equal((await importFile(file)).tag, 'master');

    await writeFile(
      join(home, 'config.json'),
      JSON.stringify({ models: {}, global: { defaultTag: 'feature-oauth', logLevel: 'info' } }),
    );
    const fromConfig = await importFile(file);
    assert.equal(fromConfig.tag, 'feature-oauth');
    warningMatching(fromConfig, /current tag in \.taskmaster\/config\.json/);

    await writeFile(
      join(home, 'state.json'),
      JSON.stringify({
        currentTag: 'master',
        lastSwitched: '2025-07-03T10:00:00.000Z',
        branchTagMapping: {},
        migrationNoticeShown: true,
      }),
    );
    assert.equal((await importFile(file)).tag, 'master');

    await writeFile(join(home, 'state.json'), JSON.stringify({ currentTag: 'feature-oauth' }));
    assert.equal((await importFile(file)).tag, 'feature-oauth');
    // An explicit --tag wins over the state.
    assert.equal((await importFile(file, { tag: 'master' })).tag, 'master');

    // A current tag that the file lacks is only a default: master, with a warning.
    await writeFile(join(home, 'state.json'), JSON.stringify({ currentTag: 'deleted-tag' }));
    const fallback = await importFile(file);
    assert.equal(fallback.tag, 'master');
    warningMatching(
      fallback,
      /current tag "deleted-tag" \(from \.taskmaster\/state\.json\) is not in .*; imported tag "master" instead/,
    );

    // An unreadable state is ignored, as Task Master ignores it.
    await writeFile(join(home, 'state.json'), '{ not json');
    assert.equal((await importFile(file)).tag, 'feature-oauth');
  });
});

void test('a legacy file: format, master tag, and --tag other than master refused', async () => {
  const r = await importFile(LEGACY);
  assert.equal(r.format, 'taskmaster-legacy');
  assert.equal(r.tag, 'master');
  assert.deepEqual(
    r.tasks.map((t) => t.spec.id),
    ['TM-1', 'TM-2', 'TM-3', 'TM-4.1', 'TM-4.2', 'TM-4'],
  );
  assert.equal(task(r, 'TM-4.2').source, 'tasks[3].subtasks[1]');
  assert.equal((await importFile(LEGACY, { tag: 'master' })).tasks.length, 6);
  const e = await importRejection(importFile(LEGACY, { tag: 'feature-x' }), LEGACY);
  assert.match(e.message, /has no tags/);
});

void test('older legacy files with "meta" import; other top-level keys are named in a warning', () => {
  const r = detectAndParse(
    JSON.stringify({ meta: { projectName: 'old', version: '1.0.0' }, tasks: [tmTask(1)], extra: true }),
    'old.json',
  );
  assert.equal(r.format, 'taskmaster-legacy');
  assert.deepEqual(r.warnings, ['Ignored top-level keys next to "tasks": extra.']);
});

void test('subtask dependencies: numeric sibling, "parent.sub" strings, cross-parent, and the add-subtask form', async () => {
  const r = await importFile(TAGGED);
  // Numeric 1 in task 3's subtask 2 is the sibling 3.1; the parent's dependencies (1, 2) are inherited.
  assert.deepEqual(task(r, 'TM-3.2').spec.prerequisites, ['TM-3.1', 'TM-1', 'TM-2']);
  // "3.2" and "3.3" written in full.
  assert.deepEqual(task(r, 'TM-3.4').spec.prerequisites, ['TM-3.2', 'TM-3.3', 'TM-1', 'TM-2']);
  // Sibling 1 and a subtask of another task.
  assert.deepEqual(task(r, 'TM-4.2').spec.prerequisites, ['TM-4.1', 'TM-3.2', 'TM-1']);

  // In the legacy fixture, subtask 4.1 depends on 3: task 4 has no subtask 3, so it is task 3.
  const l = await importFile(LEGACY);
  assert.deepEqual(task(l, 'TM-4.1').spec.prerequisites, ['TM-3', 'TM-2']);
  warningMatching(
    l,
    /Subtask dependencies without a dot that match no sibling, read as top-level tasks .*\(1\): TM-4\.1 → TM-3\./,
  );

  // A sibling wins over a top-level task with the same number (find-next-task reads it so).
  const both = detectAndParse(
    legacy([tmTask(1), tmTask(2, { subtasks: [tmTask(1), tmTask(2, { dependencies: [1] })] })]),
    'both.json',
  );
  assert.deepEqual(task(both, 'TM-2.2').spec.prerequisites, ['TM-2.1']);
});

void test('a parent depends on all its subtasks and comes after them; subtasks inherit its prerequisites', async () => {
  const r = await importFile(TAGGED);
  assert.deepEqual(task(r, 'TM-3').spec.prerequisites, ['TM-1', 'TM-2', 'TM-3.1', 'TM-3.2', 'TM-3.3', 'TM-3.4']);
  assert.deepEqual(task(r, 'TM-3.1').spec.prerequisites, ['TM-1', 'TM-2']);
  const ids = r.tasks.map((t) => t.spec.id);
  for (const sub of ['TM-3.1', 'TM-3.2', 'TM-3.3', 'TM-3.4']) assert.ok(ids.indexOf(sub) < ids.indexOf('TM-3'));

  // A parent's dependency on one of its own subtasks is not inherited by the others.
  const own = detectAndParse(
    legacy([tmTask(1, { dependencies: ['1.1'], subtasks: [tmTask(1), tmTask(2)] })]),
    'own.json',
  );
  assert.deepEqual(task(own, 'TM-1.2').spec.prerequisites, []);
  assert.deepEqual(task(own, 'TM-1').spec.prerequisites, ['TM-1.1', 'TM-1.2']);
});

void test('self-dependencies and a subtask depending on its own parent are dropped with a warning', () => {
  const r = detectAndParse(
    legacy([
      tmTask(1, { dependencies: [1] }),
      tmTask(2, { subtasks: [tmTask(1, { dependencies: ['2.1'] }), tmTask(5, { dependencies: [2] })] }),
    ]),
    'self.json',
  );
  assert.deepEqual(task(r, 'TM-1').spec.prerequisites, []);
  assert.deepEqual(task(r, 'TM-2.1').spec.prerequisites, []);
  // 2 in subtask 2.5 is no sibling, so it is task 2: its own parent.
  assert.deepEqual(task(r, 'TM-2.5').spec.prerequisites, []);
  warningMatching(r, /Tasks that depend on themselves.*\(2\): TM-1, TM-2\.1\./);
  warningMatching(r, /Subtasks that depend on their own parent.*\(1\): TM-2\.5\./);
});

void test('duplicate dependencies and ids written as "007" or " 7 " are the same task', () => {
  const r = detectAndParse(legacy([tmTask(7), tmTask(8, { dependencies: [7, '7', ' 007 '] })]), 'dups.json');
  assert.deepEqual(task(r, 'TM-8').spec.prerequisites, ['TM-7']);
});

void test('statuses: done, cancelled, blocked with the original status, everything else pending', () => {
  const statuses = [
    'pending',
    'in-progress',
    'review',
    'done',
    'completed',
    'cancelled',
    'blocked',
    'deferred',
    'waiting',
    undefined,
    'In-Progress',
  ];
  const r = detectAndParse(
    legacy(statuses.map((s, i) => tmTask(i + 1, s === undefined ? { status: undefined } : { status: s }))),
    'statuses.json',
  );
  const got = statuses.map((_, i) => {
    const t = task(r, `TM-${i + 1}`);
    return [t.status, t.reason];
  });
  assert.deepEqual(got, [
    ['pending', undefined],
    ['pending', undefined],
    ['pending', undefined],
    ['done', undefined],
    ['done', undefined],
    ['cancelled', undefined],
    ['blocked', 'Imported from Task Master with status "blocked".'],
    ['blocked', 'Imported from Task Master with status "deferred".'],
    ['pending', undefined],
    ['pending', undefined],
    ['pending', undefined],
  ]);
  warningMatching(r, /In progress or in review in Task Master, imported as pending .*\(3\): TM-2, TM-3, TM-11\./);
  warningMatching(r, /Unknown Task Master status, read as pending \(1\): TM-9 \("waiting"\)\./);
});

void test("a parent's status carries over to its unfinished subtasks, as Task Master treats them", async () => {
  const r = await importFile(TAGGED);
  // done parent (9): its pending subtask is done, as `task-master set-status done` would have made it.
  assert.equal(task(r, 'TM-9.1').status, 'done');
  // cancelled parent (6): cancelled.
  assert.equal(task(r, 'TM-6.1').status, 'cancelled');
  // deferred parent (5): blocked, naming the parent.
  assert.equal(task(r, 'TM-5').status, 'blocked');
  assert.equal(task(r, 'TM-5.1').status, 'blocked');
  assert.equal(task(r, 'TM-5.1').reason, 'Its parent TM-5 was imported from Task Master with status "deferred".');
  // in-progress parent (3): the subtasks keep their own statuses.
  assert.deepEqual(
    ['TM-3.1', 'TM-3.2', 'TM-3.3'].map((id) => task(r, id).status),
    ['done', 'pending', 'pending'],
  );
  // "completed" (tm-core) is done.
  assert.equal(task(r, 'TM-1.2').status, 'done');
  warningMatching(r, /subtasks of done tasks, imported as done .*: TM-9\.1\./);
  warningMatching(r, /subtasks of cancelled tasks, imported as cancelled .*: TM-6\.1\./);
  warningMatching(r, /subtasks of blocked or deferred tasks, imported as blocked .*: TM-5\.1\./);
});

void test('priorities: high/medium/low/critical kept, case ignored, missing → medium, unknown → medium with a warning; subtasks inherit', async () => {
  const r = await importFile(TAGGED);
  assert.equal(task(r, 'TM-1').spec.priority, 'high');
  assert.equal(task(r, 'TM-4').spec.priority, 'medium');
  assert.equal(task(r, 'TM-5').spec.priority, 'low');
  assert.equal(task(r, 'TM-9').spec.priority, 'critical');
  assert.equal(task(r, 'TM-10').spec.priority, 'high'); // "High"
  assert.equal(task(r, 'TM-8').spec.priority, 'medium'); // none given
  assert.equal(task(r, 'TM-7').spec.priority, 'medium'); // "urgent"
  warningMatching(r, /Unknown Task Master priority, imported as medium \(1\): TM-7 \("urgent"\)\./);
  // A subtask without a priority takes its parent's; one with its own keeps it.
  assert.equal(task(r, 'TM-3.2').spec.priority, 'high');
  assert.equal(task(r, 'TM-3.3').spec.priority, 'low');
  assert.equal(task(r, 'TM-5.1').spec.priority, 'low');
});

void test('the description joins description, details and test strategy as markdown sections', async () => {
  const r = await importFile(TAGGED);
  assert.equal(
    task(r, 'TM-2').spec.description,
    [
      'Define tables for users, sessions and refresh tokens.',
      '## Details',
      'PostgreSQL with Drizzle migrations. Users: id, email (unique), password_hash, created_at. Sessions: id, user_id, expires_at.',
      '## Test strategy',
      'Migrations apply cleanly on an empty database and roll back.',
    ].join('\n\n'),
  );
  // null details and test strategy are left out, not printed as "null".
  assert.equal(task(r, 'TM-8').spec.description, 'How to deploy, roll back and rotate secrets.');
  // A subtask names its parent; a parent lists its subtasks.
  assert.match(task(r, 'TM-3.3').spec.description, /## Parent task\n\nTM-3: Implement user authentication API$/);
  assert.match(
    task(r, 'TM-4').spec.description,
    /## Subtasks\n\nThis task comes after its subtasks:\n\n- TM-4\.1: Layout and navigation\n- TM-4\.2: Wire login form to auth API$/,
  );
  assert.equal(task(r, 'TM-3.4').spec.title, 'Write integration tests for auth flows');
  assert.deepEqual(task(r, 'TM-3.4').spec.paths, []);
  assert.deepEqual(task(r, 'TM-3.4').spec.labels, []);
});

void test('warnings name done tasks with unfinished prerequisites and tasks waiting on cancelled ones', () => {
  const r = detectAndParse(
    legacy([
      tmTask(1),
      tmTask(2, { status: 'done', dependencies: [1] }),
      tmTask(3, { status: 'cancelled' }),
      tmTask(4, { dependencies: [3] }),
    ]),
    'odd.json',
  );
  warningMatching(
    r,
    /Done tasks whose prerequisites are not done \(they stay done\) \(1\): TM-2 \(TM-1 is pending\)\./,
  );
  warningMatching(r, /Tasks that wait on a cancelled prerequisite .*\(1\): TM-4 \(TM-3\)\./);
});

void test('order: prerequisites first, otherwise the file order is kept', () => {
  const r = detectAndParse(
    legacy([tmTask(1, { dependencies: [3] }), tmTask(2), tmTask(3, { dependencies: [2] }), tmTask(4)]),
    'order.json',
  );
  assert.deepEqual(
    r.tasks.map((t) => t.spec.id),
    ['TM-2', 'TM-3', 'TM-1', 'TM-4'],
  );
});

void test('a cycle with a task that is not done is refused, naming the cycle, the file and the place', async () => {
  const file = fixture('taskmaster-cycle.json');
  const e = await importRejection(importFile(file), file);
  assert.equal(e.details.where, 'tasks[0].dependencies');
  assert.equal(
    e.message,
    `The dependencies in ${file} form a cycle: TM-1 (tasks[0]) → TM-3 (tasks[2]) → TM-2 (tasks[1]) → TM-1. Each waits for the next, and TM-1, TM-2 and TM-3 are not done, so none of them could start. It is at line 3, column 120.`,
  );
  assert.match(
    e.details.fix ?? '',
    /Remove one link of the cycle from the file, for example TM-3 from TM-1's dependencies/,
  );

  // Among subtasks: one done and one pending is still a cycle that holds the pending one forever.
  const subs = importErrorOf(
    () =>
      detectAndParse(
        legacy([
          tmTask(1, {
            subtasks: [
              tmTask(1, { status: 'done', dependencies: [2] }),
              tmTask(2, { status: 'pending', dependencies: [1] }),
            ],
          }),
        ]),
        'subs.json',
      ),
    'subs.json',
  );
  assert.equal(subs.details.where, 'tasks[0].subtasks[1].dependencies');
  assert.match(
    subs.message,
    /in subs\.json form a cycle: TM-1\.2 \(tasks\[0\]\.subtasks\[1\]\) → TM-1\.1 \(tasks\[0\]\.subtasks\[0\]\) → TM-1\.2\. Each waits for the next, and TM-1\.2 is not done/,
  );

  // A cycle that passes through the pipeline's own rule (a parent after its subtasks) says so.
  const ours = importErrorOf(
    () =>
      detectAndParse(
        legacy([tmTask(1, { subtasks: [tmTask(1, { dependencies: [2] })] }), tmTask(2, { dependencies: [1] })]),
        'ours.json',
      ),
    'ours.json',
  );
  assert.match(
    ours.message,
    /form a cycle: TM-1\.1 \(tasks\[0\]\.subtasks\[0\]\) → TM-2 \(tasks\[1\]\) → TM-1 \(tasks\[0\]\) → TM-1\.1 \(its subtask\)\. Each waits for the next, and TM-1\.1, TM-1 and TM-2 are not done/,
  );
});

void test('a real-world file: subtasks sharing an id numbered by position, dependencies resolved as Task Master resolves them, a cycle among done subtasks accepted', async () => {
  const file = fixture('taskmaster-real-world.json');
  const r = await importFile(file);
  assert.equal(r.format, 'taskmaster-tagged');
  assert.deepEqual(
    r.tasks.map((t) => `${t.spec.id}:${t.status}:${t.spec.prerequisites.join('+')}`),
    [
      'TM-1.1:done:',
      'TM-1.2:done:TM-1.1',
      'TM-1:done:TM-1.1+TM-1.2',
      'TM-2.1:done:TM-1',
      // 2.2 and 2.3 (both done) waited for each other: the link to the later one was dropped.
      'TM-2.2:done:TM-1',
      'TM-2.3:done:TM-2.2+TM-1',
      'TM-2:done:TM-1+TM-2.1+TM-2.2+TM-2.3',
      // Task 3's subtasks all carry the id 3: numbered 1, 2, 3; "3" means the first of them.
      'TM-3.1:done:TM-2',
      'TM-3.2:pending:TM-3.1+TM-2',
      'TM-3.3:pending:TM-3.1+TM-2',
      'TM-3:pending:TM-2+TM-3.1+TM-3.2+TM-3.3',
      // "3.3" in the file is subtask id 3 of task 3: the first of them, now TM-3.1.
      'TM-4:pending:TM-3+TM-3.1',
      // Task 5's ids 1, 2, 2, 4: numbered 1 to 4; "2" means the first 2, "4" is the fourth.
      'TM-5.1:pending:TM-2',
      'TM-5.2:pending:TM-5.1+TM-2',
      'TM-5.3:pending:TM-5.2+TM-2',
      'TM-5.4:pending:TM-5.2+TM-5.1+TM-2',
      'TM-5:pending:TM-2+TM-5.1+TM-5.2+TM-5.3+TM-5.4',
    ],
  );
  assert.equal(task(r, 'TM-3.3').spec.title, 'Webhook handler');
  assert.equal(task(r, 'TM-3.3').source, 'master.tasks[2].subtasks[2]');
  assert.equal(task(r, 'TM-5.3').spec.title, 'PDF export');
  assert.match(task(r, 'TM-3').spec.description, /- TM-3\.2: Checkout session endpoint/);
  assert.equal(
    warningMatching(r, /share an id/),
    'Subtasks that share an id within their task, numbered by position (a dependency on a shared id means the first of them, as in Task Master) (2): TM-3 (ids 3, 3, 3 became 1, 2, 3), TM-5 (ids 1, 2, 2, 4 became 1, 2, 3, 4).',
  );
  assert.equal(
    warningMatching(r, /cycles/),
    'Prerequisite cycles among tasks that are all done, accepted (they hold nothing back); the links that closed them were dropped (1): TM-2.2, TM-2.3 (dropped TM-2.2 → TM-2.3).',
  );
  assertPrerequisitesFirst(r);
});

void test('a cycle among done and cancelled tasks holds nothing back: accepted with a warning; one with a task still to do is not', () => {
  // TM-1 is done, TM-2 cancelled (it never runs), and they wait for each other; TM-3 waits for TM-1.
  const file = (statusOf2: string) =>
    legacy([
      tmTask(1, { status: 'done', dependencies: [2] }),
      tmTask(2, { status: statusOf2, dependencies: [1] }),
      tmTask(3, { dependencies: [1] }),
    ]);
  const r = detectAndParse(file('cancelled'), 'finished.json');
  assert.deepEqual(
    r.tasks.map((t) => `${t.spec.id}:${t.status}:${t.spec.prerequisites.join('+')}`),
    ['TM-1:done:', 'TM-2:cancelled:TM-1', 'TM-3:pending:TM-1'],
  );
  assert.equal(
    warningMatching(r, /cycles/),
    'Prerequisite cycles among tasks that are all done or cancelled, accepted (they hold nothing back); the links that closed them were dropped (1): TM-1, TM-2 (dropped TM-1 → TM-2).',
  );

  // A deferred task comes back some day: the cycle would hold it, so it is refused, naming it.
  const e = importErrorOf(() => detectAndParse(file('deferred'), 'deferred.json'), 'deferred.json');
  assert.equal(e.details.where, 'tasks[1].dependencies');
  assert.match(
    e.message,
    /form a cycle: TM-2 \(tasks\[1\]\) → TM-1 \(tasks\[0\]\) → TM-2\. Each waits for the next, and TM-2 is not done/,
  );
});

void test('a larger cycle among done tasks keeps the links that point back in the file', () => {
  // 1 → 3 → 2 → 1 and 2 → 4 → 2, all done: one strongly connected group of four.
  const r = detectAndParse(
    legacy([
      tmTask(1, { status: 'done', dependencies: [3] }),
      tmTask(2, { status: 'done', dependencies: [1, 4] }),
      tmTask(3, { status: 'done', dependencies: [2] }),
      tmTask(4, { status: 'done', dependencies: [2] }),
      tmTask(5, { dependencies: [4] }),
    ]),
    'ring.json',
  );
  assert.deepEqual(
    r.tasks.map((t) => `${t.spec.id}:${t.spec.prerequisites.join('+')}`),
    ['TM-1:', 'TM-2:TM-1', 'TM-3:TM-2', 'TM-4:TM-2', 'TM-5:TM-4'],
  );
  assert.match(warningMatching(r, /cycles/), /\(1\): TM-1, TM-2, TM-3, TM-4 \(dropped TM-1 → TM-3, TM-2 → TM-4\)\.$/);
});

void test('fields Task Master adds over time are ignored', () => {
  const r = detectAndParse(
    legacy([
      tmTask(1, {
        complexity: 7,
        recommendedSubtasks: 3,
        updatedAt: '2025-07-01T00:00:00Z',
        metadata: { jira: 'ABC-1' },
        subtasks: [tmTask(1, { parentId: '1', acceptanceCriteria: ['x'] })],
      }),
    ]),
    'extra.json',
  );
  assert.deepEqual(
    r.tasks.map((t) => t.spec.id),
    ['TM-1.1', 'TM-1'],
  );
  assert.deepEqual(r.warnings, []);
});

void test('subtask ids written with their task number in front ("1.3") are read as the number after the dot', () => {
  const r = detectAndParse(
    legacy([
      tmTask(1, {
        subtasks: [
          tmTask('1.1', { status: 'done' }),
          tmTask('1.2', { dependencies: ['1.1'] }),
          tmTask('1.3', { dependencies: [2] }),
        ],
      }),
      tmTask(2, { dependencies: ['1.3'] }),
    ]),
    'dotted.json',
  );
  assert.deepEqual(
    r.tasks.map((t) => `${t.spec.id}:${t.spec.prerequisites.join('+')}`),
    ['TM-1.1:', 'TM-1.2:TM-1.1', 'TM-1.3:TM-1.2', 'TM-1:TM-1.1+TM-1.2+TM-1.3', 'TM-2:TM-1.3'],
  );
  assert.equal(
    warningMatching(r, /number in front/),
    'Subtask ids written with their task\'s number in front ("12.3"), read as the number after the dot (3): TM-1: "1.1" → 1, TM-1: "1.2" → 2, TM-1: "1.3" → 3.',
  );

  // Another task's number in front is not a reading of this one: refused, at the id.
  const other = importErrorOf(
    () => detectAndParse(legacy([tmTask(1, { subtasks: [tmTask('4.1')] })]), 'other.json'),
    'other.json',
  );
  assert.equal(other.details.where, 'tasks[0].subtasks[0].id');
  assert.match(other.message, /Subtask id "4\.1" of task 1 \(tasks\[0\]\.subtasks\[0\]\) names task 4, not its own/);
  // A dotted id is no id for a task.
  const task = importErrorOf(() => detectAndParse(legacy([tmTask('1.1')]), 'task.json'), 'task.json');
  assert.equal(task.details.where, 'tasks[0].id');
});
