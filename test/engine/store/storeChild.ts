import { LeaderLease } from '../../../src/engine/store/leaderLease';
import { StateStore } from '../../../src/engine/store/stateStore';
import { isPipelineError } from '../../../src/engine/errors';
import type { PipelineState } from '../../../src/engine/model/schema';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import { added, pipelineCodec, transition, taskId } from './storeTestKit';

/**
 * A child process for the store tests, run as `node --import tsx storeChild.ts '<json config>'`.
 * It prints one line per event on stdout, and prints `ack …` only after `commit` resolved, so the
 * parent knows exactly which commits were acknowledged before it killed or paused the child.
 *
 * Modes:
 * - `writer`: lead, then commit forever (batches of 1–3 task.added records); for kill -9 runs.
 * - `pairs`: lead, then commit [task.added n, ready n] pairs forever; for the reader test.
 * - `contend`: for `durationMs`, repeatedly try to lead; when leading, commit a few records, then
 *   release; for the leadership race test.
 */

interface Config {
  mode: 'writer' | 'pairs' | 'contend';
  dir: string;
  leaseMs?: number;
  renewMs?: number;
  snapshotEvery?: number;
  /** Task id prefix, unique per child, so records of different children never collide. */
  prefix?: string;
  durationMs?: number;
  /** Pause between commits, in ms. */
  pauseMs?: number;
  /** `contend`: the chance, before each commit, that the process stops itself with SIGSTOP. */
  selfStopChance?: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function lead(): Promise<LeaderLease> {
  for (;;) {
    const got = await LeaderLease.acquire(cfg.dir, {
      leaseMs: cfg.leaseMs ?? 2_000,
      ...(cfg.renewMs ? { renewMs: cfg.renewMs } : {}),
      label: `child ${process.pid}`,
    });
    if (got instanceof LeaderLease) return got;
    await sleep(20);
  }
}

async function writer(): Promise<void> {
  const lease = await lead();
  const store = await StateStore.open({
    dir: cfg.dir,
    codec: pipelineCodec,
    lease,
    snapshotEvery: cfg.snapshotEvery ?? 1000,
  });
  out(`lead ${lease.epoch} ${process.pid} ${store.seq}`);
  let n = Object.keys(store.state.tasks).length + 1;
  for (;;) {
    const size = 1 + (n % 3);
    const recs = Array.from({ length: size }, (_, i) => added(n + i, cfg.prefix ?? 'TASK'));
    // The seq of this commit's last record (store.seq may move on if the store has to reload).
    const last = store.seq + size;
    try {
      await store.commit(recs);
    } catch (e) {
      out(`lost ${isPipelineError(e) ? e.code : String(e)}`);
      return;
    }
    out(`ack ${last} ${n} ${n + size - 1}`);
    n += size;
    if (cfg.pauseMs) await sleep(cfg.pauseMs);
  }
}

async function pairs(): Promise<void> {
  const lease = await lead();
  const store = await StateStore.open({
    dir: cfg.dir,
    codec: pipelineCodec,
    lease,
    snapshotEvery: cfg.snapshotEvery ?? 1000,
  });
  out(`lead ${lease.epoch} ${process.pid} ${store.seq}`);
  for (let n = store.seq / 2 + 1; ; n++) {
    const last = store.seq + 2;
    await store.commit([added(n), transition(taskId(n), 0)]);
    out(`ack ${last}`);
    if (cfg.pauseMs) await sleep(cfg.pauseMs);
  }
}

async function contend(): Promise<void> {
  const until = Date.now() + (cfg.durationMs ?? 3_000);
  let n = 1;
  while (Date.now() < until) {
    const got = await LeaderLease.acquire(cfg.dir, {
      leaseMs: cfg.leaseMs ?? 2_000,
      ...(cfg.renewMs ? { renewMs: cfg.renewMs } : {}),
      label: `child ${process.pid}`,
    });
    if (!(got instanceof LeaderLease)) {
      await sleep(Math.random() * 5);
      continue;
    }
    out(`lead ${got.epoch} ${process.pid}`);
    let store: StateStore<PipelineState, StateRecord> | undefined;
    try {
      store = await StateStore.open({
        dir: cfg.dir,
        codec: pipelineCodec,
        lease: got,
        snapshotEvery: cfg.snapshotEvery ?? 1000,
      });
      const commits = 1 + Math.floor(Math.random() * 4);
      for (let i = 0; i < commits; i++) {
        // Freeze while leading, now and then (the parent sends SIGCONT): the lease expires, another
        // process takes over, and this one must find out before it acknowledges anything more.
        if (cfg.selfStopChance && Math.random() < cfg.selfStopChance) process.kill(process.pid, 'SIGSTOP');
        const seq = store.seq + 1;
        await store.commit([added(n, cfg.prefix ?? 'TASK')]);
        out(`ack ${got.epoch} ${seq} ${taskId(n, cfg.prefix ?? 'TASK')}`);
        n++;
      }
    } catch (e) {
      out(`lost ${got.epoch} ${isPipelineError(e) ? e.code : String(e)}`);
    } finally {
      await store?.close();
    }
    await got.release();
    await sleep(Math.random() * 10);
  }
  out('done');
}

const main = cfg.mode === 'writer' ? writer : cfg.mode === 'pairs' ? pairs : contend;
main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
