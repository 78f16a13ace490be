import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pipelineStateCodec } from '../../../src/engine/model/stateCodec';
import { PgDatabase } from '../../../src/engine/postgres/pgDatabase';
import { PgLeaderLease } from '../../../src/engine/postgres/pgLease';
import { pipelineTables } from '../../../src/engine/postgres/pipelineTables';
import { PgStateStore } from '../../../src/engine/postgres/postgresStore';
import { PostgresCluster } from '../../support/postgresCluster';
import { until } from '../../support/waiting';
import { added, taskId } from '../store/storeTestKit';
import { migratedDatabase } from './pgTestKit';

/**
 * Fencing with real processes: a writer in its own process is frozen (SIGSTOP) past its lease,
 * possibly in the middle of a commit; another process takes over and writes; the frozen one
 * resumes (SIGCONT) and is refused. Every commit it acknowledged is kept, none of its writes lands
 * after the takeover, and the record log's epochs never go back.
 */

let cluster: PostgresCluster;

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await cluster?.dispose();
});

interface Child {
  lines: string[];
  waitFor(re: RegExp): Promise<string>;
  signal(s: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

function startChild(config: Record<string, unknown>): Child {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', join(__dirname, 'pgStoreChild.ts'), JSON.stringify(config)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  let err = '';
  let buf = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    lines,
    exited,
    waitFor: (re) =>
      until(
        `the child printing ${String(re)}`,
        20_000,
        () => lines.find((l) => re.test(l)),
        10,
        () => `stdout: ${lines.slice(-5).join(' | ')}\nstderr: ${err}`,
      ),
    signal: (s) => {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) process.kill(proc.pid, s);
    },
  };
}

void test('a writer frozen past its lease is refused when it resumes; what it acknowledged is kept, nothing of it lands after the takeover', async (t) => {
  for (let run = 0; run < 3; run++) {
    const { url, db } = await migratedDatabase(cluster);
    const child = startChild({ url, leaseMs: 600, renewMs: 150, prefix: 'OLD' });
    const other = new PgDatabase(url);
    try {
      await child.waitFor(/^ack /);
      // Frozen at some point of its loop: between commits or inside one's transaction.
      await until('a few more commits', 10_000, () => child.lines.filter((l) => l.startsWith('ack ')).length > run * 3);
      child.signal('SIGSTOP');
      const acksBefore = child.lines.filter((l) => l.startsWith('ack ')).length;

      // Another process takes over once the frozen one's lease has expired (and the server has
      // ended its session, if it was frozen inside a transaction holding the leader row).
      const lease = await until('the lease to become free', 20_000, async () => {
        const got = await PgLeaderLease.acquire(other, 'the new writer', { leaseMs: 60_000 });
        return got instanceof PgLeaderLease ? got : undefined;
      });
      const store = await PgStateStore.open({ db: other, codec: pipelineStateCodec, tables: pipelineTables, lease });
      const takeoverSeq = store.seq;
      for (let i = 1; i <= 10; i++) await store.commit([added(i, 'NEW')]);

      child.signal('SIGCONT');
      await child.waitFor(/^lost not-leader$/);
      for (let i = 11; i <= 20; i++) await store.commit([added(i, 'NEW')]);

      const reader = await PgStateStore.open({ db, codec: pipelineStateCodec, tables: pipelineTables });
      for (let i = 1; i <= 20; i++) assert.ok(reader.state.tasks[taskId(i, 'NEW')], `NEW-${i} missing`);
      const acks = child.lines.filter((l) => l.startsWith('ack '));
      for (const line of acks) {
        const [, last, from, to] = line.split(' ').map(Number);
        for (let n = from!; n <= to!; n++)
          assert.ok(
            reader.state.tasks[taskId(n, 'OLD')],
            `run ${run}: the acknowledged ${taskId(n, 'OLD')} is missing`,
          );
        assert.ok(last! <= takeoverSeq, `run ${run}: ${line} acknowledged past the takeover at ${takeoverSeq}`);
      }
      const epochs = await db.query<{ seq: string; epoch: string }>(
        'SELECT seq, epoch FROM pipeline.state_records ORDER BY seq',
      );
      let top = 0;
      for (const r of epochs.rows) {
        assert.ok(Number(r.epoch) >= top, `run ${run}: record ${r.seq} of epoch ${r.epoch} after epoch ${top}`);
        top = Number(r.epoch);
      }
      assert.equal(epochs.rows.length, reader.seq, 'one record per seq');
      assert.equal(top, lease.epoch);
      t.diagnostic(
        `run ${run}: ${acksBefore} acks before the freeze, ${acks.length - acksBefore} after it; takeover at record ${takeoverSeq}`,
      );
      await reader.close();
      await store.close();
      await lease.release();
    } finally {
      child.signal('SIGCONT');
      child.signal('SIGKILL');
      await child.exited;
      await other.close();
      await db.close();
    }
  }
});
