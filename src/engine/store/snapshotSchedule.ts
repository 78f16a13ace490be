import { setImmediate as nextTurn } from 'node:timers/promises';
import type { JournalWriter } from './journalWriter';
import type { LeaderLease } from './leaderLease';
import { cleanupAfterSnapshot, snapshotBody, writeSnapshotFile, type SnapshotBody } from './snapshotWriter';
import type { StateLoader } from './stateLoader';
import type { StoreCodec } from './storeCodec';
import { message } from './storeErrors';
import { snapshotName } from './storeFiles';

/**
 * When the writer takes a snapshot, and the one being written: every `every` records, sooner when
 * journal files have piled up (see CONSOLIDATE_SEGMENTS), and at once when asked. The state is
 * serialised inside the store's queue and written in the background (snapshotWriter.ts); the store
 * (stateStore.ts) decides when to ask.
 */

/**
 * A new writer takes a snapshot at open when this many journal files have piled up since the newest
 * one: every short-lived writer (a `pipeline task add` while nothing leads) starts a file of its own,
 * because its epoch must be in a file name to fence it, so without this the files would grow with
 * every command. The snapshot lets cleanup delete what it covers.
 */
const CONSOLIDATE_SEGMENTS = 8;

/** What the schedule reads and writes through: the store's parts. */
export interface SnapshotScheduleHost<S, R> {
  readonly dir: string;
  readonly codec: StoreCodec<S, R>;
  /** The writer's lease; the schedule is used only by a store that has one. */
  readonly lease: LeaderLease | undefined;
  readonly loader: StateLoader<S, R>;
  readonly segment: JournalWriter;
  /** Records between snapshots. */
  readonly every: number;
  /** Opens this epoch's segment at the next seq. */
  startSegment(): Promise<void>;
  warn(text: string): void;
}

export class SnapshotSchedule<S, R> {
  /** The snapshot being written in the background, if any. */
  running: Promise<void> | undefined;
  /** The seq from which the next snapshot is due. */
  private nextAt = 0;

  constructor(private readonly host: SnapshotScheduleHost<S, R>) {}

  /**
   * After a writer's open: the next snapshot is due a full interval on, or at the first commit when
   * journal files have piled up since the newest snapshot. Not at open: a command that fails after
   * opening changes no file.
   */
  start(): void {
    const { layoutAtLoad, snapshotSeqOnDisk, pos } = this.host.loader;
    this.nextAt = pos.seq + this.host.every;
    const pending = layoutAtLoad.segments.filter((s) => s.lastValidBound > snapshotSeqOnDisk).length;
    if (pending + 1 >= CONSOLIDATE_SEGMENTS) this.nextAt = Math.min(this.nextAt, pos.seq + 1);
  }

  /** A snapshot is due at the current seq. */
  get due(): boolean {
    return this.host.loader.pos.seq >= this.nextAt;
  }

  /**
   * Serialises the state, rolls the journal to a new segment, and starts writing the snapshot in
   * the background. Runs inside the queue, so no commit changes the state while it is serialised
   * (the snapshot is the state at exactly `seq`); the serialisation yields to the event loop every
   * few milliseconds, so only commits wait for it, not the rest of the extension host.
   */
  async capture(force: boolean): Promise<{ task: Promise<void> } | undefined> {
    const { dir, codec, loader, segment, every } = this.host;
    const seq = loader.pos.seq;
    if (force ? seq === loader.snapshotSeqOnDisk : seq < this.nextAt) return undefined;
    const body = await snapshotBody(codec, loader.pos.state, dir, snapshotName(seq, this.host.lease!.epoch));
    // A failure is retried after another full interval, not at every commit.
    this.nextAt = seq + every;
    if (segment.start !== seq + 1) await this.host.startSegment();
    const task = this.write(seq, body);
    this.running = task;
    void task
      .catch((e: unknown) =>
        this.host.warn(
          `Writing a snapshot of ${dir} at record ${seq} failed: ${message(e)}. The journal still holds every record; the next snapshot is tried after ${every} more.`,
        ),
      )
      .finally(() => {
        if (this.running === task) this.running = undefined;
      });
    // Wrapped: an async function returning the promise itself would make the queue wait for the write.
    return { task };
  }

  private async write(seq: number, body: SnapshotBody): Promise<void> {
    const { dir, loader, segment } = this.host;
    const lease = this.host.lease!;
    // Let the commit that triggered this resolve before the checksum pass over the whole state.
    await nextTurn();
    await writeSnapshotFile(dir, seq, lease, body);
    loader.snapshotSeqOnDisk = Math.max(loader.snapshotSeqOnDisk, seq);
    await cleanupAfterSnapshot(dir, lease, () => segment.name);
  }
}
