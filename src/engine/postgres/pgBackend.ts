import type { PipelineHome } from '../home/pipelineHome';
import { pipelineStateCodec } from '../model/stateCodec';
import type { LeaseSource } from '../ports/statePort';
import {
  databaseUrl,
  wrongLease,
  type PostgresBackendOptions,
  type PostgresStoreConfig,
  type StateBackend,
} from '../stateBackend';
import { PgDatabase } from './pgDatabase';
import { PgLeaderLease, pgLeaseSource } from './pgLease';
import { pipelineTables } from './pipelineTables';
import { PgStateStore } from './postgresStore';
import { assertMigrated } from './schemaMigrations';

/**
 * The pipeline's state in PostgreSQL as a backend: one pool of connections to the database the
 * environment names, the lease row as the lease source, and the store on the pipeline's tables.
 * Loaded only when the config asks for it (storeSelection.ts), so a pipeline on files never loads
 * the driver.
 */
export function postgresBackend(
  home: PipelineHome,
  store: PostgresStoreConfig,
  opts: PostgresBackendOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): StateBackend {
  const { url, source } = databaseUrl(home, store, env);
  const db = new PgDatabase(url, { source });
  const bound = opts.openRetryMs ?? 5_000;
  // The first look at the database says clearly when it is unreachable or not migrated, before
  // any query of the lease row could fail with the driver's own words.
  let checked: Promise<void> | undefined;
  const ready = () => {
    checked ??= db
      .retrying('opening the pipeline state', bound, () => assertMigrated(db))
      .catch((e: unknown) => {
        checked = undefined;
        throw e;
      });
    return checked;
  };
  const raw = pgLeaseSource(db, opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {});
  const leases: LeaseSource = {
    acquire: async (label, o) => {
      await ready();
      return db.retrying('taking the leader lease', bound, () => raw.acquire(label, o));
    },
    current: async () => {
      await ready();
      return db.retrying('reading who leads', bound, () => raw.current());
    },
  };
  return {
    kind: 'postgres',
    where: db.where,
    database: db,
    leases,
    open: (lease) => {
      if (lease && !(lease instanceof PgLeaderLease)) throw wrongLease('PostgreSQL');
      return PgStateStore.open({
        db,
        codec: pipelineStateCodec,
        tables: pipelineTables,
        ...(lease ? { lease } : {}),
        ...(opts.retryMs !== undefined ? { retryMs: opts.retryMs } : {}),
        ...(opts.openRetryMs !== undefined ? { openRetryMs: opts.openRetryMs } : {}),
      });
    },
    close: () => db.close(),
  };
}
