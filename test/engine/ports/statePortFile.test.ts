import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LeasePort } from '../../../src/engine/ports/statePort';
import { fileLeaseSource, LeaderLease } from '../../../src/engine/store/leaderLease';
import { epochFile } from '../../../src/engine/store/leaseFiles';
import { StateStore } from '../../../src/engine/store/stateStore';
import { pipelineCodec, removeDir, tempDir } from '../store/storeTestKit';
import { statePortConformance } from './statePort.conformance';

/** The state port's contract, passed by the file journal and its lease files (the embedded default). */

/** Leases long enough that no heartbeat runs out during a test. */
const LEASE = { leaseMs: 20 * 60_000 };

statePortConformance('StateStore (the file journal)', async () => {
  const dir = await tempDir('state-port-');
  const asFileLease = (lease: LeasePort): LeaderLease => {
    if (!(lease instanceof LeaderLease)) throw new Error('the file store takes a file lease');
    return lease;
  };
  return {
    leases: () => fileLeaseSource(dir, LEASE),
    openWriter: (lease) => StateStore.open({ dir, codec: pipelineCodec, lease: asFileLease(lease) }),
    openReader: () => StateStore.open({ dir, codec: pipelineCodec }),
    // Another process judged the holder's heartbeat expired and claimed the next epoch (then died,
    // as a pid that cannot exist says); a third takes over from it.
    takeOver: async (lease) => {
      const now = new Date().toISOString();
      await writeFile(
        join(dir, 'leader', epochFile(lease.epoch + 1)),
        JSON.stringify({
          pid: 2 ** 22 + 4321,
          host: lease.info.host,
          epoch: lease.epoch + 1,
          since: now,
          renewedAt: now,
          label: 'gone',
          leaseMs: LEASE.leaseMs,
        }),
      );
      const got = await LeaderLease.acquire(dir, { ...LEASE, label: 'the new writer' });
      if (!(got instanceof LeaderLease)) throw new Error(`takeover failed: ${JSON.stringify(got.leader)} leads`);
      return got;
    },
    cleanup: () => removeDir(dir),
  };
});
