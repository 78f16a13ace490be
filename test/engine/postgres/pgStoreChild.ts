import { isPipelineError } from '../../../src/engine/errors';
import { pipelineStateCodec } from '../../../src/engine/model/stateCodec';
import { PgDatabase } from '../../../src/engine/postgres/pgDatabase';
import { PgLeaderLease } from '../../../src/engine/postgres/pgLease';
import { pipelineTables } from '../../../src/engine/postgres/pipelineTables';
import { PgStateStore } from '../../../src/engine/postgres/postgresStore';
import { added } from '../store/storeTestKit';

/**
 * A writer in a process of its own for the PostgreSQL fencing tests, run as
 * `node --import tsx pgStoreChild.ts '<json config>'`: it leads, then commits batches of 1–3
 * task.added records for ever, printing `ack <last seq> <first n> <last n>` only after a commit
 * resolved, so the parent knows exactly what was acknowledged before it paused the process; and
 * `lost <code>` when a commit is refused.
 */

interface Config {
  url: string;
  leaseMs: number;
  renewMs: number;
  prefix: string;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

void (async () => {
  const db = new PgDatabase(cfg.url, { idleInTransactionMs: 1_000 });
  const got = await PgLeaderLease.acquire(db, `child ${process.pid}`, { leaseMs: cfg.leaseMs, renewMs: cfg.renewMs });
  if (!(got instanceof PgLeaderLease)) {
    out(`led-by ${got.leader.epoch}`);
    process.exit(2);
  }
  const store = await PgStateStore.open({ db, codec: pipelineStateCodec, tables: pipelineTables, lease: got });
  out(`lead ${got.epoch} ${store.seq}`);
  let n = 1;
  for (;;) {
    const size = 1 + (n % 3);
    const last = store.seq + size;
    try {
      await store.commit(Array.from({ length: size }, (_, i) => added(n + i, cfg.prefix)));
    } catch (e) {
      out(`lost ${isPipelineError(e) ? e.code : String(e)}`);
      break;
    }
    out(`ack ${last} ${n} ${n + size - 1}`);
    n += size;
  }
  await store.close();
  await db.close();
})();
