import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PostgresCluster } from '../../support/postgresCluster';

/**
 * The throwaway PostgreSQL the multi-machine tests run against: it starts, keeps a committed row
 * across a crash of the server (an immediate stop) and a restart on the same port, and goes away.
 */
let cluster: PostgresCluster;

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await cluster?.dispose();
});

async function query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: cluster.url() });
  await c.connect();
  try {
    return (await c.query<T>(sql, values)).rows;
  } finally {
    await c.end();
  }
}

void test('a committed row survives a crash of the server and a restart on the same port', async () => {
  await query('CREATE TABLE kept (id int PRIMARY KEY, body text NOT NULL)');
  await query('INSERT INTO kept VALUES ($1, $2)', [1, 'acknowledged']);
  await cluster.stop('immediate');
  assert.equal(cluster.running, false);
  await assert.rejects(query('SELECT 1'), /ECONNREFUSED/);
  await cluster.start();
  assert.deepEqual(await query('SELECT id, body FROM kept'), [{ id: 1, body: 'acknowledged' }]);
});
