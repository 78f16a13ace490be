import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { loadConfig } from '../engine/home/configFile';
import { findHome, type PipelineHome } from '../engine/home/pipelineHome';
import { PgDatabase } from '../engine/postgres/pgDatabase';
import { label, migrate, migrationStatus, type MigrationStatus } from '../engine/postgres/schemaMigrations';
import { databaseUrl } from '../engine/stateBackend';
import { EXIT, printJson, println } from './output';

/**
 * `pipeline db migrate` and `pipeline db status`: the PostgreSQL store's schema. Migrations are
 * applied by a person (or a deploy script), never silently by a pipeline that opens the database,
 * so that a build on one machine cannot change the schema under builds on the others.
 */

/** How long the commands wait for a database that does not answer. */
const CONNECT_MS = 5_000;

async function openDatabase(): Promise<{ home: PipelineHome; db: PgDatabase }> {
  const home = await findHome(process.cwd());
  const config = await loadConfig(home.configFile);
  if (config.store?.kind !== 'postgres')
    throw new PipelineError('usage', 'This pipeline keeps its state in files (.pipeline/state/), not in PostgreSQL.', {
      file: home.configFile,
      where: 'store',
      fix: 'To share it between machines, add "store": { "kind": "postgres", "urlEnv": "PIPELINE_DATABASE_URL" } to the configuration and set that environment variable.',
    });
  const { url, source } = databaseUrl(home, config.store);
  return { home, db: new PgDatabase(url, { source, max: 2 }) };
}

function statusJson(s: MigrationStatus) {
  return {
    database: s.database,
    schemaVersion: s.applied.length ? Math.max(...s.applied.map((a) => a.version)) : 0,
    known: s.known,
    applied: s.applied.map((a) => ({ version: a.version, name: a.name, appliedAt: a.appliedAt })),
    pending: s.pending.map((m) => ({ version: m.version, name: m.name })),
    unknown: s.unknown,
    ready: s.pending.length === 0 && s.unknown.length === 0,
  };
}

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('the PostgreSQL state store: its schema');

  db.command('migrate')
    .description('apply the migrations this build knows to the database (each once, in one transaction)')
    .option('--json', 'print the result as JSON')
    .action(async (o: { json?: boolean }) => {
      const { db: pgdb } = await openDatabase();
      try {
        const applied = await pgdb.retrying('migrating', CONNECT_MS, () => migrate(pgdb));
        const s = await migrationStatus(pgdb);
        if (o.json)
          printJson({ ...statusJson(s), appliedNow: applied.map((m) => ({ version: m.version, name: m.name })) });
        else if (applied.length === 0) println(`${s.database} is up to date (schema version ${s.known}).`);
        else {
          println(`${s.database}: applied ${applied.map(label).join(', ')}.`);
          println(`Schema version ${s.known}.`);
        }
      } finally {
        await pgdb.close();
      }
    });

  db.command('status')
    .description('which migrations the database has and which it lacks; exit 3 when it is not ready for this build')
    .option('--json', 'print the status as JSON')
    .action(async (o: { json?: boolean }) => {
      const { db: pgdb } = await openDatabase();
      try {
        const s = await pgdb.retrying('reading the schema version', CONNECT_MS, () => migrationStatus(pgdb));
        const j = statusJson(s);
        if (o.json) printJson(j);
        else {
          println(`Database: ${s.database}`);
          println(`Schema version: ${j.schemaVersion} (this build knows up to ${s.known})`);
          for (const a of s.applied) println(`  applied  ${label({ ...a, sql: '' })}  ${a.appliedAt}`);
          for (const m of s.pending) println(`  pending  ${label(m)}`);
          if (s.pending.length) println('Run `pipeline db migrate` to apply the pending migrations.');
          if (s.unknown.length)
            println(
              `Versions ${s.unknown.join(', ')} were applied by a newer build: update Agent Pipeline on this machine.`,
            );
        }
        if (!j.ready) process.exitCode = EXIT.notReady;
      } finally {
        await pgdb.close();
      }
    });
}
