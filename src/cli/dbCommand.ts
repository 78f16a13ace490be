import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { loadConfig } from '../engine/home/configFile';
import { findHome, type PipelineHome } from '../engine/home/pipelineHome';
import { PgDatabase } from '../engine/postgres/pgDatabase';
import { label, migrate, migrationStatus, type MigrationStatus } from '../engine/postgres/schemaMigrations';
import { notLeaderError } from '../engine/leadership';
import { checkRecreation, recordsRecreating } from '../engine/model/stateImport';
import { postgresBackend } from '../engine/postgres/pgBackend';
import { isLease } from '../engine/ports/statePort';
import { databaseUrl } from '../engine/stateBackend';
import { fileBackend } from '../engine/storeSelection';
import { EXIT, printJson, println } from './output';

/**
 * `pipeline db migrate` and `pipeline db status`: the PostgreSQL store's schema; `pipeline db
 * import`: a pipeline that outgrew one machine takes its state along. Migrations are
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

  db.command('import')
    .description("copy this pipeline's state from its files (.pipeline/state/) into the empty database")
    .option('--json', 'print the result as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await importFromFiles();
      if (o.json) printJson(r);
      else {
        println(`Imported ${r.tasks} task(s) and ${r.agents} agent(s) from ${r.from} into ${r.into}.`);
        for (const n of r.notes) println(n);
        println(`The files are unchanged; the pipeline now reads its state from the database.`);
      }
    });
}

/**
 * Copies the file journal's state into the database, as records through the PostgreSQL store's one
 * write path (validated and projected into the tables like any change), in one transaction. Refused
 * unless the database holds no state yet, no process leads either store, and no agent is working
 * (an attempt in flight belongs to the run that started it). The files are left as they are.
 */
async function importFromFiles() {
  const home = await findHome(process.cwd());
  const config = await loadConfig(home.configFile);
  const store = config.store;
  if (store?.kind !== 'postgres')
    throw new PipelineError('usage', 'The configuration does not name a PostgreSQL store to import into.', {
      file: home.configFile,
      where: 'store',
      fix: 'Add "store": { "kind": "postgres", "urlEnv": "PIPELINE_DATABASE_URL" } to the configuration, set that environment variable, run `pipeline db migrate`, then import.',
    });
  const files = fileBackend(home, config);
  const running = await files.leases.current();
  if (running) throw notLeaderError(running);
  const source = await files.open(null);
  try {
    if (source.seq === 0)
      throw new PipelineError('usage', `There is no state to import: ${home.stateDir} holds no records.`, {
        file: home.stateDir,
        fix: 'Nothing to do: the pipeline starts empty in the database.',
      });
    const state = source.state;
    const busy = Object.values(state.agents).filter((a) => a.status === 'working');
    if (busy.length)
      throw new PipelineError(
        'busy',
        `Agents are working in the files' state: ${busy.map((a) => `${a.id} on ${a.current_task ?? '?'}`).join(', ')}.`,
        {
          file: home.stateDir,
          fix: 'Let `pipeline run` finish or stop it (its recovery puts in-flight tasks back in their queues), then import.',
        },
      );
    const records = recordsRecreating(state, config.taskPrefix);
    const notes = checkRecreation(state, records);
    const pg = postgresBackend(home, store, {});
    try {
      const lease = await pg.leases.acquire('pipeline db import');
      if (!isLease(lease)) throw notLeaderError(lease.leader);
      try {
        const target = await pg.open(lease);
        try {
          if (target.seq !== 0)
            throw new PipelineError(
              'usage',
              `${pg.where} already holds a pipeline state (${Object.keys(target.state.tasks).length} task(s), record ${target.seq}); an import goes only into an empty database.`,
              {
                fix: 'Import into a new database (set the URL variable to it and run `pipeline db migrate`), or keep the state the database has.',
              },
            );
          await target.commit(records);
        } finally {
          await target.close();
        }
      } finally {
        await lease.release();
      }
    } finally {
      await pg.close();
    }
    return {
      from: home.stateDir,
      into: pg.where,
      tasks: Object.keys(state.tasks).length,
      agents: Object.keys(state.agents).length,
      records: records.length,
      notes,
    };
  } finally {
    await source.close();
  }
}
