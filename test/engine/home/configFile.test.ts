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
