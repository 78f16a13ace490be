import assert from 'node:assert/strict';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  cli,
  FIXTURES,
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

/**
 * `pipeline task import`: Task Master's tasks.json and the seed's state file, with counts by status,
 * ids and prerequisites; and files that cannot be imported, each refused with the file, the place
 * and the fix, adding nothing.
 */

requireCli();

type TaskJson = StatusJson['tasks'][string];

const fixture = (name: string) => join(FIXTURES, name);
/** The import's own fixtures, shared with test/engine/import. */
const engineFixture = (name: string) => join(FIXTURES, '..', '..', 'engine', 'import', 'fixtures', name);

function byId(tasks: TaskJson[]): Map<string, TaskJson> {
  return new Map(tasks.map((t) => [t.id, t]));
}

test('a tagged Task Master file: counts by status, TM- ids, subtasks before their parent, prerequisites; another tag with its own prefix', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const file = fixture('taskmaster-tagged.json');
    const r = await cli(dir, ['task', 'import', file]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(
      r.stdout.trim(),
      `Imported 6 task(s) from ${file} (taskmaster-tagged): 1 done, 3 pending, 1 blocked, 1 cancelled.`,
    );
    // The other tag is named on stderr, with how to import it.
    mentions(r.stderr, 'warning', '"feature-x"', '--tag');

    const tasks = await json<TaskJson[]>(dir, 'task', 'list', '--json');
    assert.deepEqual(
      tasks.map((t) => `${t.id}:${t.status}`),
      ['TM-1:done', 'TM-2.1:pending', 'TM-2.2:pending', 'TM-2:pending', 'TM-3:blocked', 'TM-4:cancelled'],
    );
    const m = byId(tasks);
    assert.deepEqual(m.get('TM-2.2')!.prerequisites, ['TM-2.1', 'TM-1']);
    assert.deepEqual(m.get('TM-2')!.prerequisites, ['TM-1', 'TM-2.1', 'TM-2.2']);
    assert.deepEqual(m.get('TM-3')!.prerequisites, ['TM-2']);
    assert.equal(m.get('TM-1')!.priority, 'high');
    assert.equal(m.get('TM-3')!.priority, 'low');
    assert.ok(m.get('TM-3')!.blocked_reason, 'a blocked task says why');

    const s = await status(dir);
    assert.deepEqual(s.queues.completed, ['TM-1']);
    assert.deepEqual(s.queues.blocked, ['TM-3']);
    assert.deepEqual(s.queues.cancelled, ['TM-4']);
    assert.deepEqual(s.queues.unassigned, ['TM-2.1', 'TM-2.2', 'TM-2']);
    // What the scheduler would do with it: TM-2.1 is the only one whose prerequisites are done.
    assert.match(await ok(dir, 'run', '--dry'), /would queue TM-2\.1 for architect/);

    const fx = await cli(dir, ['task', 'import', file, '--tag', 'feature-x', '--prefix', 'FX']);
    assert.equal(fx.code, 0, shown(fx));
    mentions(fx.stdout, 'Imported 1 task(s)', '1 pending');
    assert.equal((await status(dir)).tasks['FX-1']?.title, 'Feature X spike');

    // The same file again: its ids exist already; the error names the task and the place in the file.
    const again = await fails(dir, 1, 'task', 'import', file);
    mentions(again, 'TM-1 exists already', file);
  });
});

test("the seed's state file: statuses mapped (completed → done, work in progress → pending), ids and prerequisites kept", async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const file = fixture('seed-state.json');
    const r = await cli(dir, ['task', 'import', file]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout.trim(), `Imported 4 task(s) from ${file} (seed-state): 1 done, 2 pending, 1 blocked.`);
    mentions(r.stderr, 'arch_wip');
    const s = await status(dir);
    assert.deepEqual(
      Object.values(s.tasks).map((t) => `${t.id}:${t.status}:${t.prerequisites.join('+')}`),
      ['TASK-001:done:', 'TASK-002:pending:TASK-001', 'TASK-003:pending:TASK-002', 'TASK-004:blocked:'],
    );
    assert.equal(s.tasks['TASK-002']!.priority, 'high');
    // The agents and modes of the old state are not imported.
    assert.deepEqual(s.agents, {});
    // Generated ids go on after the imported ones.
    assert.equal((await ok(dir, 'task', 'add', 'Next')).trim(), 'Added TASK-005: Next');
  });
});

test('a malformed file names the file and line:column; a cycle names the cycle; a missing file says so; nothing is added', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Existing');
    const before = await logicalState(dir);
    const files = await stateFiles(dir);

    const malformed = fixture('malformed.json');
    const syntax = await fails(dir, 1, 'task', 'import', malformed);
    mentions(syntax, malformed, 'not valid JSON', 'line 7, column 7', '(7:7)', 'fix:');

    const cycle = await fails(dir, 1, 'task', 'import', fixture('cycle.json'), '--prefix', 'CY');
    mentions(cycle, 'cycle', 'CY-1', 'CY-2', 'CY-3', 'fix:', fixture('cycle.json'), 'not done');

    const missing = join(dir, 'nope.json');
    mentions(await fails(dir, 1, 'task', 'import', missing), missing, 'does not exist', 'fix:');

    const badPrefix = await fails(dir, 2, 'task', 'import', fixture('taskmaster-tagged.json'), '--prefix', 'tm');
    mentions(badPrefix, '--prefix');

    const unknownTag = await fails(dir, 1, 'task', 'import', fixture('taskmaster-tagged.json'), '--tag', 'nope');
    mentions(unknownTag, 'nope', 'master', 'feature-x');

    // A wrong shape: a task without a title names its JSON path.
    const shape = join(dir, 'shape.json');
    await writeFile(
      shape,
      JSON.stringify(
        {
          tasks: [
            { id: 1, title: 'ok', status: 'pending', dependencies: [] },
            { id: 2, title: '', status: 'pending', dependencies: [] },
          ],
        },
        null,
        2,
      ),
    );
    mentions(await fails(dir, 1, 'task', 'import', shape), shape, 'tasks[1]', 'fix:');

    assert.deepEqual(await logicalState(dir), before, 'nothing was added');
    assert.deepEqual(await stateFiles(dir), files, 'no journal record was written');
  });
});

test('a file over 50 MB and a binary file are refused before parsing, naming the file, the place and the fix', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Existing');
    const before = await logicalState(dir);
    const files = await stateFiles(dir);

    // Sparse: 51 MB on paper, nothing on disk; the size is refused before the file is read.
    const huge = join(dir, 'huge.json');
    const fh = await open(huge, 'w');
    await fh.truncate(51 * 1024 * 1024);
    await fh.close();
    const big = await fails(dir, 1, 'task', 'import', huge);
    mentions(big, huge, '51.0 MB', '50.0 MB', '(whole file)', 'fix:');

    const binary = join(dir, 'tasks.bin');
    await writeFile(binary, Buffer.from([0x7b, 0x22, 0x74, 0x00, 0x01, 0x02, 0xff, 0xfe, 0x00, 0x7d]));
    const bin = await fails(dir, 1, 'task', 'import', binary);
    mentions(bin, binary, 'binary', 'byte 3', 'fix:');

    const utf16 = join(dir, 'utf16.json');
    await writeFile(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"tasks": []}', 'utf16le')]));
    mentions(await fails(dir, 1, 'task', 'import', utf16), utf16, 'UTF-16', 'fix:');

    assert.deepEqual(await logicalState(dir), before, 'nothing was added');
    assert.deepEqual(await stateFiles(dir), files, 'no journal record was written');
  });
});

test('a Task Master file as found in the wild: subtasks sharing an id and a cycle among done subtasks import, and the warnings name what changed', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const file = engineFixture('taskmaster-real-world.json');
    const r = await cli(dir, ['task', 'import', file]);
    assert.equal(r.code, 0, shown(r));
    assert.equal(r.stdout.trim(), `Imported 17 task(s) from ${file} (taskmaster-tagged): 8 done, 9 pending.`);
    mentions(
      r.stderr,
      'pipeline: warning: Subtasks that share an id within their task, numbered by position',
      'TM-3 (ids 3, 3, 3 became 1, 2, 3)',
      'TM-5 (ids 1, 2, 2, 4 became 1, 2, 3, 4)',
      'pipeline: warning: Prerequisite cycles among tasks that are all done, accepted',
      'TM-2.2, TM-2.3 (dropped TM-2.2 → TM-2.3)',
    );
    const m = byId(await json<TaskJson[]>(dir, 'task', 'list', '--json'));
    assert.equal(m.get('TM-3.3')!.title, 'Webhook handler');
    assert.deepEqual(m.get('TM-3.3')!.prerequisites, ['TM-3.1', 'TM-2']);
    assert.deepEqual(m.get('TM-2.3')!.prerequisites, ['TM-2.2', 'TM-1']);
    assert.deepEqual(m.get('TM-4')!.prerequisites, ['TM-3', 'TM-3.1']);
    // The scheduler agrees: the work that can start is the subtasks whose prerequisites are done.
    const dry = await ok(dir, 'run', '--dry');
    mentions(dry, 'would queue TM-3.2', 'would queue TM-3.3', 'would queue TM-5.1');
  });
});

/** What a task is in the pipeline, without when it was made. */
function essence(t: TaskJson & { description?: string }): unknown {
  return {
    id: t.id,
    title: t.title,
    description: t.description,
    prerequisites: t.prerequisites,
    priority: t.priority,
    status: t.status,
    blocked_reason: t.blocked_reason,
  };
}

test('export: Task Master import, export, import elsewhere gives the same tasks; --output keeps the other tags; --format seed', async () => {
  await withRepo({ init: true }, async ({ dir: first, base }) => {
    await ok(first, 'task', 'import', engineFixture('taskmaster-real-world.json'));
    const before = (await json<TaskJson[]>(first, 'task', 'list', '--json')).map(essence);

    // To stdout: the tagged file, nothing else.
    const exported = await cli(first, ['task', 'export', '--format', 'taskmaster']);
    assert.equal(exported.code, 0, shown(exported));
    const file = JSON.parse(exported.stdout) as Record<string, { tasks: Array<{ id: string; status: string }> }>;
    assert.deepEqual(Object.keys(file), ['master']);
    assert.deepEqual(
      file.master!.tasks.map((t) => `${t.id}:${t.status}`),
      ['1:done', '2:done', '3:pending', '4:pending', '5:pending'],
    );
    const tasksJson = join(base, 'tasks.json');
    await writeFile(tasksJson, exported.stdout);

    await withRepo({ init: true }, async ({ dir: second }) => {
      const r = await cli(second, ['task', 'import', tasksJson]);
      assert.equal(r.code, 0, shown(r));
      assert.doesNotMatch(r.stderr, /share an id|cycles/, 'nothing left to mend');
      assert.deepEqual((await json<TaskJson[]>(second, 'task', 'list', '--json')).map(essence), before);
    });

    // Into an existing Task Master file: its other tags stay, the exported tag is replaced.
    const existing = join(base, 'existing.json');
    await writeFile(
      existing,
      JSON.stringify({
        master: { tasks: [{ id: 1, title: 'old' }] },
        'feature-x': { tasks: [{ id: 1, title: 'fx' }] },
      }),
    );
    const out = await ok(first, 'task', 'export', '--output', existing);
    assert.equal(
      out.trim(),
      `Exported 5 task(s) and 12 subtask(s) under tag "master" to ${existing} (its other tags kept: feature-x).`,
    );
    const merged = JSON.parse(await readFile(existing, 'utf8')) as Record<string, { tasks: Array<{ title: string }> }>;
    assert.deepEqual(Object.keys(merged), ['master', 'feature-x']);
    assert.equal(merged.master!.tasks[0]!.title, 'Set up the monorepo');
    assert.equal(merged['feature-x']!.tasks[0]!.title, 'fx');

    // A file that is not Task Master's is not overwritten.
    const other = join(base, 'package.json');
    await writeFile(other, '{"name": "x"}');
    mentions(await fails(first, 2, 'task', 'export', '--output', other), other, 'not a Task Master tasks file', 'fix:');
    assert.equal(await readFile(other, 'utf8'), '{"name": "x"}');
    mentions(await fails(first, 2, 'task', 'export', '--format', 'csv'), '--format', 'taskmaster or seed');

    // The seed's state shape, which imports back with the same tasks.
    const seedFile = join(base, 'state.json');
    assert.equal(
      (await ok(first, 'task', 'export', '--format', 'seed', '--output', seedFile)).trim(),
      `Exported the pipeline state to ${seedFile}.`,
    );
    const seed = JSON.parse(await readFile(seedFile, 'utf8')) as StatusJson;
    assert.ok(seed.queues && seed.tasks['TM-3.3']);
    await withRepo({ init: true }, async ({ dir: third }) => {
      await ok(third, 'task', 'import', seedFile);
      assert.deepEqual((await json<TaskJson[]>(third, 'task', 'list', '--json')).map(essence), before);
    });
  });
});
