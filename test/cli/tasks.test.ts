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

/** `pipeline task add|list|show|block|unblock|retry|cancel|priority`, as a user runs them. */

requireCli();

type TaskJson = StatusJson['tasks'][string];

test('task add generates TASK-001, TASK-002…; options are stored; list and show print them, --json parses', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    assert.match(await ok(dir, 'task', 'list'), /No tasks/);
    assert.equal((await ok(dir, 'task', 'add', 'Design the API')).trim(), 'Added TASK-001: Design the API');
    assert.equal(
      (
        await ok(
          dir,
          'task',
          'add',
          'Write the tests',
          '--depends-on',
          'TASK-001',
          '--priority',
          'high',
          '--label',
          'pilot,backend',
          '--paths',
          'src/api/**',
        )
      ).trim(),
      'Added TASK-002: Write the tests',
    );
    const descFile = join(dir, 'desc.md');
    await writeFile(descFile, '# Details\n\nUse the **new** client.\n');
    assert.equal(
      (
        await ok(
          dir,
          'task',
          'add',
          'Implement it',
          '--depends-on',
          'TASK-001',
          '--depends-on',
          'TASK-002',
          '--description-file',
          descFile,
        )
      ).trim(),
      'Added TASK-003: Implement it',
    );
    assert.equal((await ok(dir, 'task', 'add', 'Docs')).trim(), 'Added TASK-004: Docs');
    // An explicit id is kept as given.
    assert.equal(
      (await ok(dir, 'task', 'add', 'Hotfix', '--id', 'FIX-7', '--priority', 'critical')).trim(),
      'Added FIX-7: Hotfix',
    );

    const tasks = await json<TaskJson[]>(dir, 'task', 'list', '--json');
    assert.deepEqual(
      tasks.map((t) => t.id),
      ['TASK-001', 'TASK-002', 'TASK-003', 'TASK-004', 'FIX-7'],
    );
    const t2 = tasks[1]!;
    assert.deepEqual(
      [t2.status, t2.stage, t2.priority, t2.prerequisites, t2.labels],
      ['pending', 'architect', 'high', ['TASK-001'], ['pilot', 'backend']],
    );
    assert.deepEqual((t2 as TaskJson & { paths: string[] }).paths, ['src/api/**']);
    assert.deepEqual(tasks[2]!.prerequisites, ['TASK-001', 'TASK-002']);
    assert.match((tasks[2] as TaskJson & { description: string }).description, /Use the \*\*new\*\* client/);

    const table = await ok(dir, 'task', 'list');
    assert.match(table, /^ID\s+STATUS\s+STAGE\s+AGENT\s+PRIORITY\s+NEEDS\s+TITLE$/m);
    assert.match(table, /^TASK-002\s+pending\s+architect\s+-\s+high\s+TASK-001\s+Write the tests$/m);
    const pending = await json<TaskJson[]>(dir, 'task', 'list', '--status', 'pending', '--json');
    assert.equal(pending.length, 5);
    assert.deepEqual(await json<TaskJson[]>(dir, 'task', 'list', '--status', 'done', '--json'), []);

    const shown2 = await ok(dir, 'task', 'show', 'TASK-002');
    mentions(
      shown2,
      'TASK-002: Write the tests',
      'prerequisites: TASK-001',
      'labels:        pilot, backend',
      'branch:        pipeline/TASK-002',
    );
    // Why it waits, in words.
    assert.match(
      shown2,
      /waiting: .*TASK-002 waits for its prerequisites to be merged: TASK-001 \(pending at architect\)/,
    );
    const asJson = await json<TaskJson>(dir, 'task', 'show', 'TASK-003', '--json');
    assert.equal(asJson.id, 'TASK-003');
    assert.deepEqual(asJson.history, []);
  });
});

test('task add refuses an unknown prerequisite, a cycle, a bad priority, an invalid or duplicate id, and adds nothing', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    const before = await logicalState(dir);
    const files = await stateFiles(dir);

    const unknown = await fails(dir, 1, 'task', 'add', 'Second', '--depends-on', 'TASK-001,TASK-099');
    mentions(unknown, 'Unknown prerequisite TASK-099', 'fix:');
    // A task that waits on itself is the only cycle one `task add` can make; imports make longer ones (import.test.ts).
    const cycle = await fails(dir, 1, 'task', 'add', 'Loop', '--id', 'TASK-050', '--depends-on', 'TASK-050');
    mentions(cycle, 'cycle', 'TASK-050 → TASK-050', 'fix:');
    const prio = await fails(dir, 2, 'task', 'add', 'Third', '--priority', 'urgent');
    mentions(prio, '"urgent"', '--priority', 'critical, high, medium, low');
    const badId = await cli(dir, ['task', 'add', 'Fourth', '--id', 'task one']);
    assert.notEqual(badId.code, 0, shown(badId));
    mentions(badId.stderr, 'Invalid task id "task one"', '--id', 'such as TASK-001');
    const badDep = await cli(dir, ['task', 'add', 'Fifth', '--depends-on', 'rm -rf']);
    assert.notEqual(badDep.code, 0, shown(badDep));
    mentions(badDep.stderr, 'Invalid task id "rm -rf"', '--depends-on');
    mentions(await fails(dir, 1, 'task', 'add', 'Again', '--id', 'TASK-001'), 'TASK-001 exists already');
    const noTitle = await cli(dir, ['task', 'add', '   ']);
    assert.notEqual(noTitle.code, 0, shown(noTitle));
    mentions(noTitle.stderr, 'title');

    assert.deepEqual(await logicalState(dir), before, 'nothing was added');
    assert.deepEqual(await stateFiles(dir), files, 'no journal record was written');
    // The next generated id is still the next one.
    assert.equal((await ok(dir, 'task', 'add', 'Second')).trim(), 'Added TASK-002: Second');
  });
});

test('task show of an unknown id fails naming it; block, unblock, retry, cancel and priority change the task and its history', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    await ok(dir, 'task', 'add', 'Second', '--depends-on', 'TASK-001');
    const err = await fails(dir, 1, 'task', 'show', 'TASK-404');
    mentions(err, 'Unknown task TASK-404', 'pipeline task list');

    assert.equal(
      (await ok(dir, 'task', 'block', 'TASK-001', 'waiting for the API keys')).trim(),
      'TASK-001 is blocked (waiting for the API keys), priority medium.',
    );
    // retry is for blocked tasks only.
    mentions(await fails(dir, 1, 'task', 'retry', 'TASK-002'), 'TASK-002 is pending', 'nothing to retry');
    assert.equal((await ok(dir, 'task', 'retry', 'TASK-001')).trim(), 'TASK-001 is pending, priority medium.');
    await ok(dir, 'task', 'block', 'TASK-001');
    assert.equal((await ok(dir, 'task', 'unblock', 'TASK-001')).trim(), 'TASK-001 is pending, priority medium.');
    assert.equal(
      (await ok(dir, 'task', 'priority', 'TASK-001', 'critical')).trim(),
      'TASK-001 is pending, priority critical.',
    );
    mentions(await fails(dir, 2, 'task', 'priority', 'TASK-001', 'asap'), '"asap"', 'critical, high, medium, low');
    mentions(await fails(dir, 2, 'task', 'priority', 'TASK-001'), 'Give the new priority');
    assert.equal(
      (await ok(dir, 'task', 'cancel', 'TASK-002', 'not needed')).trim(),
      'TASK-002 is cancelled, priority medium.',
    );
    mentions(await fails(dir, 1, 'task', 'block', 'TASK-002'), 'TASK-002');

    const show = await ok(dir, 'task', 'show', 'TASK-001');
    mentions(show, 'status:        pending', 'priority:      critical', 'history:');
    const history = show.split('\n').filter((l) => /^\s{4}\d{4}-/.test(l));
    assert.deepEqual(
      history.map((l) => l.trim().split(/\s+/).slice(1, 5).join(' ')),
      ['block pending → blocked', 'unblock blocked → pending', 'block pending → blocked', 'unblock blocked → pending'],
      show,
    );
    mentions(show, 'waiting for the API keys', 'blocked by a person');
    const s = await status(dir);
    assert.deepEqual(s.queues.cancelled, ['TASK-002']);
    assert.deepEqual(s.queues.unassigned, ['TASK-001']);
  });
});

test('block, unblock, cancel, retry and priority of an unknown or invalid id fail naming it, and change nothing', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    const before = await logicalState(dir);
    const files = await stateFiles(dir);
    for (const cmd of [
      ['block', 'TASK-404'],
      ['unblock', 'TASK-404'],
      ['cancel', 'TASK-404'],
      ['retry', 'TASK-404'],
      ['priority', 'TASK-404', 'high'],
      ['block', '../../etc'],
    ]) {
      const err = await fails(dir, 1, 'task', ...cmd);
      mentions(err, `Unknown task ${cmd[1]!}`, 'fix:', 'pipeline task list');
    }
    assert.deepEqual(await logicalState(dir), before);
    assert.deepEqual(await stateFiles(dir), files);
  });
});
