import { join } from 'node:path';
import { isEnoent, unlinkQuiet, writeFileAtomic } from './fsUtil';
import type { LeaderLease } from './leaderLease';
import { sliceStringify } from './sliceStringify';
import type { StoreCodec } from './storeCodec';
import { encodeSnapshot, readLayout, snapshotName } from './storeFiles';

/**
 * Writing snapshots and the cleanup after them: a snapshot's body in the codec's layout, the
 * durable write fenced by the lease, and the deletion of what the kept snapshots cover. When to
 * take a snapshot is decided in snapshotSchedule.ts; the format is in storeFiles.ts.
 */

/** The newest two good snapshots are kept, so a damaged newest one still leaves a way back. */
const SNAPSHOTS_KEPT = 2;

/** A snapshot's body and the layout it is written in (none: the state's json). */
export interface SnapshotBody {
  body: Buffer;
  layout?: string;
  /** The layout's head lines (SnapshotLayout.headLines), for the header's line table. */
  headLines?: number;
}

/** A snapshot body of `state`, to be written as `name` in `dir`, in the codec's layout when it has one. */
export async function snapshotBody<S, R>(
  codec: StoreCodec<S, R>,
  state: S,
  dir: string,
  name: string,
): Promise<SnapshotBody> {
  const layout = codec.layout;
  if (layout)
    return { body: await layout.write(state, join(dir, name)), layout: layout.name, headLines: layout.headLines };
  return { body: Buffer.from(await sliceStringify(state), 'utf8') };
}

/** Writes the snapshot of record `seq` durably (temp, fsync, rename, fsync directory) while `lease` is held. */
export async function writeSnapshotFile(
  dir: string,
  seq: number,
  lease: LeaderLease,
  body: SnapshotBody,
): Promise<void> {
  const data = encodeSnapshot(seq, lease.epoch, body.body, body.layout, body.headLines);
  await writeFileAtomic(join(dir, snapshotName(seq, lease.epoch)), data, () => lease.assertLeader());
}

/**
 * Keeps the two newest good snapshots and the journal from the older one on; deletes the rest, but
 * never the segment `currentSegment()` names (the one being written).
 */
export async function cleanupAfterSnapshot(
  dir: string,
  lease: LeaderLease,
  currentSegment: () => string,
): Promise<void> {
  await lease.assertLeader();
  const layout = await readLayout(dir);
  const good = layout.snapshots.filter((s) => !s.stale);
  if (good.length < SNAPSHOTS_KEPT) return;
  const keepSeq = good[SNAPSHOTS_KEPT - 1]!.seq;
  for (const s of layout.snapshots) if (s.seq < keepSeq) await unlinkQuiet(join(dir, s.name));
  for (const seg of layout.segments) {
    if (seg.lastValidBound <= keepSeq && seg.name !== currentSegment()) await unlinkQuiet(join(dir, seg.name));
  }
}

/** Removes temp files a crashed writer left (only the leader does, at open). */
export async function sweepTemps(dir: string): Promise<void> {
  const layout = await readLayout(dir).catch((e: unknown) => {
    if (isEnoent(e)) return undefined;
    throw e;
  });
  for (const t of layout?.temps ?? []) await unlinkQuiet(join(dir, t));
}
