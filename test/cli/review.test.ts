import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, fails, git, mentions, ok, requireCli, shown, startCli, status, withRepo } from './cliKit';

/**
 * `pipeline review`: the supervisor stage is a person (`"role": "human"`). A run takes the task up
 * to that stage and stops there, idle, saying it awaits review; status and task show say so; the
 * person answers changes (back to implementation), block, and finally approve, which a running
 * leader merges, the answer having come from another process.
 */

requireCli();

async function humanSupervisor(dir: string): Promise<void> {
  const file = join(dir, '.pipeline', 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as { stages: { name: string; role: string }[] };
  config.stages = config.stages.map((s) => (s.name === 'supervisor' ? { name: 'supervisor', role: 'human' } : s));
  await writeFile(file, JSON.stringify(config, null, 2) + '\n');
  for (const role of ['architect', 'tester', 'implementer'])
    await ok(dir, 'agent', 'add', role, '--role', role, '--command', 'scripted');
}

/** `pipeline run --until-idle` ends idle with the task waiting for its review (exit 1: it cannot go on alone). */
async function runToReview(dir: string): Promise<string> {
  const r = await cli(dir, ['run', '--until-idle'], { timeoutMs: 60_000 });
  assert.equal(r.code, 1, shown(r));
  mentions(r.stdout, 'implementation done → supervisor (awaiting your review: pipeline review TASK-001)');
  mentions(r.stdout, 'Idle: 0 task(s) completed; cannot go on: TASK-001.');
  mentions(r.stdout, 'TASK-001 is awaiting your review at supervisor: answer with `pipeline review TASK-001 approve`');
  assert.doesNotMatch(r.stdout, /took TASK-001 \(supervisor/, 'no agent took the human stage');
  return r.stdout;
}

test('pipeline review: a person answers changes, block and approve at a human stage', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await humanSupervisor(dir);
    mentions(await fails(dir, 2, 'agent', 'add', 'bob', '--role', 'human', '--command', 'scripted'), 'kept for people');
    await ok(dir, 'task', 'add', 'Greeting', '--paths', 'src/**');
    assert.match(await ok(dir, 'review'), /^No task awaits review\.$/m);

    await runToReview(dir);
    const s = await status(dir);
    assert.deepEqual(
      [s.tasks['TASK-001']?.status, s.tasks['TASK-001']?.stage, s.queues.supervisor],
      ['queued', 'supervisor', ['TASK-001']],
    );
    assert.deepEqual((s as unknown as { awaiting_review: string[] }).awaiting_review, ['TASK-001']);
    mentions(await ok(dir, 'status'), 'awaiting review: TASK-001');
    mentions(
      await ok(dir, 'task', 'show', 'TASK-001'),
      'waiting:       TASK-001 is awaiting your review at supervisor',
    );
    assert.match(await ok(dir, 'review'), /^TASK-001\s+supervisor\s+medium\s+Greeting$/m);
    const changes = await ok(dir, 'review', 'TASK-001');
    mentions(changes, 'pipeline/TASK-001 against main:', 'Answer with: pipeline review TASK-001 approve');
    assert.match(changes, /added\s+\S+/, `the files the task added are listed:\n${changes}`);

    // Wrong answers change nothing and say what to type.
    mentions(
      await fails(dir, 2, 'review', 'TASK-001', 'maybe'),
      'Unknown review answer "maybe"',
      'approve, changes, block',
    );
    mentions(await fails(dir, 2, 'review', 'TASK-001', 'changes'), 'Say what should change');
    mentions(await fails(dir, 2, 'review', 'TASK-001', 'approve', 'looks', 'good'), 'An approval takes no text');

    assert.equal(
      (await ok(dir, 'review', 'TASK-001', 'changes', 'Greet by name.')).trim(),
      'TASK-001 sent back with changes requested: it waits for the implementation stage.',
    );
    await runToReview(dir);
    assert.equal(
      (await ok(dir, 'review', 'TASK-001', 'block', 'Ask product about the wording.')).trim(),
      'TASK-001 blocked: it waits for a person (human (supervisor): Ask product about the wording.).',
    );
    await ok(dir, 'task', 'unblock', 'TASK-001');

    // A leader runs; the answer from this other process reaches it through the inbox, and it merges.
    const run = startCli(dir, ['run']);
    try {
      await run.waitFor(/TASK-001 queued for supervisor \(prerequisites merged\) \(awaiting your review/);
      assert.equal((await ok(dir, 'review', 'TASK-001', 'approve')).trim(), 'TASK-001 approved: it is being merged.');
      await run.waitFor(/TASK-001 merged \(/);
    } finally {
      const r = await run.stop('SIGTERM');
      assert.equal(r.code, 130, run.output());
    }
    const done = (await status(dir)).tasks['TASK-001']!;
    assert.equal(done.status, 'done');
    assert.deepEqual(
      done.history.filter((h) => h.event === 'changes_requested' || h.event === 'block').map((h) => h.note),
      ['Greet by name.', 'human (supervisor): Ask product about the wording.'],
    );
    const merged = (done as unknown as { merged_commit: string }).merged_commit;
    assert.equal(await git(dir, 'rev-parse', 'main'), merged, 'the approved work is on main');
    mentions(
      await fails(dir, 1, 'review', 'TASK-001', 'approve'),
      'TASK-001 is not awaiting review: it is done.',
      'pipeline review` lists those that wait',
    );
  });
});

test('an approval while no pipeline runs says the merge comes with the next run, which makes it', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await humanSupervisor(dir);
    await ok(dir, 'task', 'add', 'Greeting', '--paths', 'src/**');
    await runToReview(dir);
    assert.equal(
      (await ok(dir, 'review', 'TASK-001', 'approve')).trim(),
      'TASK-001 approved: it is merged when the pipeline runs (`pipeline run`).',
    );
    assert.equal((await status(dir)).tasks['TASK-001']?.status, 'merging', 'nothing merged it yet');
    const r = await cli(dir, ['run', '--until-idle'], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, shown(r));
    mentions(r.stdout, 'TASK-001 merged (', 'Idle: 1 task(s) completed.');
    assert.equal((await status(dir)).tasks['TASK-001']?.status, 'done');
  });
});
