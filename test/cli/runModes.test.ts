import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  agentPids,
  alive,
  cli,
  fails,
  mentions,
  ok,
  requireCli,
  shown,
  startCli,
  status,
  until,
  withRepo,
  type LiveCli,
} from './cliKit';

/**
 * Orchestration mode switches and agent removal while a real `pipeline run` (a child process, the
 * leader) has an agent at work: scripted agents told to `hang` (or to take their time) keep it
 * busy. The switch is refused naming the busy agent and task, unless the user drains or forces.
 */

requireCli();

/** A repository with one scripted agent per role and TASK-001 described by `description`, and a run leading it. */
async function running(dir: string, description: string): Promise<LiveCli> {
  await ok(dir, 'task', 'add', 'Busy work', '--description', description);
  const run = startCli(dir, ['run']);
  await run.waitFor(/architect took TASK-001 \(architect, attempt 1\)/);
  return run;
}

/** Stops the run with SIGTERM, as Ctrl-C would, and checks it exits 130 within seconds. */
async function stopRun(run: LiveCli): Promise<void> {
  const r = await run.stop('SIGTERM', 15_000);
  assert.equal(r.code, 130, `pipeline run stops on SIGTERM with 130:\n${run.output()}`);
}

/** The running agent's pid, once its process has started. */
async function agentPid(dir: string): Promise<number> {
  const pid = await until('the agent process starting', 10_000, async () => (await agentPids(dir))[0]);
  assert.ok(alive(pid), 'the agent runs');
  return pid;
}

test('with an agent at work: status shows it, and a switch is refused naming it and its task', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    const run = await running(dir, 'scripted: hang architect');
    try {
      // status --json while working: the seed's words for who does what.
      const s = await status(dir);
      assert.equal(s.agents.architect?.status, 'working');
      assert.equal(s.agents.architect?.current_task, 'TASK-001');
      assert.equal(s.tasks['TASK-001']?.status, 'working');
      assert.equal(s.tasks['TASK-001']?.assigned_to, 'architect');
      assert.deepEqual(s.queues.architect, ['TASK-001']);
      assert.equal(s.leader?.pid, run.pid);
      assert.equal(s.leader?.label, 'pipeline run');
      assert.match(await ok(dir, 'agent', 'list'), /^architect\s+architect\s+working\s+TASK-001\s+scripted$/m);

      // Unknown modes list the known ones.
      mentions(
        await fails(dir, 2, 'mode', 'orchestration', 'round-robin'),
        '"round-robin"',
        'hybrid',
        'parallel',
        'sequential',
      );
      // Busy: refused, naming the agent and its task, saying what to do.
      mentions(
        await fails(dir, 1, 'mode', 'orchestration', 'sequential'),
        'architect (TASK-001)',
        '--drain',
        '--force',
      );
      mentions(
        await fails(dir, 2, 'mode', 'orchestration', 'sequential', '--drain', '--force'),
        '--drain or --force, not both',
      );
      const after = await status(dir);
      assert.deepEqual(
        [after.orchestration_mode, after.pending_switch, after.agents.architect?.status],
        ['parallel', null, 'working'],
      );
      mentions(await ok(dir, 'mode', 'orchestration', 'parallel'), 'Already in parallel mode');
      await stopRun(run);
    } finally {
      await run.stop('SIGKILL');
    }
  });
});

test('--drain switches once the busy agent has finished its stage', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    const run = await running(dir, 'Takes a while.\n\nscripted: delay 5000');
    try {
      const drain = await ok(dir, 'mode', 'orchestration', 'sequential', '--drain');
      mentions(drain, 'Switching to sequential mode once in-flight work drains', 'architect (TASK-001)');
      // The architect finishes its stage, then the switch applies, before any new work starts.
      await run.waitFor(/orchestration mode parallel → sequential/, 30_000);
      const out = run.output();
      const done = out.indexOf('TASK-001 architect done');
      assert.ok(done >= 0 && done < out.indexOf('orchestration mode parallel → sequential'), out);
      assert.doesNotMatch(
        out.slice(0, out.indexOf('orchestration mode')),
        /tester took/,
        'no new work started while the switch waited',
      );
      const after = await status(dir);
      assert.equal(after.orchestration_mode, 'sequential');
      assert.equal(after.pending_switch, null);
      mentions(await ok(dir, 'mode', 'orchestration', 'sequential'), 'Already in sequential mode');
      await stopRun(run);
    } finally {
      await run.stop('SIGKILL');
    }
  });
});

test('--drain while the agent hangs: the switch waits, and applies when the monitor stops and requeues the work', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    const run = await running(dir, 'scripted: hang architect');
    try {
      await ok(dir, 'mode', 'orchestration', 'sequential', '--drain');
      // No new work starts meanwhile, and nothing else changes.
      await new Promise((r) => setTimeout(r, 600));
      const s = await status(dir);
      assert.deepEqual(
        [s.orchestration_mode, s.pending_switch, s.agents.architect?.status],
        ['parallel', 'sequential', 'working'],
      );
      mentions(await ok(dir, 'status'), 'orchestration: parallel (switching to sequential once in-flight work drains)');
      mentions(await ok(dir, 'run', '--dry'), 'a switch to sequential mode waits for in-flight work to drain');
      await stopRun(run);
      mentions(run.output(), 'TASK-001 requeued: the monitor stopped', 'orchestration mode parallel → sequential');
      const after = await status(dir);
      assert.equal(after.orchestration_mode, 'sequential');
      assert.equal(after.pending_switch, null);
      assert.equal(after.tasks['TASK-001']?.status, 'queued');
      assert.equal(after.agents.architect?.status, 'idle');
      assert.equal(after.leader, null);
    } finally {
      await run.stop('SIGKILL');
    }
  });
});

test('--force requeues in-flight work at once and stops its agent; the run then stops cleanly', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    const run = await running(dir, 'scripted: hang architect');
    try {
      const pid = await agentPid(dir);
      const out = await ok(dir, 'mode', 'orchestration', 'sequential', '--force');
      mentions(out, 'Switched to sequential mode.', 'Requeued: TASK-001.');
      const s = await status(dir);
      assert.equal(s.orchestration_mode, 'sequential');
      assert.equal(s.pending_switch, null);
      const t = s.tasks['TASK-001']!;
      assert.ok(
        t.history.some((h) => h.event === 'requeue' && /forced switch to sequential/.test(h.note ?? '')),
        JSON.stringify(t.history),
      );
      // The agent's process that lost its task is stopped, not left running with nothing to do.
      await until('the requeued agent process ending', 10_000, () => !alive(pid));
      // Sequential mode takes the requeued task up again. A requeue is not a failed attempt, so it
      // is still the stage's first attempt (what the retry limit counts).
      await run.waitFor(
        /architect took TASK-001 \(architect, attempt 1\)[^]*architect took TASK-001 \(architect, attempt 1\)/,
      );
      await stopRun(run);
    } finally {
      await run.stop('SIGKILL');
    }
    for (const pid of await agentPids(dir)) assert.equal(alive(pid), false, `agent process ${pid} ended with the run`);
  });
});

test('agent remove of a working agent is refused naming its task; --force requeues the task and stops the agent', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    const run = await running(dir, 'scripted: hang architect');
    try {
      const pid = await agentPid(dir);
      mentions(await fails(dir, 1, 'agent', 'remove', 'architect'), 'architect is working on TASK-001', '--force');
      assert.equal((await status(dir)).agents.architect?.status, 'working');

      mentions(await ok(dir, 'agent', 'remove', 'architect', '--force'), 'Removed agent architect.');
      const s = await status(dir);
      assert.equal(s.agents.architect, undefined);
      assert.equal(s.tasks['TASK-001']?.status, 'queued');
      assert.equal(s.tasks['TASK-001']?.assigned_to, null);
      await run.waitFor(/TASK-001 requeued: agent architect removed/);
      await until('the removed agent process ending', 10_000, () => !alive(pid));

      // A new agent for the role is put to work at once.
      await ok(dir, 'agent', 'add', 'architect-2', '--role', 'architect', '--command', 'scripted');
      await run.waitFor(/architect-2 took TASK-001 \(architect, attempt 1\)/, 10_000);
      await stopRun(run);
    } finally {
      await run.stop('SIGKILL');
    }
    const r = await cli(dir, ['task', 'show', 'TASK-001']);
    assert.equal(r.code, 0, shown(r));
    mentions(r.stdout, 'requeue', 'agent architect removed', 'the monitor stopped');
  });
});
