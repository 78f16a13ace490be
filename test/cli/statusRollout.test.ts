import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, cli, fails, git, json, mentions, ok, requireCli, shown, status, withRepo } from './cliKit';

/** `pipeline status [--json]`, `pipeline mode rollout`, `pipeline rollout check` and `pipeline run --dry`. */

requireCli();

interface RolloutJson {
  mode: string;
  next: string | null;
  ready: boolean;
  reasons: string[];
  passed: string[];
}

/** Every file of `.pipeline/` with its bytes, to show that a command wrote nothing at all. */
async function homeBytes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(p, (await readFile(p)).toString('base64'));
    }
  };
  await walk(join(dir, '.pipeline'));
  return out;
}

test("status --json keeps the seed's shape: version, modes, tasks, agents, queues per stage", async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'One');
    await ok(dir, 'task', 'add', 'Two', '--depends-on', 'TASK-001');
    await ok(dir, 'task', 'add', 'Three');
    await ok(dir, 'task', 'block', 'TASK-003', 'needs a person');
    const s = await status(dir);
    assert.equal(s.version, '1.0.0');
    assert.equal(s.orchestration_mode, 'parallel');
    assert.equal(s.mode, 'production');
    assert.equal(s.leader, null, 'nobody leads while no pipeline runs');
    for (const key of ['version', 'orchestration_mode', 'mode', 'tasks', 'agents', 'queues'])
      assert.ok(key in s, `status --json has ${key}`);

    const t = s.tasks['TASK-002']!;
    assert.equal(t.id, 'TASK-002');
    assert.equal(t.status, 'pending');
    assert.equal(t.assigned_to, null);
    assert.ok(!Number.isNaN(Date.parse(t.created_at)), `created_at is a time: ${t.created_at}`);
    assert.deepEqual(t.prerequisites, ['TASK-001']);

    assert.deepEqual(Object.keys(s.agents).sort(), ['architect', 'implementer', 'supervisor', 'tester']);
    for (const a of Object.values(s.agents)) {
      assert.equal(a.status, 'idle');
      assert.equal(a.current_task, null);
    }
    // One queue per stage, between the seed's unassigned and blocked/completed.
    for (const q of ['unassigned', 'architect', 'test', 'implementation', 'supervisor', 'blocked', 'completed'])
      assert.ok(Array.isArray(s.queues[q]), `queue ${q}`);
    assert.deepEqual(s.queues.unassigned, ['TASK-001', 'TASK-002']);
    assert.deepEqual(s.queues.blocked, ['TASK-003']);
    assert.deepEqual(s.counts, { pending: 2, blocked: 1 });

    const text = await ok(dir, 'status');
    mentions(text, 'orchestration: parallel', 'rollout:       production', 'leader:        none');
    assert.match(text, /^ {2}unassigned\s+TASK-001 TASK-002$/m);
    assert.match(text, /^ {2}architect\s+architect\s+idle/m);
  });
});

test('mode rollout: an unknown mode lists the known ones; rollout check exits 3 with reasons until ready, 0 when ready; --json parses', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    mentions(await fails(dir, 2, 'mode', 'rollout', 'staging'), '"staging"', 'shadow, pilot or production');

    // Production with nothing blocked is healthy.
    let r = await cli(dir, ['rollout', 'check']);
    assert.equal(r.code, 0, shown(r));
    mentions(r.stdout, 'production: HEALTHY', 'ok   target branch main exists');

    mentions(await ok(dir, 'mode', 'rollout', 'shadow'), 'production → shadow');
    mentions(await ok(dir, 'mode', 'rollout', 'shadow'), 'Already in shadow mode');
    // Shadow with no decisions and no pilot task: not ready, and why.
    r = await cli(dir, ['rollout', 'check']);
    assert.equal(r.code, 3, shown(r));
    mentions(
      r.stdout,
      'shadow → pilot: NOT READY',
      'FAIL shadow mode has recorded no decisions yet',
      'FAIL no open task is labelled "pilot"',
    );
    r = await cli(dir, ['rollout', 'check', '--json']);
    assert.equal(r.code, 3, shown(r));
    const notReady = JSON.parse(r.stdout) as RolloutJson;
    assert.equal(notReady.ready, false);
    assert.equal(notReady.mode, 'shadow');
    assert.equal(notReady.next, 'pilot');
    assert.equal(notReady.reasons.length, 2, notReady.reasons.join('\n'));

    // A pilot task and a shadow run that records what it would do: ready for the pilot.
    await ok(dir, 'task', 'add', 'Pilot work', '--label', 'pilot');
    const shadowRun = await cli(dir, ['run', '--until-idle']);
    mentions(shadowRun.stdout, 'shadow: would start architect (architect) on TASK-001');
    r = await cli(dir, ['rollout', 'check', '--json']);
    assert.equal(r.code, 0, shown(r));
    const ready = JSON.parse(r.stdout) as RolloutJson;
    assert.deepEqual([ready.ready, ready.reasons], [true, []]);
    assert.ok(
      ready.passed.some((p) => /recorded 1 decision/.test(p)),
      ready.passed.join('\n'),
    );
    assert.equal(await git(dir, 'branch', '--list', 'pipeline/*'), '', 'shadow mode made no branch');
    assert.equal((await git(dir, 'worktree', 'list')).split('\n').length, 1, 'shadow mode made no worktree');

    // Pilot with nothing merged: not ready.
    await ok(dir, 'mode', 'rollout', 'pilot');
    r = await cli(dir, ['rollout', 'check']);
    assert.equal(r.code, 3, shown(r));
    mentions(r.stdout, 'pilot → production: NOT READY', 'FAIL no pilot task has been merged yet');

    // Run the pilot task through every stage: merged onto pipeline/pilot, not yet promoted.
    const run = await cli(dir, ['run', '--until-idle'], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, shown(run));
    mentions(run.stdout, 'TASK-001 merged');
    r = await cli(dir, ['rollout', 'check']);
    assert.equal(r.code, 3, shown(r));
    mentions(r.stdout, 'ok   1 pilot task(s) merged', 'FAIL pipeline/pilot has');
    // A person promotes it: ready for production.
    await git(dir, 'merge', '--quiet', '--no-edit', 'pipeline/pilot');
    r = await cli(dir, ['rollout', 'check', '--json']);
    assert.equal(r.code, 0, shown(r));
    assert.equal((JSON.parse(r.stdout) as RolloutJson).ready, true);
  });
});

test('run --dry prints what the scheduler would do now and writes nothing', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Base');
    await ok(dir, 'task', 'add', 'Later', '--depends-on', 'TASK-001');
    await ok(dir, 'task', 'add', 'Urgent', '--priority', 'critical');
    const before = await homeBytes(dir);
    const out = await ok(dir, 'run', '--dry');
    mentions(
      out,
      'parallel mode, production rollout:',
      'would queue TASK-001 for architect',
      'would queue TASK-003 for architect',
      'would start architect (architect) on TASK-003: Urgent',
    );
    assert.doesNotMatch(out, /TASK-002 for/, 'a task whose prerequisite is not merged is not queued');
    assert.deepEqual(await homeBytes(dir), before, 'not a byte of .pipeline/ changed');
    assert.equal((await status(dir)).tasks['TASK-001']!.status, 'pending');

    // With no agents, it says what holds the queued work back.
    await withRepo({ init: true }, async (empty) => {
      await ok(empty.dir, 'task', 'add', 'Alone');
      const none = await ok(empty.dir, 'run', '--dry');
      mentions(none, 'would queue TASK-001 for architect');
      await ok(empty.dir, 'mode', 'rollout', 'shadow');
      mentions(await ok(empty.dir, 'run', '--dry'), 'shadow rollout');
    });
    const usage = await cli(dir, ['run', '--runner', 'ssh']);
    assert.equal(usage.code, 2, shown(usage));
    mentions(usage.stderr, '"ssh"', 'process or tmux');
    const tasks = await json<unknown[]>(dir, 'task', 'list', '--json');
    assert.equal(tasks.length, 3);
  });
});

test('output into a pipe whose reader has gone (`pipeline status | head -1`) ends quietly, without a stack trace', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    for (let i = 0; i < 3; i++) await ok(dir, 'task', 'add', `Task ${i}`);
    for (const args of [['status'], ['status', '--json'], ['task', 'list']]) {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      // The reader goes away before the first line is written.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      assert.equal(stderr, '', `pipeline ${args.join(' ')} printed nothing on stderr`);
      assert.equal(code, 0, `pipeline ${args.join(' ')}`);
    }
  });
});

test('doctor and rollout check: an agent whose CLI is not installed is named with the fix; exit 3', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    await ok(dir, 'agent', 'add', 'architect-2', '--role', 'architect', '--command', 'claude');
    // A PATH without the agent CLIs: only node and git.
    const env = { PATH: '/usr/local/bin:/usr/bin:/bin' };
    const d = await cli(dir, ['doctor'], { env });
    assert.equal(d.code, 3, shown(d));
    mentions(
      d.stdout,
      'architect-2 (claude): PROBLEM',
      'FAIL claude is not installed (not found on PATH): install `npm install -g @anthropic-ai/claude-code`',
      'architect (scripted): ok',
    );
    const r = await cli(dir, ['rollout', 'check'], { env });
    assert.equal(r.code, 3, shown(r));
    mentions(
      r.stdout,
      'production: NOT HEALTHY',
      'FAIL agent architect-2: claude is not installed',
      'ok   agent architect can run',
    );
  });
});
