import { PipelineError } from './errors';
import type { PipelineHome } from './home/pipelineHome';
import type { PipelineConfig, StoreConfig } from './model/configSchema';
import type { PipelineState } from './model/schema';
import { pipelineStateCodec } from './model/stateCodec';
import type { StateRecord } from './model/stateRecords';
import type { LeasePort, LeaseSource, StatePort } from './ports/statePort';
import { PgDatabase } from './postgres/pgDatabase';
import { PgLeaderLease, pgLeaseSource } from './postgres/pgLease';
import { pipelineTables } from './postgres/pipelineTables';
import { PgStateStore } from './postgres/postgresStore';
import { assertMigrated } from './postgres/schemaMigrations';
import { fileLeaseSource, LeaderLease } from './store/leaderLease';
import { StateStore } from './store/stateStore';

/**
 * Which state store a pipeline uses, from `store` in `.pipeline/config.json`: the file journal in
 * `.pipeline/state/` with its lease files (the default, nothing to set up), or a PostgreSQL
 * database whose URL is read from an environment variable (a pipeline shared between machines).
 * Either way the pipeline sees the same ports: a lease source and stores opened under a lease.
 */

export type PipelineStore = StatePort<PipelineState, StateRecord>;

export interface StateBackend {
  readonly kind: StoreConfig['kind'];
  /** Where the state is, for messages: the state directory, or "PostgreSQL at host:port/db". */
  readonly where: string;
  readonly leases: LeaseSource;
  /** Opens the store as the writer under `lease`, or as a reader when null. */
  open(lease: LeasePort | null): Promise<PipelineStore>;
  /** Closes what the backend holds (a database's connections); the stores are closed first. */
  close(): Promise<void>;
}

function wrongLease(kind: string): PipelineError {
  return new PipelineError('usage', `The ${kind} store was given a lease of another kind of store.`, {
    fix: 'Take the lease from the same backend that opens the store.',
  });
}

export function fileBackend(home: PipelineHome, config: PipelineConfig): StateBackend {
  return {
    kind: 'file',
    where: home.stateDir,
    leases: fileLeaseSource(home.leaderDir),
    open: (lease) => {
      if (lease && !(lease instanceof LeaderLease)) throw wrongLease('file');
      return StateStore.open({
        dir: home.stateDir,
        codec: pipelineStateCodec,
        snapshotEvery: config.snapshotEvery,
        ...(lease ? { lease } : {}),
      });
    },
    close: () => Promise.resolve(),
  };
}

export interface PostgresBackendOptions {
  /** How long a commit waits for a database that went away; default 30 s. */
  retryMs?: number;
  /** How long opening waits for the database; default 5 s. */
  openRetryMs?: number;
  /** How long the leader row holds without a heartbeat; default 15 s (a worker's `--lease`). */
  leaseMs?: number;
}

/** The PostgreSQL URL named by the config, from the environment; throws naming the file and the fix when unset. */
export function databaseUrl(
  home: PipelineHome,
  store: Extract<StoreConfig, { kind: 'postgres' }>,
  env: NodeJS.ProcessEnv = process.env,
): { url: string; source: string } {
  const url = env[store.urlEnv]?.trim();
  if (!url)
    throw new PipelineError(
      'invalid-config',
      `The pipeline keeps its state in PostgreSQL, but the environment variable ${store.urlEnv} that holds the database URL is not set.`,
      {
        file: home.configFile,
        where: 'store.urlEnv',
        fix: `Set it, for example \`export ${store.urlEnv}=postgres://user:password@host:5432/pipeline\`, or remove "store" from ${home.configFile} to keep the state in files.`,
      },
    );
  return { url, source: `the environment variable ${store.urlEnv} (store.urlEnv in ${home.configFile})` };
}

export function postgresBackend(
  home: PipelineHome,
  store: Extract<StoreConfig, { kind: 'postgres' }>,
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
    acquire: async (label) => {
      await ready();
      return db.retrying('taking the leader lease', bound, () => raw.acquire(label));
    },
    current: async () => {
      await ready();
      return db.retrying('reading who leads', bound, () => raw.current());
    },
  };
  return {
    kind: 'postgres',
    where: db.where,
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

/** The backend `config.store` names (the file journal when absent). */
export function stateBackend(
  home: PipelineHome,
  config: PipelineConfig,
  opts: PostgresBackendOptions = {},
): StateBackend {
  return config.store?.kind === 'postgres' ? postgresBackend(home, config.store, opts) : fileBackend(home, config);
}
