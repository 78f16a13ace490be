import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PgDatabase } from '../../src/engine/postgres/pgDatabase';
import { PgLeaderLease } from '../../src/engine/postgres/pgLease';
import { migrate } from '../../src/engine/postgres/schemaMigrations';
import type { LeaderInfo } from '../../src/engine/ports/statePort';
import { LeaderLease } from '../../src/engine/store/leaderLease';
import type { ConfigInput, Sandbox } from '../../test/engine/monitor/monitorKit';
import { adminQuery } from '../../test/engine/postgres/pgTestKit';
import { PostgresCluster, postgresMissing } from '../../test/support/postgresCluster';

/**
 * Where the soak's trials keep their state: the file journal in each repository's `.pipeline/state/`
 * (the default), or PostgreSQL: one throwaway cluster for the whole soak (test/support/
 * postgresCluster.ts), a database of its own for each trial so trials never see each other, named
 * in the trial's `.pipeline/config.json` through an environment variable of its own. Whatever the
 * store, the trial reads the state and the leader through the store's own ports, never from files
 * that only one store writes.
 */

export type SoakStoreKind = 'file' | 'postgres';

export const STORE_KINDS: readonly SoakStoreKind[] = ['file', 'postgres'];

/** One trial's store. */
export interface TrialStore {
  readonly kind: SoakStoreKind;
  /** For the trial's log: where its state is. */
  readonly where: string;
  /** What the trial's `.pipeline/config.json` needs for this store (nothing for the file journal). */
  readonly config: Partial<ConfigInput>;
  /** Who leads the trial's pipeline, from the store's lease: the lease files or the leader row. */
  readonly leader: (sb: Sandbox) => Promise<LeaderInfo | null>;
  /** PostgreSQL only: the server stops (`fast` as `pg_ctl stop -m fast`, `immediate` as a crash) for `downMs`, then starts again. */
  restart?(mode: 'fast' | 'immediate', downMs: number): Promise<void>;
  /**
   * What only this store can check after the last run. PostgreSQL: the state was never written to
   * the journal files, and the record log's epochs never go down (a replaced leader's late write
   * was refused, not applied after its successor's).
   */
  audit(sb: Sandbox): Promise<string[]>;
  /** Closes what the trial holds; drops its database unless it is kept for inspection. */
  dispose(keep: boolean): Promise<void>;
}

export interface SoakStore {
  readonly kind: SoakStoreKind;
  /** For the soak's first line: the cluster's address and data directory. */
  readonly where: string;
  forTrial(seed: number): Promise<TrialStore>;
  close(): Promise<void>;
}

/** Why a `postgres` soak cannot run here (no binaries), or undefined. */
export function storeMissing(kind: SoakStoreKind): string | undefined {
  return kind === 'postgres' ? postgresMissing() : undefined;
}

export async function openSoakStore(kind: SoakStoreKind): Promise<SoakStore> {
  if (kind === 'file') return { kind, where: 'the file journal', forTrial: () => Promise.resolve(fileTrial()), close };
  const cluster = await PostgresCluster.create();
  let n = 0;
  return {
    kind,
    where: `PostgreSQL cluster on 127.0.0.1:${cluster.port} in ${cluster.dir}`,
    forTrial: (seed) => postgresTrial(cluster, seed, ++n),
    close: () => cluster.dispose(),
  };
}

const close = () => Promise.resolve();

function fileTrial(): TrialStore {
  return {
    kind: 'file',
    where: 'the file journal',
    config: {},
    leader: (sb) => LeaderLease.current(join(sb.dir, '.pipeline')),
    audit: () => Promise.resolve([]),
    dispose: close,
  };
}

/** How long a soak check waits for the database (a restart the trial caused is over by then). */
const DB_WAIT_MS = 60_000;

async function postgresTrial(cluster: PostgresCluster, seed: number, n: number): Promise<TrialStore> {
  // The cluster is the soak's: a trial that ended while it was stopped must not leave it so.
  if (!cluster.running) await cluster.start();
  const name = `soak_${process.pid}_${n}_${seed}`;
  await adminQuery(cluster, `CREATE DATABASE ${name}`);
  const url = cluster.url(name);
  const db = new PgDatabase(url, { source: 'the soak' });
  await migrate(db);
  // The trial's own variable: every process of the trial (this one's follower reads, the CLI
  // children) inherits it, and no other trial's repository names it.
  const urlEnv = `PIPELINE_SOAK_DATABASE_URL_${n}`;
  process.env[urlEnv] = url;
  return {
    kind: 'postgres',
    where: `database ${name} (${urlEnv}) on 127.0.0.1:${cluster.port}`,
    config: { store: { kind: 'postgres', urlEnv } },
    leader: () => db.retrying('reading who leads', DB_WAIT_MS, () => PgLeaderLease.current(db)),
    restart: async (mode, downMs) => {
      await cluster.stop(mode);
      await new Promise((r) => setTimeout(r, downMs));
      await cluster.start();
    },
    audit: async (sb) => {
      const out: string[] = [];
      const stateDir = join(sb.dir, '.pipeline', 'state');
      const files = await readdir(stateDir).catch(() => [] as string[]);
      if (files.length)
        out.push(`the state is in PostgreSQL, yet ${stateDir} holds ${files.join(', ')} (written to the file journal)`);
      const r = await db.retrying('reading the record log', DB_WAIT_MS, () =>
        db.query<{ seq: string; epoch: string }>('SELECT seq, epoch FROM pipeline.state_records ORDER BY seq'),
      );
      let top = 0;
      for (const row of r.rows) {
        const epoch = Number(row.epoch);
        if (epoch < top) out.push(`record ${row.seq} was written by epoch ${epoch} after epoch ${top} had written`);
        top = Math.max(top, epoch);
      }
      if (r.rows.length === 0) out.push(`${name} holds no records: the trial's state did not go to PostgreSQL`);
      return out;
    },
    dispose: async (keep) => {
      await db.close();
      delete process.env[urlEnv];
      if (keep) return;
      if (!cluster.running) await cluster.start();
      await adminQuery(cluster, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
