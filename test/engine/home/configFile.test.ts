import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/engine/home/configFile';
import { isPipelineError } from '../../../src/engine/errors';

const FILE = '/repo/.pipeline/config.json';

function fails(text: string, check: (msg: string, where: string | undefined) => void) {
  assert.throws(
    () => parseConfig(text, FILE),
    (e: unknown) => {
      assert.ok(isPipelineError(e));
      assert.equal(e.code, 'invalid-config');
      assert.equal(e.details.file, FILE);
      assert.ok(e.details.fix);
      check(e.message, e.details.where);
      return true;
    },
  );
}

test('an empty object gives the defaults: four stages, main, retries', () => {
  const c = parseConfig('{}', FILE);
  assert.deepEqual(
    c.stages.map((s) => s.name),
    ['architect', 'test', 'implementation', 'supervisor'],
  );
  assert.equal(c.targetBranch, 'main');
  assert.equal(c.retry.maxAttempts, 3);
  assert.deepEqual(c.conflictStages, ['test', 'implementation']);
});

test('a JSON syntax error names the line and column', () => {
  fails('{\n  "targetBranch": "main",\n  oops\n}', (msg, where) => {
    assert.match(msg, /not valid JSON/);
    assert.match(where ?? '', /line 3, column 3/);
  });
});

test('a wrong value names its JSON path', () => {
  fails('{"retry": {"maxAttempts": 0}}', (msg, where) => {
    assert.match(msg, /retry\.maxAttempts/);
    assert.equal(where, 'retry.maxAttempts');
  });
  fails('{"stages": [{"name": "Bad Name", "role": "x"}]}', (msg) => assert.match(msg, /stages\[0\]\.name/));
});

test('an unknown key is refused, not ignored', () => {
  fails('{"targetBrnach": "dev"}', (msg) => assert.match(msg, /targetBrnach/));
});

test('a rework or conflict stage that is not a stage is refused', () => {
  fails('{"reworkStage": "coding"}', (msg) => assert.match(msg, /"coding" is not one of the stages/));
  fails('{"conflictStages": ["test", "nope"]}', (msg) => assert.match(msg, /conflictStages\[1\]/));
  fails(
    '{"stages": [{"name": "a", "role": "x"}, {"name": "a", "role": "y"}], "reworkStage": "a", "conflictStages": []}',
    (msg) => assert.match(msg, /appears twice/),
  );
});

test('a byte-order mark at the start of the file is accepted (Windows editors write one)', () => {
  const c = parseConfig('\uFEFF{\n  "targetBranch": "develop"\n}\n', FILE);
  assert.equal(c.targetBranch, 'develop');
  // Only at the start: elsewhere it is not JSON whitespace, and the place says so.
  fails('{"targetBranch": "develop"}\uFEFF', (msg, where) => {
    assert.match(msg, /after the end of the JSON value/);
    assert.equal(where, 'line 1, column 28');
  });
});

test('a wrong value names its JSON path as the import does, and its line and column in the file', () => {
  fails('{\n  "stages": [\n    {"name": "Bad Name", "role": "x"}\n  ]\n}', (msg, where) => {
    assert.equal(where, 'stages[0].name');
    assert.match(msg, /\(line 3, column 6\)/);
  });
  fails('{"targetBrnach": "dev"}', (msg, where) => {
    assert.equal(where, 'targetBrnach');
    assert.match(msg, /\(line 1, column 2\)/);
  });
  fails('[]', (_msg, where) => assert.equal(where, '(top level)'));
});
