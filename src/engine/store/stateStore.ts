import { mkdir, open, readFile, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isPipelineError, PipelineError } from '../errors';
import type { Disposable } from '../model/events';
import { copyAside, fsyncDir, isEnoent, moveAside, unlinkQuiet, writeFileAtomic } from './fsUtil';
import type { LeaderLease } from './leaderLease';
import { sliceStringify } from './sliceStringify';
import {
  decodeSnapshot,
  encodeLine,
  encodeSnapshot,
  readLayout,
  scanLines,
  segmentName,
  snapshotName,
  type JournalEntry,
  type Layout,
  type SegmentFile,
} from './storeFiles';

/**
 * The crash-safe state store: an in-memory state, a journal that is the commit point, and snapshots
 * that keep recovery short.
 *
 * - `commit` validates and applies records in memory, then appends them to the journal in one write
 *   and one fdatasync; it resolves only when they are durable. If anything fails on the way, the
 *   state is rebuilt from disk, so nothing is ever half applied.
 * - Every `snapshotEvery` records the state is serialised (between two commits, so it matches one
 *   seq exactly) and written in the background (temp, fsync, rename, fsync directory);
 *   the journal rolls to a new segment at that point, and segments covered by the older of the two
 *   kept snapshots are deleted.
 * - `open` recovers: the newest good snapshot plus the journal's later records, stopping at the first
 *   torn or damaged line. The leader repairs what it finds (damaged files are copied or moved aside,
 *   never deleted or overwritten) and says so in `warnings`; a reader only reports.
 * - Only the lease holder writes, and it checks the lease before and after every append; the epoch
 *   in each file name fences a paused ex-leader's late writes (see storeFiles.ts).
 *
 * The file formats are described in storeFiles.ts, the lease in leaderLease.ts.
 */

export interface StoreCodec<S, R> {
  initial(): S;
  /** Validates a snapshot's content; throws on invalid content. */
  parseSnapshot(json: unknown): S;
  /** Validates a record read back from the journal (or about to be written); throws on invalid content. */
  parseRecord(json: unknown): R;
  /** Applies one record in place; throws, leaving the state unchanged, when the record does not apply. */
  apply(state: S, rec: R): void;
}

export interface StoreOpenOptions<S, R> {
  /** The state directory, for example `<repo>/.pipeline/state`; created if missing. */
  dir: string;
  codec: StoreCodec<S, R>;
  /** Records between snapshots; default 1000. */
  snapshotEvery?: number;
  /** Present: this store writes, fenced by the lease's epoch. Absent: a read-only reader. */
  lease?: LeaderLease;
}

type Mode = 'writer' | 'reader';

const DEFAULT_SNAPSHOT_EVERY = 1000;
/** The newest two good snapshots are kept, so a damaged newest one still leaves a way back. */
const SNAPSHOTS_KEPT = 2;
const MAX_WARNINGS = 200;

/** Where a reader (or recovery) has got to: the next byte to read in one segment. */
interface Cursor {
  seg: string;
  offset: number;
  line: number;
}

/** A place where replay could not go on. */
interface Problem {
  seg: SegmentFile;
  offset: number;
  line: number;
  /** 'segment': the rest of this file is unusable, replay goes on with the next one. 'all': nothing after this point can be applied. */
  scope: 'segment' | 'all';
  what: string;
  /** A record is missing before this point (gap), as opposed to damaged at it. */
  gap: boolean;
}

/** Replay applied part of a commit before one of its records failed: start again and stop before it. */
class ReplayRestart extends Error {
  constructor(readonly limitSeq: number) {
    super(`replay restarts to stop at record ${limitSeq}`);
  }
}

function isNotLeader(e: unknown): boolean {
  return isPipelineError(e) && e.code === 'not-leader';
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function readFrom(path: string, offset: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(size - offset);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === buf.length ? buf : buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

async function truncateFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(size);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

export class StateStore<S, R> {
  /** Human-readable notes of what recovery moved aside, cut off or ignored: the file, the place and what to do. */
  readonly warnings: string[] = [];

  private readonly dir: string;
  private readonly codec: StoreCodec<S, R>;
  private readonly snapshotEvery: number;
  private readonly lease: LeaderLease | undefined;

  private _state: S;
  private _seq = 0;
  private mode: Mode;
  private closed = false;
  /** Set when a failed commit could not be undone by rebuilding from disk (see rebuild). */
  private broken: unknown = undefined;
  private closing: Promise<void> | undefined;
  /** The lease was lost: no more writes; the next refresh reloads as a reader. */
  private lost = false;
  private leaseSub: Disposable | undefined;
  /** Every operation that reads or changes the state runs here, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly warned = new Set<string>();

  // Reading.
  private cursor: Cursor | undefined;
  /** The cursor segment's size when it was last read, so an idle refresh is a readdir and a stat. */
  private cursorSeenSize = 0;
  /** For each epoch, the highest seq applied from it (the snapshot included): a new fence below it means reload. */
  private appliedEpochs = new Map<number, number>();

  // Writing.
  private fh: FileHandle | undefined;
  private segName = '';
  private segStart = 0;
  private segSize = 0;
  private nextSnapshotAt = 0;
  private snapshotSeqOnDisk = 0;
  private snapshotRunning: Promise<void> | undefined;

  private constructor(opts: StoreOpenOptions<S, R>) {
    this.dir = opts.dir;
    this.codec = opts.codec;
    this.snapshotEvery = opts.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY;
    if (!Number.isSafeInteger(this.snapshotEvery) || this.snapshotEvery < 1) {
      throw new PipelineError('usage', `snapshotEvery must be a positive integer, not ${String(opts.snapshotEvery)}.`, {
        where: 'snapshotEvery',
        fix: 'Use a whole number of records, such as 1000.',
      });
    }
    this.lease = opts.lease;
    this.mode = opts.lease ? 'writer' : 'reader';
    this._state = opts.codec.initial();
  }

  /** Opens (and recovers) the store in `opts.dir`; with a lease it becomes the writer. */
  static async open<S, R>(opts: StoreOpenOptions<S, R>): Promise<StateStore<S, R>> {
    const store = new StateStore(opts);
    await mkdir(opts.dir, { recursive: true });
    if (store.lease) {
      await store.lease.assertLeader();
      await store.sweepTemps();
      await store.load('writer');
      await store.startSegment();
      store.nextSnapshotAt = store._seq + store.snapshotEvery;
      store.leaseSub = store.lease.onLost(() => {
        store.lost = true;
      });
    } else {
      await store.load('reader');
    }
    return store;
  }

  /** The current state. Mutated in place by commits; replaced by a reader's full reload. */
  get state(): S {
    return this._state;
  }

  /** The seq of the last applied record (0 for an empty journal). */
  get seq(): number {
    return this._seq;
  }

  /** Applies the records, appends them in one write, and resolves once they are synced to disk. */
  commit(records: readonly R[]): Promise<void> {
    return this.enqueue(() => this.doCommit(records));
  }

  /**
   * Catches up with what the leader wrote since the last look; true when the state changed. Idle, it
   * costs a readdir and a stat. A writer's state is already current (false), unless it lost its
   * lease: then it reloads from disk and reads from there on.
   */
  refresh(): Promise<boolean> {
    return this.enqueue(() => this.doRefresh());
  }

  /** Writes a snapshot of the current state now and waits until it is durable. */
  async snapshotNow(): Promise<void> {
    for (;;) {
      if (this.snapshotRunning) await this.snapshotRunning.catch(() => undefined);
      const started = await this.enqueue<{ task: Promise<void> } | 'busy' | undefined>(() => {
        this.assertWritable();
        return this.snapshotRunning ? Promise.resolve('busy') : this.captureSnapshot(true);
      });
      if (started === 'busy') continue;
      if (started) await started.task;
      return;
    }
  }

  /** Waits for queued work and a running snapshot, then closes the journal. Does not release the lease. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.enqueue(() => {
        this.closed = true;
        return Promise.resolve();
      });
      if (this.snapshotRunning) await this.snapshotRunning.catch(() => undefined);
      await this.fh?.close();
      this.fh = undefined;
      this.leaseSub?.dispose();
    })();
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------
  // Commit.

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new PipelineError('usage', 'The state store is closed.', {
        file: this.dir,
        fix: 'Open it again with StateStore.open.',
      });
    if (this.broken !== undefined) {
      throw new PipelineError(
        'invalid-state',
        `The state store in ${this.dir} could not rebuild its state after a failed commit (${message(this.broken)}), so its state in memory cannot be trusted.`,
        {
          file: this.dir,
          fix: 'Close the store and open it again.',
        },
      );
    }
  }

  private assertWritable(): void {
    this.assertOpen();
    if (!this.lease) {
      throw new PipelineError('not-leader', 'This state store was opened read-only (without the leader lease).', {
        file: this.dir,
        fix: 'Acquire the lease with LeaderLease.acquire and open the store with it.',
      });
    }
    if (this.lost || this.mode !== 'writer') {
      throw new PipelineError('not-leader', 'This process lost the leader lease; it can no longer write the state.', {
        file: this.dir,
        fix: 'Call refresh() to follow the new leader, or acquire the lease again when it is gone.',
      });
    }
  }

  private async doCommit(records: readonly R[]): Promise<void> {
    this.assertWritable();
    const lease = this.lease!;
    const fh = this.fh!;
    if (records.length === 0) return;
    try {
      await lease.assertLeader();
    } catch (e) {
      if (isNotLeader(e)) this.lost = true;
      throw e;
    }

    // Validate what will be replayed: the record as it reads back from its json. A record that
    // applied in memory but failed to parse at replay would stop every later recovery there.
    const ts = new Date().toISOString();
    const first = this._seq + 1;
    const last = this._seq + records.length;
    const parsed: R[] = [];
    const lines: Buffer[] = [];
    for (let i = 0; i < records.length; i++) {
      const json = JSON.stringify(records[i]);
      if (json === undefined)
        throw new PipelineError('invalid-state', `Record ${i} of the commit cannot be serialised.`, {
          where: `records[${i}]`,
        });
      parsed.push(this.codec.parseRecord(JSON.parse(json)));
      lines.push(encodeLine(first + i, lease.epoch, ts, last, json));
    }

    let applied = 0;
    try {
      for (const r of parsed) {
        this.codec.apply(this._state, r);
        applied++;
      }
    } catch (e) {
      // apply() leaves the state unchanged for the record that throws, so only earlier records of
      // this commit need undoing, and the only general undo is to rebuild from disk.
      if (applied > 0) await this.rebuild();
      throw e;
    }

    const buf = lines.length === 1 ? lines[0]! : Buffer.concat(lines);
    const sizeBefore = this.segSize;
    try {
      await writeAll(fh, buf);
      await fh.datasync();
    } catch (e) {
      // Take back whatever part of the write landed, so the journal does not end in a torn commit
      // that the next append would bury; if even that fails, recovery in rebuild() cuts it off.
      await fh.truncate(sizeBefore).catch(() => undefined);
      await this.rebuild();
      throw e;
    }
    this.segSize += buf.length;
    this._seq = last;
    this.appliedEpochs.set(lease.epoch, last);

    // The records are durable, but count only if nobody took over before they landed.
    try {
      await lease.assertLeader();
    } catch (e) {
      // An I/O error reading the lease says nothing about who leads: report it as it is.
      if (!isNotLeader(e)) throw e;
      this.lost = true;
      const verdict = await this.fenceVerdict(last);
      await this.becomeReader();
      if (verdict !== 'kept') throw this.lostDuringCommit(e, verdict, first, last);
    }

    if (this._seq >= this.nextSnapshotAt && !this.snapshotRunning) {
      // After this commit resolves, before the next one: the snapshot's serialisation must see
      // the state at one seq exactly.
      void this.enqueue(() => {
        if (this.closed || this.lost || this.snapshotRunning || this._seq < this.nextSnapshotAt)
          return Promise.resolve();
        return this.captureSnapshot(false).then(() => undefined);
      }).catch((e: unknown) =>
        this.warn(`Could not start a snapshot of ${this.dir}: ${message(e)}. The journal still holds every record.`),
      );
    }
  }

  /**
   * After losing the lease during a commit: did the new leader's takeover include our records? Its
   * first segment starts after the last record its recovery saw, so records below that start are
   * kept and records at or past it are fenced. Before that segment exists, nobody can tell yet.
   */
  private async fenceVerdict(last: number): Promise<'kept' | 'fenced' | 'unknown'> {
    try {
      const layout = await readLayout(this.dir);
      const ours = layout.segments.find((seg) => seg.name === this.segName);
      if (!ours || ours.fence === Infinity) return 'unknown';
      return last < ours.fence ? 'kept' : 'fenced';
    } catch {
      return 'unknown';
    }
  }

  private lostDuringCommit(cause: unknown, verdict: 'fenced' | 'unknown', first: number, last: number): PipelineError {
    const who = isPipelineError(cause) ? ` ${cause.message}` : '';
    return verdict === 'fenced'
      ? new PipelineError(
          'not-leader',
          `Records ${first}–${last} were written after another process took over the pipeline, so they do not count.${who}`,
          {
            file: this.dir,
            fix: 'Call refresh() to follow the new leader; redo the change there if it still applies.',
          },
        )
      : new PipelineError(
          'not-leader',
          `This process lost the leader lease while committing records ${first}–${last}; the new leader's recovery decides whether they count.${who}`,
          {
            file: this.dir,
            fix: 'Call refresh() to follow the new leader and check whether the change is in its state.',
          },
        );
  }

  /**
   * Rebuilds the in-memory state from disk after a failed commit, and reopens our segment. If even
   * that fails, the store refuses all further work: its state may hold half a commit.
   */
  private async rebuild(): Promise<void> {
    try {
      await this.load('writer');
      await this.startSegment();
    } catch (e) {
      this.broken = e;
      throw e;
    }
  }

  /** Opens (creating if needed) this epoch's segment starting at the next seq. */
  private async startSegment(): Promise<void> {
    const epoch = this.lease!.epoch;
    const start = this._seq + 1;
    const name = segmentName(start, epoch);
    if (this.fh && this.segName === name) {
      // Still the right file (a failed commit was undone in it): only its size may have changed.
      this.segSize = (await this.fh.stat()).size;
      return;
    }
    const old = this.fh;
    this.fh = undefined;
    await old?.close();
    const fh = await open(join(this.dir, name), 'a');
    this.fh = fh;
    this.segName = name;
    this.segStart = start;
    this.segSize = (await fh.stat()).size;
    await fsyncDir(this.dir);
  }

  private async becomeReader(): Promise<void> {
    this.mode = 'reader';
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
    try {
      await this.load('reader');
    } catch (e) {
      this.warn(
        `After losing the leader lease, reloading ${this.dir} failed: ${message(e)}. The state shown may be out of date.`,
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Snapshots.

  /**
   * Serialises the state, rolls the journal to a new segment, and starts writing the snapshot in
   * the background. Runs inside the queue, so no commit changes the state while it is serialised
   * (the snapshot is the state at exactly `seq`); the serialisation yields to the event loop every
   * few milliseconds, so only commits wait for it, not the rest of the extension host.
   */
  private async captureSnapshot(force: boolean): Promise<{ task: Promise<void> } | undefined> {
    const seq = this._seq;
    if (force ? seq === this.snapshotSeqOnDisk : seq < this.nextSnapshotAt) return undefined;
    const json = await sliceStringify(this._state);
    // A failure is retried after another full interval, not at every commit.
    this.nextSnapshotAt = seq + this.snapshotEvery;
    if (this.segStart !== seq + 1) await this.startSegment();
    const task = this.writeSnapshot(seq, json);
    this.snapshotRunning = task;
    void task
      .catch((e: unknown) =>
        this.warn(
          `Writing a snapshot of ${this.dir} at record ${seq} failed: ${message(e)}. The journal still holds every record; the next snapshot is tried after ${this.snapshotEvery} more.`,
        ),
      )
      .finally(() => {
        if (this.snapshotRunning === task) this.snapshotRunning = undefined;
      });
    // Wrapped: an async function returning the promise itself would make the queue wait for the write.
    return { task };
  }

  private async writeSnapshot(seq: number, json: string): Promise<void> {
    const lease = this.lease!;
    // Let the commit that triggered this resolve before the checksum pass over the whole state.
    await nextTurn();
    const data = encodeSnapshot(seq, lease.epoch, json);
    await writeFileAtomic(join(this.dir, snapshotName(seq, lease.epoch)), data, () => lease.assertLeader());
    this.snapshotSeqOnDisk = Math.max(this.snapshotSeqOnDisk, seq);
    await this.cleanupAfterSnapshot();
  }

  /** Keeps the two newest good snapshots and the journal from the older one on; deletes the rest. */
  private async cleanupAfterSnapshot(): Promise<void> {
    await this.lease!.assertLeader();
    const layout = await readLayout(this.dir);
    const good = layout.snapshots.filter((s) => !s.stale);
    if (good.length < SNAPSHOTS_KEPT) return;
    const keepSeq = good[SNAPSHOTS_KEPT - 1]!.seq;
    for (const s of layout.snapshots) if (s.seq < keepSeq) await unlinkQuiet(join(this.dir, s.name));
    for (const seg of layout.segments) {
      if (seg.lastValidBound <= keepSeq && seg.name !== this.segName) await unlinkQuiet(join(this.dir, seg.name));
    }
  }

  /** Removes temp files a crashed writer left (only the leader does, at open). */
  private async sweepTemps(): Promise<void> {
    const layout = await readLayout(this.dir).catch((e: unknown) => {
      if (isEnoent(e)) return undefined;
      throw e;
    });
    for (const t of layout?.temps ?? []) await unlinkQuiet(join(this.dir, t));
  }

  // -------------------------------------------------------------------------------------------
  // Recovery and reading.

  private warn(text: string): void {
    if (this.warned.has(text)) return;
    this.warned.add(text);
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(text);
  }

  private async doRefresh(): Promise<boolean> {
    this.assertOpen();
    if (this.mode === 'writer') {
      if (!this.lost) return false;
      await this.becomeReader();
      return true;
    }
    let layout: Layout;
    try {
      layout = await readLayout(this.dir);
    } catch (e) {
      if (isEnoent(e)) return false;
      throw e;
    }
    if (this.needsReload(layout)) {
      await this.load('reader');
      return true;
    }
    const idx = this.cursor ? layout.segments.findIndex((s) => s.name === this.cursor!.seg) : -1;
    if (this.cursor && idx === -1) {
      // Our segment was deleted after a snapshot covered it: we fell far behind.
      await this.load('reader');
      return true;
    }
    if (this.cursor && idx === layout.segments.length - 1) {
      let size: number;
      try {
        size = (await stat(join(this.dir, this.cursor.seg))).size;
      } catch (e) {
        if (!isEnoent(e)) throw e;
        await this.load('reader');
        return true;
      }
      if (size === this.cursorSeenSize) return false;
      if (size < this.cursor.offset) {
        await this.load('reader');
        return true;
      }
    }
    if (!this.cursor && !layout.segments.some((s) => s.lastValidBound > this._seq)) return false;
    try {
      const res = await this.advance(layout, 'reader', Infinity);
      this.reportReaderProblems(res.problems);
      return res.changed;
    } catch (e) {
      if (!(e instanceof ReplayRestart) && !isEnoent(e)) throw e;
      await this.load('reader');
      return true;
    }
  }

  /** A higher epoch took over below records we applied: they were a stale leader's, start over. */
  private needsReload(layout: Layout): boolean {
    for (const seg of layout.segments) {
      for (const [epoch, maxSeq] of this.appliedEpochs) if (seg.epoch > epoch && seg.start <= maxSeq) return true;
    }
    return false;
  }

  private async load(mode: Mode): Promise<void> {
    let limit = Infinity;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.loadOnce(mode, limit);
        return;
      } catch (e) {
        if (e instanceof ReplayRestart && e.limitSeq < limit) {
          limit = e.limitSeq;
          continue;
        }
        // The leader deleted a file we listed (a snapshot covered it): list again.
        if (isEnoent(e) && attempt < 5) continue;
        throw e;
      }
    }
  }

  private async loadOnce(mode: Mode, limit: number): Promise<void> {
    const layout = await readLayout(this.dir);
    const epoch = this.lease?.epoch ?? 0;
    if (mode === 'writer' && layout.maxEpoch > epoch) {
      this.lost = true;
      throw new PipelineError(
        'not-leader',
        `A leader with epoch ${layout.maxEpoch} has written to ${this.dir}; this process holds epoch ${epoch}.`,
        {
          file: this.dir,
          fix: 'Open the store without a lease to read it, or acquire the lease again.',
        },
      );
    }

    const damaged: { path: string; movedTo: string | undefined; seq: number; why: string }[] = [];
    let base: { state: S; seq: number; epoch: number; name: string } | undefined;
    for (const snap of layout.snapshots) {
      const path = join(this.dir, snap.name);
      if (snap.stale) {
        if (mode === 'writer') {
          const to = await moveAside(path, 'stale');
          this.warn(
            `Snapshot ${path} was written by a replaced leader (epoch ${snap.epoch}) after a newer one took over; it was ignored and moved aside to ${to}.`,
          );
        } else {
          this.warn(
            `Snapshot ${path} was written by a replaced leader (epoch ${snap.epoch}) after a newer one took over; it was ignored.`,
          );
        }
        continue;
      }
      if (snap.seq > limit) continue;
      try {
        const { header, body } = decodeSnapshot(await readFile(path));
        if (header.seq !== snap.seq || header.epoch !== snap.epoch) {
          throw new Error(
            `its header says record ${header.seq} and epoch ${header.epoch}, its name says record ${snap.seq} and epoch ${snap.epoch}`,
          );
        }
        base = { state: this.codec.parseSnapshot(body), seq: snap.seq, epoch: snap.epoch, name: snap.name };
        break;
      } catch (e) {
        if (isEnoent(e)) throw e;
        const movedTo = mode === 'writer' ? await moveAside(path) : undefined;
        damaged.push({ path, movedTo, seq: snap.seq, why: message(e) });
      }
    }

    this._state = base?.state ?? this.codec.initial();
    this._seq = base?.seq ?? 0;
    this.appliedEpochs = new Map(base ? [[base.epoch, base.seq]] : []);
    this.cursor = undefined;
    this.cursorSeenSize = 0;
    this.snapshotSeqOnDisk = base?.seq ?? 0;
    const res = await this.advance(layout, mode, limit);

    const unrecovered = damaged.find((d) => d.seq > this._seq);
    if (unrecovered) {
      throw new PipelineError(
        'corrupt-snapshot',
        `The state snapshot ${unrecovered.path} is damaged (${unrecovered.why}), and neither an older snapshot nor the journal holds the records up to ${unrecovered.seq}: recovery reached record ${this._seq} only.`,
        {
          file: unrecovered.movedTo ?? unrecovered.path,
          where: `record ${unrecovered.seq}`,
          fix: `${unrecovered.movedTo ? `The damaged file was moved aside to ${unrecovered.movedTo}. ` : ''}Restore ${this.dir} from a backup, or move the directory away to start with an empty state.`,
        },
      );
    }
    // Without a usable snapshot, the state must come from record 1 on. A journal that starts later
    // lost its head (snapshots roll and prune it): say so, even when its files hold no record yet
    // (a snapshot moved aside earlier, then nothing committed), rather than start from an empty state.
    const startGap = res.problems.find((p) => p.gap);
    const firstSeg = layout.segments[0];
    const headless = !startGap && firstSeg && firstSeg.start > 1 ? firstSeg : undefined;
    if (!base && this._seq === 0 && (startGap || headless)) {
      const aside = (await readdir(this.dir)).filter((n) => n.startsWith('snapshot-') && /\.(corrupt|stale)-/.test(n));
      const what = startGap ? startGap.what : `its first file starts at record ${headless!.start}`;
      throw new PipelineError(
        'corrupt-snapshot',
        `There is no usable snapshot in ${this.dir}, and the journal does not start at record 1 (${what}).`,
        {
          file: join(this.dir, startGap ? startGap.seg.name : headless!.name),
          where: startGap ? `line ${startGap.line}` : 'its first record',
          fix: `${aside.length ? `Snapshots moved aside earlier: ${aside.join(', ')}. ` : ''}Restore ${this.dir} from a backup, or move the directory away to start with an empty state.`,
        },
      );
    }
    for (const d of damaged) {
      this.warn(
        `Snapshot ${d.path} is damaged (${d.why}); ${d.movedTo ? `it was moved aside to ${d.movedTo}` : 'it was left in place (this process only reads)'}, and the state was recovered from ${base ? `snapshot ${base.name}` : 'the start of the journal'} and the journal instead.`,
      );
    }
    if (mode === 'writer') await this.repair(res.problems, layout);
    else this.reportReaderProblems(res.problems);
  }

  private reportReaderProblems(problems: readonly Problem[]): void {
    for (const p of problems) {
      this.warn(
        `Journal ${join(this.dir, p.seg.name)}, line ${p.line} (byte ${p.offset}): ${p.what}. Replay stopped there${p.scope === 'segment' ? ' for this file' : ''}. This process only reads; the leader repairs the file when it opens the state.`,
      );
    }
  }

  /**
   * The leader's repairs after replay: each file with a damaged or torn tail is copied aside whole,
   * then cut at the last whole commit; after a point nothing more can be applied at, the later
   * files are moved aside. New records then continue cleanly from the recovered seq.
   */
  private async repair(problems: readonly Problem[], layout: Layout): Promise<void> {
    for (const p of problems) {
      const path = join(this.dir, p.seg.name);
      const copy = await copyAside(path);
      await truncateFile(path, p.offset);
      this.warn(
        `Journal ${path}, line ${p.line} (byte ${p.offset}): ${p.what}. Replay stopped there${p.scope === 'segment' ? ' for this file' : ''}; the file was cut at byte ${p.offset} and the whole original kept as ${copy}. Inspect the copy if records after that point matter.`,
      );
      if (p.scope === 'all') {
        const idx = layout.segments.indexOf(p.seg);
        for (const later of layout.segments.slice(idx + 1)) {
          const to = await moveAside(join(this.dir, later.name));
          this.warn(
            `Journal ${join(this.dir, later.name)} comes after that point and cannot be applied; it was moved aside to ${to}.`,
          );
        }
        break;
      }
    }
  }

  /**
   * Reads forward from the cursor (or from the first segment the state does not cover), applying
   * whole commits in order. Stops a segment at a torn or damaged line and the whole replay at a
   * missing record or one that does not parse or apply. A reader waits at an incomplete tail of the
   * last segment: the leader may be writing it.
   */
  private async advance(layout: Layout, mode: Mode, limit: number): Promise<{ changed: boolean; problems: Problem[] }> {
    const segs = layout.segments;
    const problems: Problem[] = [];
    let changed = false;
    let i = this.cursor
      ? segs.findIndex((s) => s.name === this.cursor!.seg)
      : segs.findIndex((s) => s.lastValidBound > this._seq);
    if (i === -1) i = segs.length;

    for (; i < segs.length; i++) {
      const seg = segs[i]!;
      const isLast = i === segs.length - 1;
      const from: Cursor = this.cursor?.seg === seg.name ? this.cursor : { seg: seg.name, offset: 0, line: 1 };
      this.cursor = from;
      if (seg.lastValidBound <= this._seq && !isLast) continue;

      const buf = await readFrom(join(this.dir, seg.name), from.offset);
      this.cursorSeenSize = from.offset + buf.length;
      let pending: { entries: JournalEntry[]; offset: number; line: number } | undefined;
      let stale = 0;
      let outcome: 'end' | 'segment' | 'all' | 'wait' = 'end';
      const problem = (
        offset: number,
        line: number,
        scope: Problem['scope'],
        what: string,
        gap = false,
      ): Problem['scope'] => {
        problems.push({ seg, offset, line, scope, what, gap });
        return scope;
      };

      for (const l of scanLines(buf, from.offset, from.line)) {
        if (l.kind === 'partial') {
          if (isLast && mode === 'reader') outcome = 'wait';
          else
            outcome = problem(
              pending?.offset ?? l.offset,
              pending?.line ?? l.line,
              'segment',
              `the file ends with ${l.end - l.offset} bytes of a line that was never completed (a crash during a write; that commit was never acknowledged)`,
            );
          break;
        }
        if (l.kind === 'bad') {
          outcome = problem(
            pending?.offset ?? l.offset,
            pending?.line ?? l.line,
            'segment',
            `line ${l.line} is damaged: ${l.reason}`,
          );
          break;
        }
        const e = l.entry;
        if (e.epoch !== seg.epoch) {
          outcome = problem(
            pending?.offset ?? l.offset,
            pending?.line ?? l.line,
            'segment',
            `line ${l.line} carries epoch ${e.epoch} in a file of epoch ${seg.epoch}`,
          );
          break;
        }
        if (pending) {
          const prev = pending.entries[pending.entries.length - 1]!;
          if (e.seq !== prev.seq + 1 || e.last !== prev.last) {
            outcome = problem(
              pending.offset,
              pending.line,
              'segment',
              `the commit of records ${pending.entries[0]!.seq}–${prev.last} is incomplete (line ${l.line} does not continue it)`,
            );
            break;
          }
          pending.entries.push(e);
        } else {
          pending = { entries: [e], offset: l.offset, line: l.line };
        }
        if (e.seq < e.last) continue;

        // A whole commit.
        const commit = pending;
        pending = undefined;
        const firstSeq = commit.entries[0]!.seq;
        const next: Cursor = { seg: seg.name, offset: l.end, line: l.line + 1 };
        if (e.last >= seg.fence) {
          stale += commit.entries.length;
          this.cursor = next;
          continue;
        }
        if (e.last <= this._seq) {
          this.cursor = next;
          continue;
        }
        if (firstSeq !== this._seq + 1) {
          const what =
            firstSeq > this._seq + 1
              ? `line ${commit.line} holds record ${firstSeq}, but record ${this._seq + 1} is missing before it`
              : `line ${commit.line} holds records ${firstSeq}–${e.last}, overlapping records already applied up to ${this._seq}`;
          outcome = problem(commit.offset, commit.line, 'all', what, firstSeq > this._seq + 1);
          break;
        }
        if (e.last > limit) {
          outcome = problem(
            commit.offset,
            commit.line,
            'all',
            `the commit of records ${firstSeq}–${e.last} does not apply to the state`,
          );
          break;
        }
        let recs: R[];
        try {
          recs = commit.entries.map((x) => this.codec.parseRecord(x.rec));
        } catch (err) {
          outcome = problem(
            commit.offset,
            commit.line,
            'all',
            `line ${commit.line} holds a record that is not valid: ${message(err)}`,
          );
          break;
        }
        let applied = 0;
        try {
          for (const r of recs) {
            this.codec.apply(this._state, r);
            applied++;
          }
        } catch (err) {
          // Part of the commit is applied and cannot be taken back here: load again, stopping before it.
          if (applied > 0) throw new ReplayRestart(firstSeq - 1);
          outcome = problem(
            commit.offset,
            commit.line,
            'all',
            `record ${firstSeq} on line ${commit.line} does not apply to the state: ${message(err)}`,
          );
          break;
        }
        this._seq = e.last;
        this.appliedEpochs.set(seg.epoch, Math.max(this.appliedEpochs.get(seg.epoch) ?? 0, e.last));
        changed = true;
        this.cursor = next;
      }

      if (outcome === 'end' && pending) {
        if (isLast && mode === 'reader') outcome = 'wait';
        else
          outcome = problem(
            pending.offset,
            pending.line,
            'segment',
            `the commit starting at line ${pending.line} is incomplete (a crash during a write; it was never acknowledged)`,
          );
      }
      if (stale > 0) {
        this.warn(
          `Journal ${join(this.dir, seg.name)}: ignored ${stale} record(s) of epoch ${seg.epoch} from record ${seg.fence} on, written after a newer leader took over there (a replaced leader's late writes).`,
        );
      }
      if (outcome === 'all' || outcome === 'wait') break;
    }
    return { changed, problems };
  }
}
