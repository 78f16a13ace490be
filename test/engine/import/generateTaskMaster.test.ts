import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectAndParse } from '../../../src/engine/import/taskImport';
import { generateTaskMasterFile, generateTaskMasterJson } from './generateTaskMaster';
import { assertPrerequisitesFirst } from './importTestKit';

/** The generator the import benchmark uses: reproducible, realistic, acyclic, and importable. */

void test('the same seed gives the same file; another seed another file', () => {
  assert.equal(generateTaskMasterJson({ tasks: 50, seed: 11 }), generateTaskMasterJson({ tasks: 50, seed: 11 }));
  assert.notEqual(generateTaskMasterJson({ tasks: 50, seed: 11 }), generateTaskMasterJson({ tasks: 50, seed: 12 }));
});

void test('its shape: N tasks in master, subtasks, about three dependencies per task, a second tag', () => {
  const file = generateTaskMasterFile({ tasks: 400, seed: 2 });
  assert.deepEqual(Object.keys(file), ['master', 'feature-x']);
  const tasks = file.master?.tasks ?? [];
  assert.equal(tasks.length, 400);
  assert.equal(file['feature-x']?.tasks.length, 10);
  const deps = tasks.reduce((s, t) => s + t.dependencies.length, 0) / tasks.length;
  assert.ok(deps > 2.5 && deps < 3.5, `average dependencies ${deps}`);
  const withSubtasks = tasks.filter((t) => t.subtasks.length > 0).length / tasks.length;
  assert.ok(withSubtasks > 0.6 && withSubtasks < 0.9, `share with subtasks ${withSubtasks}`);
  const statuses = new Set(tasks.map((t) => t.status));
  for (const s of ['pending', 'in-progress', 'review', 'done', 'deferred', 'blocked', 'cancelled'])
    assert.ok(statuses.has(s), s);
  assert.ok(
    tasks.some((t) => t.dependencies.some((d) => typeof d === 'string' && d.includes('.'))),
    'some dependencies on subtasks',
  );
  assert.ok(tasks.every((t) => typeof t.id === 'number'));
  assert.ok(generateTaskMasterFile({ tasks: 5, stringIds: true }).master?.tasks.every((t) => typeof t.id === 'string'));
});

void test('it imports without errors, and the result can be fully ordered (acyclic)', () => {
  for (const stringIds of [false, true]) {
    const r = detectAndParse(generateTaskMasterJson({ tasks: 300, seed: 4, stringIds }), 'generated.json');
    assert.equal(r.format, 'taskmaster-tagged');
    assert.ok(r.tasks.length > 300);
    assertPrerequisitesFirst(r);
    const other = detectAndParse(generateTaskMasterJson({ tasks: 300, seed: 4, stringIds }), 'generated.json', {
      tag: 'feature-x',
      prefix: 'FX',
    });
    assertPrerequisitesFirst(other);
  }
});
