/**
 * PostgreSQL state store benchmark, against a throwaway local cluster (test/support/postgresCluster:
 * 127.0.0.1, `fsync=off`, so the figures leave out the disk flush a production server pays on
 * every COMMIT): what one commit costs at 100 and at 10 000 tasks, what opening (reading the
 * tables of) a 10 000-task state costs, how long a reader waits for a commit's notification, and
 * what taking the lease costs. Compare with bench/store.bench.ts (the file journal).
 *
 * A commit here is what the engine does most: one task transition record, validated, applied,
 * and written in one transaction (the leader row's epoch checked, the record appended, the task's
 * row, history and attempt rows updated, NOTIFY).
 *
 * Run: node --import tsx bench/pgStore.bench.ts [--quick]   (writes bench/results/pgStore.json)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pipelineStateCodec } from '../src/engine/model/stateCodec';
import type { PipelineState, Task } from '../src/engine/model/schema';
import type { StateRecord } from '../src/engine/model/stateRecords';
import { PgDatabase } from '../src/engine/postgres/pgDatabase';
import { PgLeaderLease } from '../src/engine/postgres/pgLease';
import { pipelineTables } from '../src/engine/postgres/pipelineTables';
import { PgStateStore } from '../src/engine/postgres/postgresStore';
import { migrate } from '../src/engine/postgres/schemaMigrations';
import { PostgresCluster } from '../test/support/postgresCluster';
import { newTask } from '../test/support/taskFixtures';

const QUICK = process.argv.includes('--quick');
const COMMITS = QUICK ? 300 : 1_500;
const WARMUP = 100;
const AT = '2026-01-01T00:00:00.000Z';

type Store = PgStateStore<PipelineState, StateRecord>;

function taskId(n: number): string {
  return `TASK-${String(n).padStart(5, '0')}`;
}

function task(n: number): Task {
  return newTask(
    taskId(n),
    n,
    {
      title: `Implement feature number ${n} of the backlog`,
      description: `As a user I want feature ${n}. Acceptance: the tests for feature ${n} pass and the docs mention it.`,
      prerequisites: n > 1 ? [taskId(n - 1)] : [],
      paths: [`src/feature${n}/**`],
      labels: ['backend'],
    },
    AT,
  );
}

function transition(id: string, step: number): StateRecord {
  if (step === 0) return { type: 'task.transition', id, event: { type: 'ready' }, at: AT };
  return step % 2 === 1
    ? {
        type: 'task.transition',
        id,
        event: { type: 'assign', agent: 'implementer-1', attempt: (step + 1) / 2 },
        at: AT,
      }
    : { type: 'task.transition', id, event: { type: 'complete', nextStage: 'implementation', note: 'done' }, at: AT };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function summary(xs: number[]): { p50: number; p95: number; max: number } {
  const r = (v: number) => Math.round(v * 1000) / 1000;
  return { p50: r(pct(xs, 50)), p95: r(pct(xs, 95)), max: r(Math.max(...xs)) };
}

async function database(cluster: PostgresCluster, name: string): Promise<PgDatabase> {
  const admin = new pg.Client({ connectionString: cluster.url() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const db = new PgDatabase(cluster.url(name));
  await migrate(db);
  return db;
}

async function lead(db: PgDatabase): Promise<PgLeaderLease> {
  const got = await PgLeaderLease.acquire(db, 'bench', { leaseMs: 600_000 });
  if (!(got instanceof PgLeaderLease)) throw new Error('the bench could not lead');
  return got;
}

/** A writer holding `tasks` tasks (added in batches), and the time reading them back costs. */
async function populated(
  cluster: PostgresCluster,
  tasks: number,
): Promise<{ db: PgDatabase; store: Store; lease: PgLeaderLease }> {
  const db = await database(cluster, `bench_${tasks}`);
  const lease = await lead(db);
  const store = await PgStateStore.open({ db, codec: pipelineStateCodec, tables: pipelineTables, lease });
  for (let n = 1; n <= tasks; n += 500) {
    const batch: StateRecord[] = [];
    for (let i = n; i < Math.min(n + 500, tasks + 1); i++) batch.push({ type: 'task.added', task: task(i) });
    await store.commit(batch);
  }
  return { db, store, lease };
}

async function commits(store: Store, tasks: number): Promise<number[]> {
  const times: number[] = [];
  const steps = new Map<string, number>();
  for (let i = 0; i < WARMUP + COMMITS; i++) {
    const id = taskId(1 + (i % Math.min(tasks, 50)));
    const step = steps.get(id) ?? 0;
    steps.set(id, step + 1);
    const t0 = performance.now();
    await store.commit([transition(id, step)]);
    if (i >= WARMUP) times.push(performance.now() - t0);
  }
  return times;
}

async function main(): Promise<void> {
  const cluster = await PostgresCluster.create();
  try {
    const small = await populated(cluster, 100);
    const commit100 = summary(await commits(small.store, 100));

    const big = await populated(cluster, 10_000);
    const commit10k = summary(await commits(big.store, 10_000));
    const opens: number[] = [];
    for (let i = 0; i < (QUICK ? 3 : 7); i++) {
      const t0 = performance.now();
      const r = await PgStateStore.open({
        db: big.db,
        codec: pipelineStateCodec,
        tables: pipelineTables,
        listen: false,
      });
      opens.push(performance.now() - t0);
      if (Object.keys(r.state.tasks).length !== 10_000) throw new Error('the reader did not read 10 000 tasks');
      await r.close();
    }

    // A reader on its own connections: from the writer's commit call to the reader's notification,
    // and to the reader's state holding the record.
    const readerDb = new PgDatabase(cluster.url('bench_100'));
    const reader = await PgStateStore.open({ db: readerDb, codec: pipelineStateCodec, tables: pipelineTables });
    const notified: number[] = [];
    const followed: number[] = [];
    for (let i = 0; i < (QUICK ? 100 : 300); i++) {
      const woken = new Promise<void>((resolve) => {
        const sub = reader.onDidChange(() => {
          sub.dispose();
          resolve();
        });
      });
      const id = taskId(60 + (i % 40));
      const step = i < 40 ? 0 : Math.floor(i / 40);
      const t0 = performance.now();
      await small.store.commit([transition(id, step)]);
      await woken;
      notified.push(performance.now() - t0);
      await reader.refresh();
      followed.push(performance.now() - t0);
      if (reader.seq !== small.store.seq) throw new Error('the reader did not follow the writer');
    }
    await reader.close();
    await readerDb.close();

    // Taking a released lease (what a short lead for one change costs before its commit).
    await small.store.close();
    await small.lease.release();
    const takes: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      const l = await lead(small.db);
      takes.push(performance.now() - t0);
      await l.release();
    }

    const result = {
      at: new Date().toISOString(),
      machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100) },
      server: 'local throwaway cluster, fsync=off (no disk flush at COMMIT)',
      commits: COMMITS,
      commitMs: { tasks100: commit100, tasks10k: commit10k },
      openReader10kMs: summary(opens),
      notifyMs: summary(notified),
      notifyAndFollowMs: summary(followed),
      takeLeaseMs: summary(takes),
    };
    console.log(JSON.stringify(result, null, 2));
    await mkdir(join('bench', 'results'), { recursive: true });
    await writeFile(join('bench', 'results', 'pgStore.json'), JSON.stringify(result, null, 2) + '\n');
    await big.store.close();
    await big.lease.release();
    await big.db.close();
    await small.db.close();
  } finally {
    await cluster.dispose();
  }
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
