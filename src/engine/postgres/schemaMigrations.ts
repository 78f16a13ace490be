import type { PgDatabase, Sql } from './pgDatabase';
import { migrationsMissingError, newerSchemaError } from './pgErrors';
import type { Migration } from './migrations/migration';
import { v001Initial } from './migrations/v001Initial';
import { v002Claims } from './migrations/v002Claims';
import { v003ClaimChecks } from './migrations/v003ClaimChecks';
import { v004WorkerLease } from './migrations/v004WorkerLease';
import { v005LeaderHolder } from './migrations/v005LeaderHolder';

export type { Migration } from './migrations/migration';

/**
 * The store's schema, versioned: every migration this build knows, in order, and how they are
 * applied (`pipeline db migrate`) and checked (every open of the store, `pipeline db status`).
 *
 * Everything lives in the `pipeline` schema of the database. Applying is idempotent and safe to
 * run from several machines at once: each migration runs in its own transaction under one advisory
 * lock, and is skipped when `schema_migrations` already lists it.
 */

export const MIGRATIONS: readonly Migration[] = [
  v001Initial,
  v002Claims,
  v003ClaimChecks,
  v004WorkerLease,
  v005LeaderHolder,
];
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The advisory lock every migrating transaction takes (any constant; this one spells "pipe"). */
const MIGRATION_LOCK = 0x70697065;

export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: string;
}

export interface MigrationStatus {
  /** Where: "PostgreSQL at host:port/db". */
  database: string;
  applied: AppliedMigration[];
  /** Known to this build, not applied yet. */
  pending: Migration[];
  /** Applied by a newer build: versions this build does not know. */
  unknown: number[];
  /** The highest version this build knows. */
  known: number;
}

async function appliedMigrations(sql: Sql): Promise<AppliedMigration[] | null> {
  const exists = await sql.query<{ t: string | null }>(`SELECT to_regclass('pipeline.schema_migrations')::text AS t`);
  if (!exists.rows[0]?.t) return null;
  const r = await sql.query<{ version: number; name: string; applied_at: Date }>(
    'SELECT version, name, applied_at FROM pipeline.schema_migrations ORDER BY version',
  );
  return r.rows.map((row) => ({ version: row.version, name: row.name, appliedAt: row.applied_at.toISOString() }));
}

export async function migrationStatus(db: PgDatabase): Promise<MigrationStatus> {
  const applied = (await appliedMigrations(db)) ?? [];
  const done = new Set(applied.map((a) => a.version));
  const known = new Set(MIGRATIONS.map((m) => m.version));
  return {
    database: db.where,
    applied,
    pending: MIGRATIONS.filter((m) => !done.has(m.version)),
    unknown: applied.map((a) => a.version).filter((v) => !known.has(v)),
    known: SCHEMA_VERSION,
  };
}

/** Throws, naming the fix, unless the database holds exactly the schema this build knows. */
export async function assertMigrated(db: PgDatabase): Promise<void> {
  const s = await migrationStatus(db);
  if (s.unknown.length) throw newerSchemaError(db, Math.max(...s.unknown), s.known);
  if (s.pending.length) throw migrationsMissingError(db, s.pending.map(label));
}

export function label(m: Migration): string {
  return `${String(m.version).padStart(3, '0')}_${m.name}`;
}

/**
 * Applies every pending migration, each in one transaction; returns the ones applied now (none
 * when the database was up to date). Refuses a database a newer build migrated.
 */
export async function migrate(db: PgDatabase): Promise<Migration[]> {
  await db.transaction(async (sql) => {
    await sql.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await sql.query('CREATE SCHEMA IF NOT EXISTS pipeline');
    await sql.query(`CREATE TABLE IF NOT EXISTS pipeline.schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const before = await migrationStatus(db);
  if (before.unknown.length) throw newerSchemaError(db, Math.max(...before.unknown), before.known);
  const appliedNow: Migration[] = [];
  for (const m of MIGRATIONS) {
    const ran = await db.transaction(async (sql) => {
      await sql.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const done = await sql.query('SELECT 1 FROM pipeline.schema_migrations WHERE version = $1', [m.version]);
      if (done.rowCount) return false;
      await sql.query(m.sql);
      await sql.query('INSERT INTO pipeline.schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (ran) appliedNow.push(m);
  }
  return appliedNow;
}
