import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PgDatabase } from '../../src/engine/postgres/pgDatabase';
import { PgLeaderLease } from '../../src/engine/postgres/pgLease';
import { migratedDatabase } from '../engine/postgres/pgTestKit';
import { PostgresCluster } from '../support/postgresCluster';
import { cli, requireCli, shown, startCli, withRepo } from './cliKit';

/**
 * runLeadWait.test.ts on a pipeline whose state is in PostgreSQL: a `pipeline run` started while
 * another process leads for one change (a `task add` while no pipeline runs) waits for it to let
 * go and then leads, instead of being refused; the one-change mark is in the database's leader
 * row, so the run learns it from there, not from the file lease.
 */

requireCli();

let cluster: PostgresCluster;

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await cluster?.dispose();
});

const ENV = 'PIPELINE_DATABASE_URL';

async function usePostgres(dir: string): Promise<void> {
  const file = join(dir, '.pipeline', 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  config.store = { kind: 'postgres', urlEnv: ENV };
  await writeFile(file, JSON.stringify(config, null, 2) + '\n');
}

void test('on PostgreSQL, a run started while a one-change lease is held waits for its release, then leads', async () => {
  const { url, db } = await migratedDatabase(cluster, 'runwait');
  const holderDb = new PgDatabase(url, { source: 'the test' });
  try {
    await withRepo({ init: true }, async ({ dir }) => {
      await usePostgres(dir);
      const added = await cli(dir, ['task', 'add', 'Waited for'], { env: { [ENV]: url } });
      assert.equal(added.code, 0, shown(added));
      // This test process leads for one change, as `pipeline task add` does when nobody leads.
      const held = await PgLeaderLease.acquire(holderDb, 'pipeline task add', { oneChange: true });
      assert.ok(held instanceof PgLeaderLease);
      const run = startCli(dir, ['run', '--until-idle'], { [ENV]: url });
      try {
        await run.waitFor(new RegExp(`Waiting for pipeline task add \\(pid ${process.pid}\\) to finish its change`));
        await held.release();
        await run.waitFor(/Running:/);
        const r = await run.exited;
        // No agents: the run leads and ends idle with the task waiting (exit 1), never refused.
        assert.equal(r.code, 1, run.output());
        assert.doesNotMatch(run.output(), /led by/);
      } finally {
        await held.release();
        await run.stop('SIGKILL');
      }
    });
  } finally {
    await holderDb.close();
    await db.close();
  }
});
