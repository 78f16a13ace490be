import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PgLeaderLease } from '../../../src/engine/postgres/pgLease';
import { PostgresCluster } from '../../support/postgresCluster';
import { until } from '../../support/waiting';
import { migratedDatabase } from './pgTestKit';

/**
 * A leader killed with -9 (or crashed) on this machine: the next process here takes over at once,
 * as the file lease lets it, instead of being refused "led by pid …" for a whole lease (found by
 * the soak on PostgreSQL: the run after a killed one was refused). A holder in another place (a
 * pid of another machine or container means nothing here) or a live one (a stopped process) keeps
 * the lease until its heartbeat lapses.
 */

let cluster: PostgresCluster;

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await cluster?.dispose();
});

/** Half an hour: nothing in these tests may lapse by time. */
const LEASE_MS = 30 * 60_000;

/** A process of its own that takes the lease and keeps it (renewing) until it is killed. */
async function holderProcess(url: string): Promise<{ proc: ChildProcess; epoch: number }> {
  const script = `
    const { PgDatabase } = require(${JSON.stringify(join(__dirname, '../../../src/engine/postgres/pgDatabase'))});
    const { PgLeaderLease } = require(${JSON.stringify(join(__dirname, '../../../src/engine/postgres/pgLease'))});
    PgLeaderLease.acquire(new PgDatabase(${JSON.stringify(url)}), 'pipeline run', { leaseMs: ${LEASE_MS} })
      .then((l) => process.stdout.write('epoch ' + l.epoch + '\\n'));
    setInterval(() => undefined, 1000);
  `;
  const proc = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  const epoch = await until('the holder leading', 60_000, () => /epoch (\d+)/.exec(out)?.[1]);
  return { proc, epoch: Number(epoch) };
}

function killed(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const gone = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  return gone;
}

void test('a leader killed with -9 on this machine lets the next process lead at once, with a higher epoch', async () => {
  const { db } = await migratedDatabase(cluster, 'dead');
  try {
    const holder = await holderProcess(db.url);
    assert.equal((await PgLeaderLease.current(db))?.pid, holder.proc.pid);
    const refused = await PgLeaderLease.acquire(db, 'pipeline run', { leaseMs: LEASE_MS });
    assert.ok(!(refused instanceof PgLeaderLease), 'a live holder keeps the lease');
    await killed(holder.proc, 'SIGKILL');
    // Its heartbeat has half an hour left, but its process is gone: nobody leads.
    assert.equal(await PgLeaderLease.current(db), null);
    const next = await PgLeaderLease.acquire(db, 'pipeline run', { leaseMs: LEASE_MS });
    assert.ok(next instanceof PgLeaderLease, 'the next process leads at once');
    assert.equal(next.epoch, holder.epoch + 1);
    await next.release();
  } finally {
    await db.close();
  }
});

void test('a stopped holder, or a dead pid of another place, keeps the lease until its heartbeat lapses', async () => {
  const { db } = await migratedDatabase(cluster, 'dead');
  try {
    const holder = await holderProcess(db.url);
    try {
      // Stopped (SIGSTOP): its process exists, so it still holds.
      holder.proc.kill('SIGSTOP');
      assert.equal((await PgLeaderLease.current(db))?.pid, holder.proc.pid);
      assert.ok(!((await PgLeaderLease.acquire(db, 'pipeline run')) instanceof PgLeaderLease));
      holder.proc.kill('SIGCONT');
    } finally {
      await killed(holder.proc, 'SIGKILL');
    }
    // The same dead pid, recorded by a process of another machine or container: not judged here.
    await db.query(`UPDATE pipeline.leader SET place = 'another boot pid:[1]' WHERE id = 1`);
    assert.equal((await PgLeaderLease.current(db))?.pid, holder.proc.pid);
    assert.ok(!((await PgLeaderLease.acquire(db, 'pipeline run')) instanceof PgLeaderLease));
    // A holder written before the row said where (the migration's default) is not judged either.
    await db.query(`UPDATE pipeline.leader SET place = '' WHERE id = 1`);
    assert.equal((await PgLeaderLease.current(db))?.pid, holder.proc.pid);
    // Once its heartbeat lapses, anyone takes over.
    await db.query(`UPDATE pipeline.leader SET expires_at = now() - interval '1 second' WHERE id = 1`);
    const next = await PgLeaderLease.acquire(db, 'pipeline run');
    assert.ok(next instanceof PgLeaderLease);
    assert.equal(next.epoch, holder.epoch + 1);
    await next.release();
  } finally {
    await db.close();
  }
});
