import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import type { PipelineState } from '../../../src/engine/model/schema';
import { pipelineStateCodec } from '../../../src/engine/model/stateCodec';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import { PgDatabase } from '../../../src/engine/postgres/pgDatabase';
import { PgLeaderLease } from '../../../src/engine/postgres/pgLease';
import { pipelineTables } from '../../../src/engine/postgres/pipelineTables';
import { PgStateStore } from '../../../src/engine/postgres/postgresStore';
import { migrate, migrationStatus, MIGRATIONS, SCHEMA_VERSION } from '../../../src/engine/postgres/schemaMigrations';
import { PostgresCluster } from '../../support/postgresCluster';
import { until, within } from '../../support/waiting';
import { added, replayReference, taskId, transition } from '../store/storeTestKit';
import { freshDatabase, migratedDatabase } from './pgTestKit';

/**
 * What only the PostgreSQL store has: migrations, the tables SQL readers see, waiting for a server
 * that restarts, and notifications. The port's common contract is in test/engine/ports/.
 */

let cluster: PostgresCluster;
const pools: PgDatabase[] = [];

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await cluster?.dispose();
});

function pool(url: string): PgDatabase {
  const db = new PgDatabase(url, { source: 'the environment variable PIPELINE_DATABASE_URL' });
  pools.push(db);
  return db;
}

async function leaseOn(db: PgDatabase, label = 'test'): Promise<PgLeaderLease> {
  const got = await PgLeaderLease.acquire(db, label, { leaseMs: 20 * 60_000 });
  if (!(got instanceof PgLeaderLease)) throw new Error(`expected to lead, but ${JSON.stringify(got.leader)} does`);
  return got;
}

type Store = PgStateStore<PipelineState, StateRecord>;

function openStore(db: PgDatabase, lease?: PgLeaderLease, extra: { retryMs?: number } = {}): Promise<Store> {
  return PgStateStore.open({
    db,
    codec: pipelineStateCodec,
    tables: pipelineTables,
    ...(lease ? { lease } : {}),
    ...extra,
  });
}

const dbError = (re: RegExp) => (e: unknown) => isPipelineError(e) && e.code === 'database' && re.test(e.describe());

void test('migrations: applied once each, in one transaction, idempotent and safe to race; status says what is applied', async () => {
  const url = await freshDatabase(cluster);
  const db = pool(url);
  const before = await migrationStatus(db);
  assert.deepEqual(
    before.pending.map((m) => m.version),
    MIGRATIONS.map((m) => m.version),
  );
  assert.deepEqual(before.applied, []);
  await assert.rejects(openStore(db), dbError(/migration.*not applied[\s\S]*pipeline db migrate/));

  // Three machines migrating at once: each migration runs once.
  const results = await Promise.all([migrate(db), migrate(pool(url)), migrate(pool(url))]);
  assert.equal(results.flat().length, MIGRATIONS.length, 'every migration applied exactly once among them');
  assert.deepEqual(await migrate(db), [], 'nothing left to apply');
  const s = await migrationStatus(db);
  assert.deepEqual(
    s.applied.map((a) => a.version),
    MIGRATIONS.map((m) => m.version),
  );
  assert.deepEqual(s.pending, []);
  assert.equal(s.known, SCHEMA_VERSION);
  const store = await openStore(db);
  assert.equal(store.seq, 0);
  await store.close();

  // A newer build migrated this database further: this one refuses to read or migrate it.
  await db.query(`INSERT INTO pipeline.schema_migrations (version, name) VALUES (999, 'from the future')`);
  await assert.rejects(openStore(db), dbError(/schema version 999.*knows versions up to/));
  await assert.rejects(migrate(db), dbError(/schema version 999/));
});

void test('a failing migration leaves nothing of itself behind', async () => {
  const url = await freshDatabase(cluster);
  const db = pool(url);
  // A table the first migration creates exists already: that migration fails as a whole.
  await db.query('CREATE SCHEMA pipeline');
  await db.query('CREATE TABLE pipeline.agents (x int)');
  await assert.rejects(migrate(db), /already exists/);
  const s = await migrationStatus(db);
  assert.deepEqual(s.applied, []);
  const left = await db.query(`SELECT to_regclass('pipeline.leader')::text AS t`);
  assert.equal(left.rows[0]?.t, null, 'the failed migration created nothing');
});

void test('the tables SQL readers see follow every commit: tasks, history, attempts, agents, the record log', async () => {
  const { db } = await migratedDatabase(cluster);
  pools.push(db);
  const lease = await leaseOn(db);
  const store = await openStore(db, lease);
  const at = '2026-01-01T00:00:00.000Z';
  const agent = {
    id: 'implementer',
    role: 'implementer',
    command: 'scripted',
    status: 'idle' as const,
    current_task: null,
    since: null,
    created_at: at,
  };
  await store.commit([{ type: 'agent.added', agent }, added(1), added(2)]);
  // TASK-001: ready, attempt 1 fails, attempt 2 completes the stage; its usage is recorded.
  await store.commit([transition(taskId(1), 0)]);
  await store.commit([
    { type: 'task.transition', id: taskId(1), event: { type: 'assign', agent: 'implementer', attempt: 1 }, at },
    { type: 'agent.updated', id: 'implementer', changes: { status: 'working', current_task: taskId(1), since: at } },
  ]);
  await store.commit([
    { type: 'task.transition', id: taskId(1), event: { type: 'fail', reason: 'exit 1', notBefore: at }, at },
  ]);
  await store.commit([
    { type: 'task.transition', id: taskId(1), event: { type: 'assign', agent: 'implementer', attempt: 2 }, at },
  ]);
  await store.commit([
    {
      type: 'attempt.usage',
      id: taskId(1),
      usage: {
        attempt: 2,
        stage: 'architect',
        agent: 'implementer',
        at,
        models: [
          {
            model: 'm',
            input: 10,
            output: 5,
            cacheRead: 0,
            cacheWrite: 0,
            costUsd: 0.25,
            costSource: 'cli',
          },
        ],
        session: null,
      },
    },
    { type: 'task.transition', id: taskId(1), event: { type: 'complete', nextStage: 'test' }, at },
    { type: 'agent.updated', id: 'implementer', changes: { status: 'idle', current_task: null, since: null } },
    { type: 'decision', text: 'hello', at },
  ]);
  await store.commit([{ type: 'task.removed', id: taskId(2), at }]);

  const tasks = await db.query('SELECT id, status, stage, assigned_to, attempt FROM pipeline.tasks ORDER BY id');
  assert.deepEqual(tasks.rows, [{ id: taskId(1), status: 'queued', stage: 'test', assigned_to: null, attempt: 2 }]);
  const history = await db.query<{ event: string }>(
    `SELECT n, event, from_status, to_status, agent, note FROM pipeline.task_history WHERE task_id = $1 ORDER BY n`,
    [taskId(1)],
  );
  assert.deepEqual(
    history.rows.map((r) => r.event),
    store.state.tasks[taskId(1)]!.history.map((h) => h.event),
  );
  assert.deepEqual(history.rows[2], {
    n: 2,
    event: 'fail',
    from_status: 'working',
    to_status: 'queued',
    agent: 'implementer',
    note: 'exit 1',
  });
  const attempts = await db.query(
    `SELECT attempt, stage, agent, outcome, note, usage->'models'->0->>'costUsd' AS cost
       FROM pipeline.task_attempts WHERE task_id = $1 ORDER BY attempt`,
    [taskId(1)],
  );
  assert.deepEqual(attempts.rows, [
    { attempt: 1, stage: 'architect', agent: 'implementer', outcome: 'fail', note: 'exit 1', cost: null },
    { attempt: 2, stage: 'architect', agent: 'implementer', outcome: 'complete', note: null, cost: '0.25' },
  ]);
  const agents = await db.query('SELECT id, status, current_task FROM pipeline.agents');
  assert.deepEqual(agents.rows, [{ id: 'implementer', status: 'idle', current_task: null }]);
  const removed = await db.query(`SELECT count(*)::int AS n FROM pipeline.task_history WHERE task_id = $1`, [
    taskId(2),
  ]);
  assert.equal(removed.rows[0]?.n, 0, "a removed task's rows go with it");
  const log = await db.query<{ seq: string; epoch: string; type: string }>(
    `SELECT seq, epoch, record->>'type' AS type FROM pipeline.state_records ORDER BY seq`,
  );
  assert.equal(log.rows.length, store.seq);
  assert.deepEqual(
    log.rows.map((r) => Number(r.seq)),
    Array.from({ length: store.seq }, (_, i) => i + 1),
  );
  assert.ok(log.rows.every((r) => Number(r.epoch) === lease.epoch));
  const head = await db.query<{ seq: string; decisions: unknown[] }>(
    `SELECT seq, body->'decisions' AS decisions FROM pipeline.state_head`,
  );
  assert.equal(Number(head.rows[0]!.seq), store.seq);
  assert.equal(head.rows[0]!.decisions.length, 1);

  // The state read back from the tables is the one committed.
  const reader = await openStore(db);
  assert.deepEqual(reader.state, store.state);
  await reader.close();
  await store.close();
  await lease.release();
});

void test('a commit made while PostgreSQL restarts waits for it, then lands once; nothing acknowledged is lost', async () => {
  const { db, url } = await migratedDatabase(cluster);
  pools.push(db);
  const lease = await leaseOn(db);
  const store = await openStore(db, lease);
  await store.commit([added(1)]);

  await cluster.stop('fast');
  let settled = false;
  const pending = store.commit([added(2), transition(taskId(2), 0)]).finally(() => (settled = true));
  await until('the store notices the server went away', 10_000, () =>
    store.warnings.some((w) => /went away during a commit/.test(w)),
  );
  assert.equal(settled, false, 'the commit is not acknowledged while the server is down');
  await cluster.start();
  await within('the commit lands once the server is back', 30_000, pending);
  assert.equal(store.seq, 3);
  await store.commit([added(3)]);

  const reader = await openStore(pool(url));
  assert.equal(reader.seq, 4);
  assert.deepEqual(reader.state, replayReference([added(1), added(2), transition(taskId(2), 0), added(3)]));
  const count = await db.query('SELECT count(*)::int AS n FROM pipeline.state_records');
  assert.equal(count.rows[0]?.n, 4, 'each record once');
  await reader.close();
  await store.close();
  await lease.release();
});

void test('a commit fails after its bound with an error naming the database and the fix; nothing of it is applied', async () => {
  const { db: migrated, url } = await migratedDatabase(cluster);
  pools.push(migrated);
  const db = pool(url);
  const lease = await leaseOn(db);
  const store = await openStore(db, lease, { retryMs: 500 });
  await store.commit([added(1)]);
  const before = structuredClone(store.state);

  await cluster.stop('immediate');
  try {
    await assert.rejects(
      store.commit([added(2)]),
      dbError(/PostgreSQL at 127\.0\.0\.1:\d+\/t_\d+_\d+ could not be reached[\s\S]*PIPELINE_DATABASE_URL/),
    );
    assert.equal(store.seq, 1);
    assert.deepEqual(store.state, before, 'the refused change is not in memory');
  } finally {
    await cluster.start();
  }
  await store.commit([added(3)]);
  assert.equal(store.seq, 2);
  const reader = await openStore(pool(url));
  assert.deepEqual(Object.keys(reader.state.tasks).sort(), [taskId(1), taskId(3)]);
  await reader.close();
  await store.close();
  await lease.release();

  // Opening against a stopped server says the same, soon.
  await cluster.stop('fast');
  try {
    await assert.rejects(
      PgStateStore.open({ db: pool(url), codec: pipelineStateCodec, tables: pipelineTables, openRetryMs: 300 }),
      dbError(/could not be reached for [\d.]+ s while opening the pipeline state/),
    );
  } finally {
    await cluster.start();
  }
});

void test('a reader is notified of commits at once (LISTEN/NOTIFY), also after the server restarted', async () => {
  const { db, url } = await migratedDatabase(cluster);
  pools.push(db);
  const lease = await leaseOn(db);
  const writer = await openStore(db, lease);
  const reader = await openStore(pool(url));
  let fired = 0;
  const wake = () =>
    new Promise<void>((resolve) => {
      const sub = reader.onDidChange(() => {
        fired++;
        sub.dispose();
        resolve();
      });
    });

  const first = wake();
  await writer.commit([added(1)]);
  await within('a notification after the commit', 5_000, first);
  assert.equal(await reader.refresh(), true);
  assert.equal(reader.seq, 1);

  // The listener reconnects and says so (notifications may have been missed meanwhile): listened
  // for before the restart, since the reconnection may come as soon as the server accepts it.
  const reconnected = wake();
  await cluster.stop('fast');
  await cluster.start();
  await within('a wake-up once the listener reconnected', 30_000, reconnected);
  const second = wake();
  await writer.commit([added(2)]);
  await within('a notification after a commit made after the restart', 10_000, second);
  await reader.refresh();
  assert.equal(reader.seq, 2);
  assert.ok(fired >= 3);
  await reader.close();
  await writer.close();
  await lease.release();
});
