import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { initRepo } from '../../../src/engine/git/initRepo';
import { initHome } from '../../../src/engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../../../src/engine/model/configSchema';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import { Pipeline, type OpenPipelineOptions } from '../../../src/engine/pipeline';
import { PgDatabase } from '../../../src/engine/postgres/pgDatabase';
import { migrate } from '../../../src/engine/postgres/schemaMigrations';
import { PostgresCluster } from '../../support/postgresCluster';
import { within } from '../../support/waiting';
import { freshDatabase } from '../postgres/pgTestKit';

/**
 * The engine's facade on PostgreSQL, in-process: the leader and a follower share the state through
 * the database; the follower is woken by the leader's commits (LISTEN/NOTIFY) although its own
 * polling is set too slow to matter; who leads is read from the lease row; a follower's change is
 * forwarded to the leader; nothing of the state goes to `.pipeline/state/`.
 */

let cluster: PostgresCluster;
let counter = 0;

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await cluster?.dispose();
});

function next<K extends keyof PipelineEventMap>(p: Pipeline, name: K): Promise<PipelineEventMap[K]> {
  return within(
    `a ${String(name)} event`,
    5_000,
    new Promise((resolve) => {
      const sub = p.events.on(name, (e) => {
        sub.dispose();
        resolve(e);
      });
    }),
  );
}

/** A repository whose config keeps the state in a fresh, migrated database named by its own variable. */
async function withPgSandbox(
  fn: (sb: { dir: string; open: (o?: OpenPipelineOptions) => Promise<Pipeline> }) => Promise<void>,
): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-pg-facade-'));
  const dir = join(base, 'repo');
  await initRepo(dir);
  await initHome(dir, { targetBranch: 'main', stages: DEFAULT_STAGES });
  const urlEnv = `PIPELINE_TEST_DATABASE_${process.pid}_${++counter}`;
  const url = await freshDatabase(cluster);
  const db = new PgDatabase(url);
  await migrate(db);
  await db.close();
  process.env[urlEnv] = url;
  const file = join(dir, '.pipeline', 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(file, JSON.stringify({ ...config, store: { kind: 'postgres', urlEnv } }, null, 2));
  const opened: Pipeline[] = [];
  try {
    await fn({
      dir,
      open: async (o = {}) => {
        const p = await Pipeline.open({ cwd: dir, ...o });
        opened.push(p);
        return p;
      },
    });
  } finally {
    for (const p of opened.reverse()) await p.close();
    delete process.env[urlEnv];
    await rm(base, { recursive: true, force: true });
  }
}

void test('a follower on PostgreSQL is woken by the leader’s commits, reads who leads from the database, and forwards its changes', async () => {
  await withPgSandbox(async ({ dir, open }) => {
    const leader = await open({ role: 'lead', label: 'the leader' });
    assert.equal(leader.isLeader, true);
    assert.equal(leader.storeLocation.kind, 'postgres');
    await leader.fence();
    // Polling every ten minutes: only a notification can wake this follower within the test.
    const follower = await open({ role: 'follow', label: 'a follower', followIntervalMs: 600_000 });
    assert.equal(follower.isLeader, false);
    assert.equal(follower.leader?.label, 'the leader');
    assert.equal(follower.leader?.epoch, leader.leader?.epoch);

    const woken = next(follower, 'state:changed');
    const [added] = await leader.addTasks([{ spec: { title: 'Made by the leader' } }]);
    await woken;
    assert.equal(follower.state.tasks[added!.id]?.title, 'Made by the leader');

    // The follower's change goes to the leader (through the inbox), which commits it to the database.
    const [forwarded] = await follower.addTasks([{ spec: { title: 'Asked by the follower', priority: 'high' } }]);
    assert.equal(leader.state.tasks[forwarded!.id]?.priority, 'high');
    assert.equal(follower.state.tasks[forwarded!.id]?.title, 'Asked by the follower');
    assert.equal(follower.status().tasks[forwarded!.id]?.status, 'pending');

    assert.equal(existsSync(join(dir, '.pipeline', 'state')), false, 'no state in files');
  });
});

void test('a pipeline on PostgreSQL that nobody leads takes the lease for one change and gives it back', async () => {
  await withPgSandbox(async ({ open }) => {
    const p = await open({ role: 'follow' });
    assert.equal(p.leader, null);
    const [t] = await p.addTasks([{ spec: { title: 'While nobody leads' } }]);
    assert.equal(p.state.tasks[t!.id]?.title, 'While nobody leads');
    assert.equal(p.isLeader, false, 'it follows again after the change');
    const other = await open({ role: 'lead', label: 'next' });
    assert.equal(other.state.tasks[t!.id]?.title, 'While nobody leads');
    assert.ok((other.leader?.epoch ?? 0) >= 2, 'a new epoch after the short lead');
  });
});
