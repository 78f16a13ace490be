import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPipelineError } from '../../../src/engine/errors';
import { configSchema } from '../../../src/engine/model/configSchema';
import { emptyState } from '../../../src/engine/model/schema';
import { assertTaskPaths, buildTasks, taskPathProblem } from '../../../src/engine/model/taskFactory';

/** The one rule for task paths, used by the CLI, the editor's Add Task and every import. */

test('paths relative to the repository that stay inside it are accepted', () => {
  for (const p of ['src/**', 'docs/*.md', './README.md', 'src/../lib/**', 'a/b/../../c', '**/*.ts', 'dir/'])
    assert.equal(taskPathProblem(p), undefined, p);
});

test('absolute paths, home paths and paths that leave the repository are refused, saying which', () => {
  for (const p of ['/etc/**', '\\\\server\\share', 'C:/Windows/**', 'c:\\x', '~/notes/*'])
    assert.match(taskPathProblem(p) ?? '', /is not relative to the repository root/, p);
  for (const p of ['../other/**', 'src/../../x', '..', './..', 'a\\..\\..\\b'])
    assert.match(taskPathProblem(p) ?? '', /leaves the repository/, p);
  assert.match(taskPathProblem('  ') ?? '', /empty/);
});

test('assertTaskPaths names the argument and the fix; buildTasks applies the rule to every task it builds', () => {
  assert.throws(
    () => assertTaskPaths(['src/**', '/etc/**'], '--paths', 'usage'),
    (e: unknown) =>
      isPipelineError(e) &&
      e.code === 'usage' &&
      e.details.where === '--paths' &&
      /"\/etc\/\*\*"/.test(e.message) &&
      /relative to the repository root/.test(e.details.fix ?? ''),
  );
  const config = configSchema.parse({});
  assert.throws(
    () =>
      buildTasks(
        [{ spec: { title: 'Imported', paths: ['../outside/**'] }, source: 'tasks.json master.tasks[2]' }],
        emptyState(),
        config,
        '2026-01-01T00:00:00.000Z',
      ),
    (e: unknown) =>
      isPipelineError(e) &&
      e.code === 'invalid-task' &&
      e.details.where === 'tasks.json master.tasks[2], paths' &&
      /leaves the repository/.test(e.message),
  );
});
