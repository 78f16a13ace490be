import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/engine/home/configFile';
import { isPipelineError, type PipelineError } from '../../../src/engine/errors';

/**
 * Defaults that name stages (the rework stage, the conflict stages) must fit the stages a
 * configuration has: a pipeline without a test stage is valid, and when a key is wrong the error
 * says which key and a fix that works (deleting an absent key is no fix).
 */

const FILE = '/repo/.pipeline/config.json';
const stages = (...names: string[]) => names.map((name) => ({ name, role: name }));

function refused(config: unknown): PipelineError {
  try {
    parseConfig(JSON.stringify(config), FILE);
  } catch (e) {
    assert.ok(isPipelineError(e), String(e));
    assert.equal(e.code, 'invalid-config');
    return e;
  }
  assert.fail(`accepted: ${JSON.stringify(config)}`);
}

test('without a test stage, the default conflict stages are those of test and implementation that exist', () => {
  const c = parseConfig(JSON.stringify({ stages: stages('architect', 'implementation', 'supervisor') }), FILE);
  assert.deepEqual(c.conflictStages, ['implementation']);
  assert.equal(c.reworkStage, 'implementation');
  const none = parseConfig(JSON.stringify({ stages: stages('build', 'review'), reworkStage: 'build' }), FILE);
  assert.deepEqual(none.conflictStages, []);
  // Given explicitly, they are kept as given.
  const given = parseConfig(
    JSON.stringify({ stages: stages('build', 'review'), reworkStage: 'build', conflictStages: ['build'] }),
    FILE,
  );
  assert.deepEqual(given.conflictStages, ['build']);
});

test('an explicit conflict stage that is not a stage names the key and says how to fix it', () => {
  const e = refused({ stages: stages('architect', 'implementation', 'supervisor'), conflictStages: ['test'] });
  assert.match(
    e.message,
    /conflictStages\[0\]: "test" is not one of the stages \(architect, implementation, supervisor\)/,
  );
  assert.equal(e.details.where, 'conflictStages[0]');
  assert.match(e.details.fix ?? '', /"conflictStages"/);
  assert.match(e.details.fix ?? '', /delete the key to use the default \(implementation\)/);
});

test('an absent rework stage whose default is not a stage says the key must be set, not deleted', () => {
  const e = refused({ stages: stages('plan', 'code', 'review') });
  assert.match(e.message, /reworkStage: is not set, and its default "implementation" is not one of the stages/);
  assert.equal(e.details.where, 'reworkStage');
  assert.match(e.details.fix ?? '', /Add "reworkStage"/);
  assert.match(e.details.fix ?? '', /plan, code, review/);
  assert.doesNotMatch(e.details.fix ?? '', /delete/);
  // A wrong value given explicitly: set it to a stage (deleting it would not help here either).
  const wrong = refused({ stages: stages('plan', 'code', 'review'), reworkStage: 'coding' });
  assert.match(wrong.details.fix ?? '', /Set "reworkStage" to one of plan, code, review\.$/);
});
