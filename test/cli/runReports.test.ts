import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cli, mentions, ok, requireCli, shown, startCli, status, withRepo } from './cliKit';

/**
 * What `pipeline run` tells the user: the attempt at each stage, the idle report, a shadow run's
 * end, and calling off a drained orchestration switch.
 */

requireCli();

test('run --until-idle: the idle report gives each waiting task its reason on a line of its own, without nested parentheses', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    await ok(dir, 'task', 'add', 'Second', '--depends-on', 'TASK-001');
    await ok(dir, 'task', 'block', 'TASK-001', 'waiting for the keys (from ops)');
    const r = await cli(dir, ['run', '--until-idle']);
    assert.equal(r.code, 1, shown(r));
    const lines = r.stdout.split('\n');
    const idle = lines.findIndex((l) => l.startsWith('Idle:'));
    assert.equal(lines[idle], 'Idle: 0 task(s) completed; blocked: TASK-001; cannot go on: TASK-002.', r.stdout);
    assert.match(
      lines[idle + 1] ?? '',
      /^ {2}TASK-002 waits for its prerequisites to be merged: TASK-001 \(blocked: waiting for the keys \(from ops\)\)\.$/,
      r.stdout,
    );
    assert.doesNotMatch(r.stdout, /\)\.\)/, 'no sentence closes inside parentheses');
  });
});

test('run: "attempt N" counts the attempts at the stage, so each stage starts at attempt 1 and a retry is attempt 2', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    // The tester fails its first attempt; the retry (after the back-off) succeeds.
    await ok(dir, 'task', 'add', 'Counted', '--description', 'scripted: fail test 1');
    const r = await cli(dir, ['run', '--until-idle'], { timeoutMs: 90_000 });
    assert.equal(r.code, 0, shown(r));
    const took = [...r.stdout.matchAll(/took TASK-001 \((\w+), attempt (\d+)\)/g)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(took, ['architect 1', 'test 1', 'test 2', 'implementation 1', 'supervisor 1'], r.stdout);
  });
});

test('an agent whose program is not installed: the task is blocked at once saying the command could not be started and what to do, with either runner', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(
      dir,
      'agent',
      'add',
      'architect',
      '--role',
      'architect',
      '--command',
      'no-such-agent-cli --task {taskFile}',
    );
    await ok(dir, 'task', 'add', 'First');
    for (const runner of ['process', 'tmux']) {
      const r = await cli(dir, ['run', '--until-idle', '--runner', runner], { timeoutMs: 60_000 });
      assert.equal(r.code, 1, shown(r));
      mentions(
        r.stdout,
        "TASK-001 BLOCKED: architect's command `no-such-agent-cli` could not be started: command not found: no-such-agent-cli.",
        "Install it, or change the agent's command (`pipeline agent add`), then retry the task",
        'not retried',
        'Idle: 0 task(s) completed; blocked: TASK-001.',
      );
      assert.doesNotMatch(r.stdout, /without a completion marker/, `${runner}: not an agent that ran and stopped`);
      const t = (await status(dir)).tasks['TASK-001']!;
      assert.equal(t.history.filter((h) => h.event === 'assign').length, runner === 'process' ? 1 : 2, 'no retry');
      await ok(dir, 'task', 'retry', 'TASK-001');
    }
  });
});

test('run --until-idle in shadow mode: idle once every decision is recorded, exit 0, saying how many and that nothing ran', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'First');
    await ok(dir, 'task', 'add', 'Second');
    await ok(dir, 'mode', 'rollout', 'shadow');
    const r = await cli(dir, ['run', '--until-idle']);
    assert.equal(r.code, 0, shown(r));
    mentions(
      r.stdout,
      'shadow: would start architect (architect) on TASK-001',
      'Idle (shadow mode): recorded 1 decision(s) in this run (1 in all); nothing ran and no git state changed.',
    );
    assert.doesNotMatch(r.stdout, /nothing holds it back|cannot go on/, r.stdout);
    const s = await status(dir);
    assert.deepEqual(
      Object.values(s.tasks).map((t) => t.status),
      ['queued', 'queued'],
      'nothing ran',
    );
  });
});

test('asking for the current orchestration mode while a drained switch is pending calls the switch off', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Busy work', '--description', 'scripted: hang architect');
    const run = startCli(dir, ['run']);
    try {
      await run.waitFor(/architect took TASK-001 \(architect, attempt 1\)/);
      mentions(await ok(dir, 'mode', 'orchestration', 'sequential', '--drain'), 'Switching to sequential mode');
      assert.equal((await status(dir)).pending_switch, 'sequential');

      const out = await ok(dir, 'mode', 'orchestration', 'parallel');
      mentions(out, 'Cancelled the pending switch to sequential mode; staying in parallel mode.');
      const s = await status(dir);
      assert.deepEqual([s.orchestration_mode, s.pending_switch], ['parallel', null]);
      await run.waitFor(/pending orchestration switch cancelled: staying in parallel mode/);
      // Nothing is pending any more: asking again changes nothing.
      mentions(await ok(dir, 'mode', 'orchestration', 'parallel'), 'Already in parallel mode');
      const stopped = await run.stop('SIGTERM');
      assert.equal(stopped.code, 130, run.output());
    } finally {
      await run.stop('SIGKILL');
    }
  });
});
