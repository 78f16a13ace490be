import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, fails, FIXTURES, git, json, logicalState, mentions, ok, requireCli, shown, withRepo } from './cliKit';

/**
 * Mistakes a new user makes on the command line, each refused with an error that names the argument
 * or the id at fault and what to do, and none of them leaving anything half done.
 */

requireCli();

test('init --preset of an unknown preset is a usage error listing the presets, and creates nothing', async () => {
  await withRepo({}, async ({ dir }) => {
    const err = await fails(dir, 2, 'init', '--preset', 'bogus');
    mentions(err, 'Unknown preset "bogus"', 'at: --preset', 'claude, codex, gemini, aider, scripted', 'agent add');
    assert.equal(existsSync(join(dir, '.pipeline')), false, 'no .pipeline/ was created');
    mentions(await ok(dir, 'init', '--preset', 'scripted'), 'Added agent architect');
  });
});

test('init --target of a branch that does not exist is a usage error naming it and the branches, and creates nothing', async () => {
  await withRepo({}, async ({ dir }) => {
    await git(dir, 'branch', 'develop');
    const err = await fails(dir, 2, 'init', '--target', 'no-such-branch');
    mentions(err, 'no branch "no-such-branch"', 'at: --target', 'develop, main', 'git branch', 'current branch (main)');
    mentions(await fails(dir, 2, 'init', '--target', ''), 'no branch ""', 'at: --target');
    assert.equal(existsSync(join(dir, '.pipeline')), false, 'no .pipeline/ was created');
    mentions(await ok(dir, 'init', '--target', 'develop'), 'target branch develop');
  });
});

test('task list --status of an unknown status is a usage error listing the statuses', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    mentions(
      await fails(dir, 2, 'task', 'list', '--status', 'bogus'),
      'Unknown task status "bogus"',
      'at: --status',
      'pending, queued, working, merging, blocked, done, cancelled',
    );
    assert.equal((await json<unknown[]>(dir, 'task', 'list', '--status', 'pending', '--json')).length, 1);
    mentions(await ok(dir, 'task', 'list', '--status', 'blocked'), 'No blocked tasks.');
  });
});

test('task add --paths refuses absolute paths and paths that leave the repository, and adds nothing', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const before = await logicalState(dir);
    for (const bad of ['/etc/**', '../other-repo/**', 'src/../../x', 'C:/Windows/**', '~/notes/*']) {
      const err = await fails(dir, 2, 'task', 'add', 'Escape', '--paths', `src/ok/**,${bad}`);
      mentions(err, 'Invalid task path', JSON.stringify(bad), 'at: --paths', 'relative to the repository root');
    }
    assert.deepEqual(await logicalState(dir), before, 'nothing was added');
    // A ".." that stays inside the repository is fine.
    await ok(dir, 'task', 'add', 'Inside', '--paths', 'src/../lib/**,./docs/*.md');
    const [t] = await json<Array<{ paths: string[] }>>(dir, 'task', 'list', '--json');
    assert.deepEqual(t?.paths, ['src/../lib/**', './docs/*.md']);
  });
});

test("task add --id '' is a usage error, not a generated id", async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    mentions(await fails(dir, 2, 'task', 'add', 'Empty id', '--id', ''), 'Invalid task id ""', 'at: --id', 'TASK-001');
    assert.deepEqual(await json<unknown[]>(dir, 'task', 'list', '--json'), [], 'nothing was added');
  });
});

test('task add --depends-on an unknown id names it as the unknown prerequisite of the task being added', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const err = await fails(dir, 1, 'task', 'add', 'Needs a ghost', '--depends-on', 'TASK-999');
    mentions(
      err,
      'Unknown prerequisite TASK-999',
      'TASK-001 ("Needs a ghost"), the task being added',
      'Nothing was added',
      'fix: Add TASK-999 first',
    );
    assert.doesNotMatch(err, /^pipeline: Task TASK-001 /m, 'the message does not open on the task that was never made');
    assert.deepEqual(await json<unknown[]>(dir, 'task', 'list', '--json'), []);
  });
});

test('task priority with an unknown priority names the positional argument, not --priority', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    const err = await fails(dir, 2, 'task', 'priority', 'TASK-001', 'urgent');
    mentions(err, 'Unknown priority "urgent"', '<priority> argument', 'critical, high, medium, low');
    assert.doesNotMatch(err, /--priority/);
  });
});

test('task retry says why a task that is not blocked cannot be retried, and what to do, by its status', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    // The seed's state: TASK-001 completed (done), TASK-003 pending, TASK-004 blocked.
    await ok(dir, 'task', 'import', join(FIXTURES, 'seed-state.json'));
    const done = await fails(dir, 1, 'task', 'retry', 'TASK-001');
    mentions(done, 'TASK-001 is done', 'a done task cannot be retried', 'add a new task');
    assert.doesNotMatch(done, /Block it/);
    mentions(await fails(dir, 1, 'task', 'retry', 'TASK-003'), 'TASK-003 is pending', 'nothing to retry');
    await ok(dir, 'task', 'cancel', 'TASK-003');
    const cancelled = await fails(dir, 1, 'task', 'retry', 'TASK-003');
    mentions(cancelled, 'a cancelled task cannot be retried', 'add a new task');
    assert.doesNotMatch(cancelled, /Block it/);
    mentions(await ok(dir, 'task', 'retry', 'TASK-004'), 'TASK-004 is pending');
  });
});

test('an import of a file that does not exist names it once, without "((file))"', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const missing = join(dir, 'no-such-tasks.json');
    const r = await cli(dir, ['task', 'import', missing]);
    assert.equal(r.code, 1, shown(r));
    mentions(r.stderr, `${missing} does not exist`, `  file: ${missing}\n`);
    assert.doesNotMatch(r.stderr, /\(\(/, 'no doubled parentheses');
  });
});
