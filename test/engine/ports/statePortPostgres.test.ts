import { after, before } from 'node:test';
import { pipelineStateCodec } from '../../../src/engine/model/stateCodec';
import { PgDatabase } from '../../../src/engine/postgres/pgDatabase';
import { PgLeaderLease, pgLeaseSource } from '../../../src/engine/postgres/pgLease';
import { pipelineTables } from '../../../src/engine/postgres/pipelineTables';
import { PgStateStore } from '../../../src/engine/postgres/postgresStore';
import type { LeasePort } from '../../../src/engine/ports/statePort';
import { PostgresCluster } from '../../support/postgresCluster';
import { migratedDatabase } from '../postgres/pgTestKit';
import { statePortConformance } from './statePort.conformance';

/**
 * The state port's contract, passed by the PostgreSQL store and its lease row: one throwaway
 * cluster for the file, a fresh database per test.
 */

let cluster: PostgresCluster;

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await cluster?.dispose();
});

/** Leases long enough that no heartbeat runs out during a test. */
const LEASE = { leaseMs: 20 * 60_000 };

statePortConformance('PgStateStore (PostgreSQL)', async () => {
  const { url, db } = await migratedDatabase(cluster);
  // Every "process" of a test has its own connections, as processes on other machines would.
  const pools: PgDatabase[] = [db];
  const another = () => {
    const d = new PgDatabase(url, { source: 'the test' });
    pools.push(d);
    return d;
  };
  const asPgLease = (lease: LeasePort): PgLeaderLease => {
    if (!(lease instanceof PgLeaderLease)) throw new Error('the PostgreSQL store takes a PostgreSQL lease');
    return lease;
  };
  return {
    leases: () => pgLeaseSource(another(), LEASE),
    openWriter: (lease) =>
      PgStateStore.open({ db: another(), codec: pipelineStateCodec, tables: pipelineTables, lease: asPgLease(lease) }),
    openReader: () => PgStateStore.open({ db: another(), codec: pipelineStateCodec, tables: pipelineTables }),
    // The holder's heartbeat stopped long enough for its lease to expire; another process takes over.
    takeOver: async (lease) => {
      await db.query(`UPDATE pipeline.leader SET expires_at = now() - interval '1 second' WHERE epoch = $1`, [
        lease.epoch,
      ]);
      const got = await PgLeaderLease.acquire(another(), 'the new writer', LEASE);
      if (!(got instanceof PgLeaderLease)) throw new Error(`takeover failed: ${JSON.stringify(got.leader)} leads`);
      return got;
    },
    crashStorage: async () => {
      await cluster.stop('immediate');
      await cluster.start();
    },
    cleanup: async () => {
      await Promise.all(pools.map((p) => p.close()));
    },
  };
});
