import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, fails, mentions, ok, requireCli, shown, startCli, status, until, withRepo, type LiveCli } from './cliKit';
import { patience } from '../support/waiting';

/**
 * One leader per pipeline: while `pipeline run` leads (a child process), other CLI processes follow
 * and send their changes to it through the inbox; a second `pipeline run` is refused naming the
 * first; after the leader dies by SIGKILL, the next run takes over within the lease time.
 */

requireCli();

test('while pipeline run leads, task add from another process is forwarded through the inbox; status names the leader', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const run = startCli(dir, ['run']);
    try {
      await run.waitFor(/Running: parallel mode/);
      assert.equal((await status(dir)).leader?.pid, run.pid);

      mentions(await ok(dir, 'task', 'add', 'Forwarded', '--priority', 'high'), 'Added TASK-001: Forwarded');
      // The leader applied it (its own progress says so), and every reader sees it.
      await run.waitFor(/added TASK-001: Forwarded/);
      const s = await status(dir);
      assert.equal(s.tasks['TASK-001']?.priority, 'high');
      assert.equal(s.leader?.pid, run.pid);
      assert.equal(s.leader?.label, 'pipeline run');
      assert.match(await ok(dir, 'status'), new RegExp(`^leader: +pipeline run \\(pid ${run.pid} on `, 'm'));

      // Errors come back from the leader as they are: the same message, place, fix and exit code.
      mentions(
        await fails(dir, 1, 'task', 'add', 'Broken', '--depends-on', 'TASK-404'),
        'TASK-404',
        'does not exist',
        'fix:',
      );
      mentions(
        await fails(dir, 2, 'agent', 'add', 'Bad', '--role', 'architect', '--command', 'claude'),
        'Invalid agent id',
      );
      // Other mutations go the same way.
      // The switch comes first: once an agent exists it takes TASK-001 at once, and a switch to
      // shadow with work in progress is refused without --force (tested in statusRollout).
      await ok(dir, 'mode', 'rollout', 'shadow');
      await run.waitFor(/rollout mode production → shadow/);
      await ok(dir, 'agent', 'add', 'arch', '--role', 'architect', '--command', 'scripted');
      await ok(dir, 'task', 'block', 'TASK-001', 'hold on');
      const after = await status(dir);
      assert.equal(after.mode, 'shadow');
      assert.equal(after.agents.arch?.role, 'architect');
      assert.equal(after.tasks['TASK-001']?.status, 'blocked');
      assert.equal(after.leader?.pid, run.pid, 'the followers did not take the lead');
    } finally {
      const r = await run.stop();
      assert.equal(r.code, 130, run.output());
    }
    assert.equal((await status(dir)).leader, null, 'a stopped run releases the lead');
  });
});

test('a second pipeline run is refused naming the first', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const first = startCli(dir, ['run']);
    try {
      await first.waitFor(/Running:/);
      const second = await cli(dir, ['run']);
      assert.equal(second.code, 1, shown(second));
      mentions(second.stderr, `led by pipeline run (pid ${first.pid} on `, 'fix:');
      assert.equal(second.stdout, '');
      // The refused run changed nothing: the first still leads.
      assert.equal((await status(dir)).leader?.pid, first.pid);
    } finally {
      await first.stop();
    }
  });
});

test('after the leader is killed with SIGKILL, commands work and a new run takes over within the lease time', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const first = startCli(dir, ['run']);
    await first.waitFor(/Running:/);
    await ok(dir, 'task', 'add', 'Acknowledged before the kill');
    const killed = await first.stop('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');

    // Its lease is left behind: readers still name it until it lapses or a successor claims it.
    const t0 = Date.now();
    mentions(await ok(dir, 'task', 'add', 'After the kill'), 'Added TASK-002');
    const second = startCli(dir, ['run']);
    try {
      await second.waitFor(/Running:/, 10_000);
      const took = Date.now() - t0;
      assert.ok(took < 10_000, `taken over in ${took} ms`);
      const s = await status(dir);
      assert.equal(s.leader?.pid, second.pid);
      assert.deepEqual(Object.keys(s.tasks), ['TASK-001', 'TASK-002'], 'nothing acknowledged was lost');
      mentions(await ok(dir, 'task', 'add', 'Forwarded to the new leader'), 'Added TASK-003');
      await second.waitFor(/added TASK-003/);
    } finally {
      await second.stop();
    }
  });
});

test('a paused leader (SIGSTOP) keeps the lead until its lease lapses; then a new run takes over, and the old one, resumed, stands down', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const first = startCli(dir, ['run']);
    let second: LiveCli | undefined;
    try {
      await first.waitFor(/Running:/);
      await ok(dir, 'task', 'add', 'Before the pause');
      process.kill(first.pid, 'SIGSTOP');
      const paused = Date.now();
      // While its lease holds, another run is refused at once, naming it (nobody waits on a paused leader).
      mentions(await fails(dir, 1, 'run'), `led by pipeline run (pid ${first.pid} on `);
      // Once the lease lapses (15 s; renewed every 5 s), a new run leads.
      second = await until('a new run taking over the lapsed lease', 40_000, async () => {
        const attempt = startCli(dir, ['run']);
        const r = await Promise.race([
          attempt.waitFor(/Running:/, 20_000).then(() => 'leads' as const),
          attempt.exited.then(() => 'refused' as const),
        ]);
        if (r === 'leads') return attempt;
        await new Promise((res) => setTimeout(res, 500));
        return undefined;
      });
      const took = Date.now() - paused;
      assert.ok(took >= 9_000, `a live lease is never taken over: taken ${took} ms after the pause`);
      assert.equal((await status(dir)).leader?.pid, second.pid);

      // The old leader wakes up, sees the higher epoch, and stops rather than write.
      process.kill(first.pid, 'SIGCONT');
      await first.waitFor(new RegExp(`lost the leadership to pipeline run \\(pid ${second.pid}\\)`), 15_000);
      // It exits by itself (no signal from here: one arriving while it shuts down would end it by default action).
      const ended = await Promise.race([
        first.exited,
        new Promise<null>((r) => setTimeout(() => r(null), patience(15_000)).unref()),
      ]);
      assert.ok(ended, `the old leader exits by itself once it has stood down:\n${first.output()}`);
      assert.equal(typeof ended.code, 'number', first.output());
      assert.equal((await status(dir)).leader?.pid, second.pid, 'the new leader still leads');
      mentions(await ok(dir, 'task', 'add', 'After the handover'), 'Added TASK-002');
      await second.waitFor(/added TASK-002/);
      assert.deepEqual(Object.keys((await status(dir)).tasks), ['TASK-001', 'TASK-002']);
    } finally {
      try {
        process.kill(first.pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
      await first.stop('SIGKILL');
      await second?.stop();
    }
  });
});

test('the leader directory deleted: the next change takes the epoch after the highest the journal holds, at once', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    for (let i = 1; i <= 4; i++) await ok(dir, 'task', 'add', `Task ${i}`);
    const stateDir = join(dir, '.pipeline', 'state');
    const epochsIn = async () =>
      (await readdir(stateDir)).map((n) => Number(/-e(\d+)\.(log|json)$/.exec(n)?.[1] ?? 0)).filter((n) => n > 0);
    const highest = Math.max(...(await epochsIn()));
    assert.ok(highest >= 4, `epochs ${(await epochsIn()).join(', ')}`);
    await rm(join(dir, '.pipeline', 'leader'), { recursive: true });

    mentions(await ok(dir, 'task', 'add', 'After'), 'Added TASK-005');
    assert.equal(Math.max(...(await epochsIn())), highest + 1);
    const s = await status(dir);
    assert.equal(Object.keys(s.tasks).length, 5);
    assert.deepEqual(s.warnings, []);
  });
});

test('twenty task adds at once while nothing leads: every one succeeds and every task is there', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => cli(dir, ['task', 'add', `Task ${i + 1}`], { timeoutMs: 120_000 })),
    );
    for (const r of results) assert.equal(r.code, 0, shown(r));
    const s = await status(dir);
    assert.equal(Object.keys(s.tasks).length, 20);
    assert.deepEqual(s.warnings, []);
    assert.deepEqual(
      (await readdir(join(dir, '.pipeline', 'inbox'))).filter((n) => !n.startsWith('.')),
      [],
      'no request or reply is left behind',
    );
  });
});
