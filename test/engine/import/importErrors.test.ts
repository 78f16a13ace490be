import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_IMPORT_BYTES } from '../../../src/engine/import/importTypes';
import { detectAndParse, importFile } from '../../../src/engine/import/taskImport';
import { fixture, importErrorOf, importRejection, withTempDir } from './importTestKit';

/**
 * Every kind of malformed input gets PipelineError('import') with the file, the place (line:column
 * for text that is not JSON, a JSON path for data of the wrong shape) and a fix.
 */

void test('not JSON: the line and column of the first problem', async () => {
  const file = fixture('malformed', 'not-json.json');
  const e = await importRejection(importFile(file), file);
  assert.equal(e.details.where, '8:5');
  assert.match(
    e.message,
    /not valid JSON: Unexpected "}": expected a property name in double quotes \(a trailing comma is not allowed in JSON\) at line 8, column 5/,
  );
});

void test('syntax errors of every kind point at the right place', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['', '1:1', /The file is empty/],
    ['   \n  ', '2:3', /The file is empty/],
    ['{"tasks": [', '1:12', /Unexpected end of file: expected a value/],
    ['{"tasks": []', '1:13', /Unexpected end of file: expected "," or "}"/],
    ['{\n  "tasks": [\n    {"id": 1 "title": "x"}\n  ]\n}', '3:14', /expected "," or "}"/],
    ["{'tasks': []}", '1:2', /JSON strings use double quotes/],
    ['{"tasks": [1,]}', '1:14', /a trailing comma is not allowed/],
    ['{"tasks": "unterminated\n"}', '1:11', /Unterminated string/],
    ['{"tasks": "tab\there"}', '1:15', /Control character in a string/],
    ['{"tasks": "\\x"}', '1:12', /Invalid escape "\\\\x"/],
    ['{"tasks": "\\u12G4"}', '1:12', /Invalid \\u escape/],
    ['{"a": 01}', '1:8', /expected "," or "}"/],
    ['{"a": 1.}', '1:9', /expected a digit after "\."/],
    ['{"a": -}', '1:8', /Invalid number/],
    ['{"a": 1e+}', '1:10', /exponent/],
    ['{"a": tru}', '1:7', /expected a value/],
    ['{"a": NaN}', '1:7', /expected a value/],
    ['{"a": 1} x', '1:10', /after the end of the JSON value/],
    ['{"a": 1}\r\n{"b": 2}', '2:1', /after the end of the JSON value/],
    ['{"a" 1}', '1:6', /expected ":" after the property name/],
  ];
  for (const [text, where, message] of cases) {
    const e = importErrorOf(() => detectAndParse(text, 'bad.json'), 'bad.json');
    assert.equal(e.details.where, where, `${JSON.stringify(text)}: ${e.message}`);
    assert.match(e.message, message, JSON.stringify(text));
  }
});

void test('a byte-order mark is accepted', () => {
  const r = detectAndParse(`\uFEFF${JSON.stringify({ tasks: [{ id: 1, title: 'a' }] })}`, 'bom.json');
  assert.deepEqual(
    r.tasks.map((t) => t.spec.id),
    ['TM-1'],
  );
});

void test('wrong shape: the JSON path of the first problem, the first few listed', async () => {
  const file = fixture('malformed', 'wrong-shape.json');
  const e = await importRejection(importFile(file), file);
  assert.equal(e.details.where, 'master.tasks[1].title');
  assert.match(
    e.message,
    /master\.tasks\[1\]\.title: expected a title \(a string\); master\.tasks\[2\]\.dependencies\[0\]: expected a Task Master dependency/,
  );
  // The title is missing, so the place in the text is that of the task without it.
  assert.match(e.message, /\. master\.tasks\[1\] is at line 5, column 7\.$/);
});

void test('wrong shapes at the top level and inside tasks', () => {
  const cases: Array<[unknown, string, RegExp]> = [
    [[{ id: 1, title: 'a' }], '(top level)', /holds an array, not an object of tasks/],
    ['tasks', '(top level)', /holds a string/],
    [null, '(top level)', /holds null/],
    [{}, '(top level)', /empty object/],
    [
      { projects: [], version: 2 },
      '(top level)',
      /neither a Task Master tasks file nor a pipeline state.*keys: projects, version/,
    ],
    [{ tasks: 'none' }, 'tasks', /"tasks" is neither a list/],
    [{ tasks: [{ id: 'one', title: 'a' }] }, 'tasks[0].id', /expected a Task Master id/],
    [{ tasks: [{ id: -1, title: 'a' }] }, 'tasks[0].id', /expected a Task Master id/],
    [{ tasks: [{ id: 1.5, title: 'a' }] }, 'tasks[0].id', /expected a Task Master id/],
    [
      { tasks: [{ id: 1, title: 'a', subtasks: [{ id: 1, title: 'b', dependencies: ['1.2.3'] }] }] },
      'tasks[0].subtasks[0].dependencies[0]',
      /expected a Task Master dependency/,
    ],
    [{ tasks: [{ id: 1, title: 'a', subtasks: {} }] }, 'tasks[0].subtasks', /expected array/],
    [{ tasks: [{ id: 1, title: 'a', status: 3 }] }, 'tasks[0].status', /expected string/],
    [{ tasks: ['a task'] }, 'tasks[0]', /expected object/],
    [{ master: { tasks: {} } }, 'master.tasks', /expected array/],
    [
      { master: { tasks: [{ id: 1, title: '   ' }] } },
      'master.tasks[0].title',
      /TM-1 \(master\.tasks\[0\]\) cannot be imported: title: a title is required/,
    ],
    [
      { master: { tasks: [{ id: 1, title: 'a', description: 'x'.repeat(200_001) }] } },
      'master.tasks[0].description',
      /description/,
    ],
    [{ tasks: [{ id: 1_000_000_000, title: 'a' }] }, 'tasks[0].id', /expected a Task Master id/],
  ];
  for (const [root, where, message] of cases) {
    const e = importErrorOf(() => detectAndParse(JSON.stringify(root), 'shape.json'), 'shape.json');
    assert.equal(e.details.where, where, e.message.slice(0, 300));
    assert.match(e.message, message);
  }
});

void test('an unknown dependency names both tasks and points at the dependency', async () => {
  const file = fixture('malformed', 'unknown-dependency.json');
  const e = await importRejection(importFile(file), file);
  assert.equal(e.details.where, 'master.tasks[1].dependencies[1]');
  assert.match(e.message, /TM-2 \(master\.tasks\[1\]\) depends on 9, which is not a task or subtask in tag "master"/);
  assert.match(e.message, /It is at line 5, column 83\.$/);
  assert.match(e.details.fix ?? '', /validate-dependencies/);

  const sub = importErrorOf(
    () =>
      detectAndParse(
        JSON.stringify({ tasks: [{ id: 4, title: 'a', subtasks: [{ id: 1, title: 'b', dependencies: [7] }] }] }),
        'sub.json',
      ),
    'sub.json',
  );
  assert.equal(sub.details.where, 'tasks[0].subtasks[0].dependencies[0]');
  assert.match(
    sub.message,
    /TM-4\.1 \(tasks\[0\]\.subtasks\[0\]\) depends on 7, which is neither a subtask of task 4 nor a task in sub\.json/,
  );

  const dotted = importErrorOf(
    () => detectAndParse(JSON.stringify({ tasks: [{ id: 1, title: 'a', dependencies: ['1.5'] }] }), 'dot.json'),
    'dot.json',
  );
  assert.match(dotted.message, /depends on "1\.5", which is not a task or subtask/);
});

void test('a duplicate task id names both places', async () => {
  const file = fixture('malformed', 'duplicate-id.json');
  const e = await importRejection(importFile(file), file);
  assert.equal(e.details.where, 'tasks[2].id');
  assert.match(e.message, /Task id 2 appears twice in .*: at tasks\[1\] and at tasks\[2\]/);

  const stringAndNumber = importErrorOf(
    () =>
      detectAndParse(
        JSON.stringify({
          tasks: [
            { id: 3, title: 'a' },
            { id: '3', title: 'b' },
          ],
        }),
        'x.json',
      ),
    'x.json',
  );
  assert.equal(stringAndNumber.details.where, 'tasks[1].id');

  // Subtasks sharing an id within their task are not an error: Task Master reads such files, and
  // the import numbers them by position (taskMasterImport.test.ts has the details).
  const sub = detectAndParse(
    JSON.stringify({
      tasks: [
        {
          id: 1,
          title: 'a',
          subtasks: [
            { id: 2, title: 'b' },
            { id: 2, title: 'c' },
          ],
        },
      ],
    }),
    'x.json',
  );
  assert.deepEqual(
    sub.tasks.map((t) => `${t.spec.id}:${t.spec.title}`),
    ['TM-1.1:b', 'TM-1.2:c', 'TM-1:a'],
  );
});

void test('a binary file is refused before parsing', async () => {
  await withTempDir(async (dir) => {
    const png = join(dir, 'image.png');
    await writeFile(
      png,
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52]),
    );
    const e = await importRejection(importFile(png), png);
    assert.equal(e.details.where, 'byte 8');
    assert.match(e.message, /looks like a binary file/);

    const utf16 = join(dir, 'tasks-utf16.json');
    await writeFile(utf16, Buffer.from(`\uFEFF{"tasks": []}`, 'utf16le'));
    assert.match((await importRejection(importFile(utf16), utf16)).message, /UTF-16/);

    const latin1 = join(dir, 'latin1.json');
    await writeFile(
      latin1,
      Buffer.concat([Buffer.from('{\n  "tasks": [{"id": 1, "title": "caf'), Buffer.from([0xe9]), Buffer.from('"}]}')]),
    );
    const bad = await importRejection(importFile(latin1), latin1);
    assert.equal(bad.details.where, '2:36');
    assert.match(bad.message, /not UTF-8 text/);
  });
});

void test('a file over the size limit is refused without being read', async () => {
  await withTempDir(async (dir) => {
    const big = join(dir, 'tasks.json');
    // A sparse file: 50 MB and one byte long, costing no disk.
    const handle = await open(big, 'w');
    await handle.truncate(MAX_IMPORT_BYTES + 1);
    await handle.close();
    const e = await importRejection(importFile(big), big);
    assert.equal(e.details.where, '(whole file)');
    assert.match(e.message, /is 50\.0 MB, more than the import limit of 50\.0 MB/);

    const small = join(dir, 'small.json');
    await writeFile(small, JSON.stringify({ tasks: [{ id: 1, title: 'a' }] }));
    const limited = await importRejection(importFile(small, { maxBytes: 10 }), small);
    assert.match(limited.message, /bytes, more than the import limit of 10 bytes/);
    assert.equal((await importFile(small, { maxBytes: 1000 })).tasks.length, 1);
  });
});

void test('a missing file and a directory get a clear error', async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, 'nope.json');
    assert.match((await importRejection(importFile(missing), missing)).message, /does not exist/);
    const sub = join(dir, 'tasks');
    await mkdir(sub);
    assert.match((await importRejection(importFile(sub), sub)).message, /is not a file/);
  });
});
