import { PipelineError } from './errors';
import type { PipelineHome } from './home/pipelineHome';
import type { StoreConfig } from './model/configSchema';
import type { PipelineState } from './model/schema';
import type { StateRecord } from './model/stateRecords';
import type { LeasePort, LeaseSource, StatePort } from './ports/statePort';
import type { Sql } from './postgres/pgDatabase';

/**
 * What the pipeline opens its state through, whichever store keeps it (storeSelection.ts picks
 * one from the config): a lease source and stores opened under a lease or read-only.
 */

export type PipelineStore = StatePort<PipelineState, StateRecord>;

export interface StateBackend {
  readonly kind: StoreConfig['kind'];
  /** Where the state is, for messages: the state directory, or "PostgreSQL at host:port/db". */
  readonly where: string;
  readonly leases: LeaseSource;
  /** The database, for what lives beside the state in it (the workers' tables); none for files. */
  readonly database?: Sql;
  /** Opens the store as the writer under `lease`, or as a reader when null. */
  open(lease: LeasePort | null): Promise<PipelineStore>;
  /** Closes what the backend holds (a database's connections); the stores are closed first. */
  close(): Promise<void>;
}

export interface PostgresBackendOptions {
  /** How long a commit waits for a database that went away; default 30 s. */
  retryMs?: number;
  /** How long opening waits for the database; default 5 s. */
  openRetryMs?: number;
  /** How long the leader row holds without a heartbeat; default 15 s (a worker's `--lease`). */
  leaseMs?: number;
}

export type PostgresStoreConfig = Extract<StoreConfig, { kind: 'postgres' }>;

/** The PostgreSQL URL named by the config, from the environment; throws naming the file and the fix when unset. */
export function databaseUrl(
  home: PipelineHome,
  store: PostgresStoreConfig,
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

export function wrongLease(kind: string): PipelineError {
  return new PipelineError('usage', `The ${kind} store was given a lease of another kind of store.`, {
    fix: 'Take the lease from the same backend that opens the store.',
  });
}
