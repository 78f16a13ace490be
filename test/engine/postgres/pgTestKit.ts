import pg from 'pg';
import { PgDatabase } from '../../../src/engine/postgres/pgDatabase';
import { migrate } from '../../../src/engine/postgres/schemaMigrations';
import type { PostgresCluster } from '../../support/postgresCluster';

/**
 * Databases for the PostgreSQL tests: one cluster per test file (it takes seconds to make), a fresh
 * database per test (CREATE DATABASE takes milliseconds), so tests never see each other's rows.
 */

let counter = 0;

/** Runs one statement on the cluster's maintenance database. */
export async function adminQuery(
  cluster: PostgresCluster,
  sql: string,
  values: unknown[] = [],
): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: cluster.url() });
  await c.connect();
  try {
    return await c.query(sql, values);
  } finally {
    await c.end();
  }
}

/** A new, empty database; returns its URL. */
export async function freshDatabase(cluster: PostgresCluster, prefix = 't'): Promise<string> {
  const name = `${prefix}_${process.pid}_${++counter}`;
  await adminQuery(cluster, `CREATE DATABASE ${name}`);
  return cluster.url(name);
}

/** A new database with the store's migrations applied, and a connection pool to it. */
export async function migratedDatabase(
  cluster: PostgresCluster,
  prefix = 't',
): Promise<{ url: string; db: PgDatabase }> {
  const url = await freshDatabase(cluster, prefix);
  const db = new PgDatabase(url, { source: 'the test' });
  await migrate(db);
  return { url, db };
}
