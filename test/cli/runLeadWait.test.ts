import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { LeaderLease } from '../../src/engine/store/leaderLease';
import { cli, mentions, ok, requireCli, shown, startCli, status, until, withRepo } from './cliKit';

/**
 * `pipeline run` started while a short command leads for one change (a `task add` while no pipeline
 * runs takes the lease for just its change): the run waits for it to let go and then leads, instead
 * of being refused "led by pipeline task add". A holder that hangs keeps the lead only until its
 * lease lapses. With real processes: the CLI built in dist/, and lease holders in other processes.
 */

requireCli();

/** The pipeline's lease directory (`.pipeline`, which holds `leader/`). */
const leaseDir = (dir: string) => join(dir, '.pipeline');

void test('a run started while a one-change lease is held waits for its release, then leads', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    // This test process leads for one change, as `pipeline task add` does when nobody leads.
    const held = await LeaderLease.acquire(leaseDir(dir), { label: 'pipeline task add', oneChange: true });
    assert.ok(held instanceof LeaderLease);
    const run = startCli(dir, ['run', '--until-idle']);
    try {
      await run.waitFor(new RegExp(`Waiting for pipeline task add \\(pid ${process.pid}\\) to finish its change`));
      await held.release();
      await run.waitFor(/Running:/);
      const r = await run.exited;
      assert.equal(r.code, 0, run.output());
      assert.doesNotMatch(run.output(), /led by/);
    } finally {
      await held.release();
      await run.stop('SIGKILL');
    }
  });
});

void test('a one-change holder that hangs (SIGSTOP) holds the run back only until its lease lapses', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const script = `
      const { LeaderLease } = require(${JSON.stringify(join(__dirname, '../../src/engine/store/leaderLease'))});
      LeaderLease.acquire(${JSON.stringify(leaseDir(dir))}, { label: 'pipeline task add', oneChange: true, leaseMs: 3000 })
        .then(() => process.stdout.write('held\\n'));
      setInterval(() => undefined, 1000);
    `;
    const holder = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    holder.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    await until('the holder leading', 30_000, () => out.includes('held'));
    holder.kill('SIGSTOP');
    const run = startCli(dir, ['run', '--until-idle']);
    try {
      await run.waitFor(/Waiting for pipeline task add \(pid \d+\) to finish its change/);
      await run.waitFor(/Running:/, 30_000);
      assert.equal((await run.exited).code, 0, run.output());
    } finally {
      holder.kill('SIGKILL');
      await run.stop('SIGKILL');
    }
  });
});

void test('pipeline run and pipeline task add started together: the run is never refused, every add is acknowledged', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    for (let round = 1; round <= 8; round++) {
      const run = startCli(dir, ['run', '--until-idle']);
      const add = cli(dir, ['task', 'add', `Raced ${round}`]);
      const [added, ran] = await Promise.all([add, run.exited]);
      assert.equal(added.code, 0, `round ${round}: ${shown(added)}`);
      mentions(added.stdout, `Added TASK-${String(round).padStart(3, '0')}`);
      assert.doesNotMatch(run.output(), /led by/, `round ${round}: ${run.output()}`);
      assert.match(run.output(), /Running:/, `round ${round}: the run led: ${run.output()}`);
      // No agents: the run ends idle with the tasks waiting (exit 1), having led.
      assert.equal(ran.code, 1, run.output());
    }
    assert.equal(Object.keys((await status(dir)).tasks).length, 8);
    assert.equal((await status(dir)).leader, null);
    await ok(dir, 'status');
  });
});
