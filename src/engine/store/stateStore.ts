// src/engine/store/ — durable state: the checksummed journal, snapshots, recovery and salvage, the leader
// lease with its fencing epochs. Main file: this one. It imports only ../errors and the model's events; it
// knows nothing of tasks beyond the codec it is given.
import { mkdir, open, readFile, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isPipelineError, PipelineError } from '../errors';
import type { Disposable } from '../model/events';
import { copyAside, errnoCode, fsyncDir, isEnoent, moveAside, unlinkQuiet, writeFileAtomic } from './fsUtil';
import {
  capacity,
  describeRecord,
  embeddedLineStarts,
  guessLine,
  JournalDamage,
  startsLikeLine,
  type DamagedPiece,
  type LineGuess,
  type LostRecord,
  type UnappliedRecord,
} from './journalDamage';
import type { LeaderLease } from './leaderLease';
import { sliceStringify } from './sliceStringify';
import {
  decodeSnapshot,
  EMPTY_LAYOUT,
  encodeLine,
  encodeSnapshot,
  readLayout,
  scanLines,
  segmentName,
  snapshotName,
  type JournalEntry,
  type Layout,
  type SegmentFile,
  type SnapshotHeader,
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
 * - `open` recovers: the newest good snapshot plus every later journal record that can still be
 *   placed in the sequence (journalDamage.ts says when a record after a damaged line can). A reader
 *   only reports what it found, in `warnings` and `damage`. A leader repairs what cost nothing (a
 *   torn tail is cut after a copy of the file is set aside; a file with damage between intact
 *   records is moved aside once a snapshot holds its records), and refuses to open when
 *   acknowledged records were lost: only `StateStore.repair` (`pipeline repair`), run by a person,
 *   makes a loss permanent. Nothing is ever deleted or overwritten: damaged files are moved aside.
 * - Only the lease holder writes, and it checks the lease before and after every append; the epoch
 *   in each file name fences a paused ex-leader's late writes (see storeFiles.ts).
 *
 * The file formats are described in storeFiles.ts, the lease in leaderLease.ts.
 */

export interface StoreCodec<S, R> {
  initial(): S;
  /** Validates a snapshot's content (read from `file`); throws on invalid content, naming `file`. */
  parseSnapshot(json: unknown, file: string): S;
  /** Validates a record read back from the journal (or about to be written); throws on invalid content. */
  parseRecord(json: unknown): R;
  /** Applies one record in place; throws, leaving the state unchanged, when the record does not apply. */
  apply(state: S, rec: R): void;
  /**
   * A snapshot layout of the codec's own, named in the snapshot's header, so that a state can be
   * read part by part and a snapshot can reuse what did not change. Without one, a snapshot's body
   * is the state's json, read by `parseSnapshot`. Snapshots of either kind are always read.
   */
  readonly layout?: SnapshotLayout<S>;
}

export interface SnapshotLayout<S> {
  readonly name: string;
  /** The body of a snapshot of `state` that will be written as `file`; yields to the event loop as it goes. */
  write(state: S, file: string): Promise<Buffer>;
  /** The state from a body `write` produced (checksum already verified); throws on invalid content, naming `file`. */
  read(body: Buffer, file: string): S;
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

/** What `StateStore.repair` found and did (or, in a dry run, would do). */
export interface RepairReport {
  readonly dir: string;
  /** The last record the recovered state reaches. */
  readonly seq: number;
  readonly lost: readonly LostRecord[];
  readonly unapplied: readonly UnappliedRecord[];
  /** Where replay stopped, and why, when records could not be placed from some point on. */
  readonly stop: string | undefined;
  /** What is damaged, one sentence each. */
  readonly damaged: readonly string[];
  /** What the repair does (a dry run) or did. */
  readonly actions: readonly string[];
  readonly performed: boolean;
  /** Nothing needed repairing. */
  readonly clean: boolean;
}

const DEFAULT_SNAPSHOT_EVERY = 1000;
/** The newest two good snapshots are kept, so a damaged newest one still leaves a way back. */
const SNAPSHOTS_KEPT = 2;
const MAX_WARNINGS = 200;
/** Lost and not-applied records listed one warning each, before the summary says how many in all. */
const LISTED_PER_KIND = 50;
/**
 * A new writer takes a snapshot at open when this many journal files have piled up since the newest
 * one: every short-lived writer (a `pipeline task add` while nothing leads) starts a file of its own,
 * because its epoch must be in a file name to fence it, so without this the files would grow with
 * every command. The snapshot lets cleanup delete what it covers.
 */
const CONSOLIDATE_SEGMENTS = 8;

/** Where a reader (or recovery) has got to: the next byte to read in one segment. */
interface Cursor {
  seg: string;
  offset: number;
  line: number;
}

/** Replay applied part of a commit before one of its records failed: start again and leave that commit out. */
class ReplayRestart extends Error {
  constructor(
    readonly firstSeq: number,
    readonly why: string,
  ) {
    super(`replay restarts to leave out the commit at record ${firstSeq}`);
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

/** Reads a whole state file; a directory or unreadable path in its place becomes a PipelineError naming it. */
async function readWhole(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    if (isEnoent(e)) throw e;
    throw fsProblem(e, path, 'a state snapshot');
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
  /** What the last recovery found damaged, lost or not applied (see journalDamage.ts). */
  damage = new JournalDamage();

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
  /** Commits that applied in part at replay, by first seq, with why: left out when replay starts again. */
  private replaySkip = new Map<number, string>();
  /** `StateStore.repair` loads as the writer without refusing damage or moving anything yet. */
  private repairing = false;
  private layoutAtLoad: Layout = EMPTY_LAYOUT;
  /** Snapshots the last load found written by a replaced leader, or damaged and left in place. */
  private staleSnapshots: string[] = [];
  private damagedSnapshots: string[] = [];

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
    if (store.lease) {
      await store.becomeWriter();
      await store.load('writer');
      await store.startSegment();
      store.nextSnapshotAt = store._seq + store.snapshotEvery;
      store.leaseSub = store.lease.onLost(() => {
        store.lost = true;
      });
      store.consolidate();
    } else {
      await store.load('reader');
    }
    return store;
  }

  /**
   * Looks at the state directory `opts.dir` and, unless `dryRun`, repairs it for good: the state
   * recovered from every record that could be placed (see journalDamage.ts) is written as a fresh
   * snapshot, then every damaged file (and every file with records that could not be placed) is
   * moved aside, never deleted. What was lost is in the report. Needs the lease unless `dryRun`.
   */
  static async repair<S, R>(opts: StoreOpenOptions<S, R> & { dryRun: boolean }): Promise<RepairReport> {
    const store = new StateStore(opts.dryRun ? { ...opts, lease: undefined } : opts);
    try {
      if (store.lease) await store.becomeWriter();
      store.repairing = true;
      await store.load(store.lease ? 'writer' : 'reader');
      return await store.repairNow(!opts.dryRun);
    } finally {
      store.closed = true;
      await store.fh?.close();
    }
  }

  /** The directory exists (or is created) and the lease's epoch is above every epoch in it. */
  private async becomeWriter(): Promise<void> {
    const lease = this.lease!;
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (e) {
      throw fsProblem(e, this.dir, 'the state directory');
    }
    await lease.assertLeader();
    // The leader directory may have been lost (deleted, restored from an old backup) while the
    // journal kept higher epochs: move past them now rather than fail until the epochs catch up.
    const layout = await this.listLayout('writer');
    if (layout.maxEpoch >= lease.epoch) await lease.raiseAbove(layout.maxEpoch);
    await this.sweepTemps();
  }

  /**
   * When journal files have piled up since the newest snapshot (see CONSOLIDATE_SEGMENTS), the
   * first commit takes one. Not at open: a command that fails after opening changes no file.
   */
  private consolidate(): void {
    const pending = this.layoutAtLoad.segments.filter((s) => s.lastValidBound > this.snapshotSeqOnDisk).length;
    if (pending + 1 >= CONSOLIDATE_SEGMENTS) this.nextSnapshotAt = Math.min(this.nextSnapshotAt, this._seq + 1);
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
    let fh: FileHandle;
    try {
      fh = await open(join(this.dir, name), 'a');
    } catch (e) {
      throw fsProblem(e, join(this.dir, name), 'a journal file');
    }
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
    const body = await this.snapshotBody(snapshotName(seq, this.lease!.epoch));
    // A failure is retried after another full interval, not at every commit.
    this.nextSnapshotAt = seq + this.snapshotEvery;
    if (this.segStart !== seq + 1) await this.startSegment();
    const task = this.writeSnapshot(seq, body);
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

  private async writeSnapshot(seq: number, body: { body: Buffer; layout?: string }): Promise<void> {
    const lease = this.lease!;
    // Let the commit that triggered this resolve before the checksum pass over the whole state.
    await nextTurn();
    const data = encodeSnapshot(seq, lease.epoch, body.body, body.layout);
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
      throw fsProblem(e, this.dir, 'the state directory');
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
      const changed = await this.advance(layout, 'reader');
      this.reportDamage();
      return changed;
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
    this.replaySkip = new Map();
    for (let attempt = 0; ; attempt++) {
      try {
        await this.loadOnce(mode);
        return;
      } catch (e) {
        // A commit applied in part before one of its records failed: start again and leave it out.
        if (e instanceof ReplayRestart && !this.replaySkip.has(e.firstSeq)) {
          this.replaySkip.set(e.firstSeq, e.why);
          continue;
        }
        // The leader deleted a file we listed (a snapshot covered it): list again.
        if (isEnoent(e) && attempt < 5) continue;
        throw e;
      }
    }
  }

  private async listLayout(mode: Mode): Promise<Layout> {
    try {
      return await readLayout(this.dir);
    } catch (e) {
      // A reader of a pipeline that never wrote its state sees an empty one; it creates nothing.
      if (isEnoent(e) && mode === 'reader') return EMPTY_LAYOUT;
      throw fsProblem(e, this.dir, 'the state directory');
    }
  }

  private async loadOnce(mode: Mode): Promise<void> {
    const layout = await this.listLayout(mode);
    this.layoutAtLoad = layout;
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

    const moveFiles = mode === 'writer' && !this.repairing;
    const damaged: { path: string; name: string; movedTo: string | undefined; seq: number; why: string }[] = [];
    this.staleSnapshots = [];
    let base: { state: S; seq: number; epoch: number; name: string } | undefined;
    for (const snap of layout.snapshots) {
      const path = join(this.dir, snap.name);
      if (snap.stale) {
        this.staleSnapshots.push(snap.name);
        if (moveFiles) {
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
      try {
        const { header, body } = decodeSnapshot(await readWhole(path));
        if (header.seq !== snap.seq || header.epoch !== snap.epoch) {
          throw new Error(
            `its header says record ${header.seq} and epoch ${header.epoch}, its name says record ${snap.seq} and epoch ${snap.epoch}`,
          );
        }
        base = { state: this.parseSnapshotBody(header, body, path), seq: snap.seq, epoch: snap.epoch, name: snap.name };
        break;
      } catch (e) {
        if (isEnoent(e) || isPipelineError(e)) throw e;
        const movedTo = moveFiles ? await moveAside(path) : undefined;
        damaged.push({ path, name: snap.name, movedTo, seq: snap.seq, why: message(e) });
      }
    }
    this.damagedSnapshots = damaged.filter((d) => !d.movedTo).map((d) => d.name);

    this._state = base?.state ?? this.codec.initial();
    this._seq = base?.seq ?? 0;
    this.appliedEpochs = new Map(base ? [[base.epoch, base.seq]] : []);
    this.cursor = undefined;
    this.cursorSeenSize = 0;
    this.snapshotSeqOnDisk = base?.seq ?? 0;
    this.damage = new JournalDamage();
    await this.advance(layout, mode);
    const dmg = this.damage;

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
    const startGap = dmg.stop?.gap ? dmg.stop : undefined;
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
    if (mode === 'writer' && !this.repairing) {
      if (dmg.hasLoss) throw this.lossError();
      await this.autoRepair();
    } else this.reportDamage();
  }

  /** The state in a snapshot's verified body, in the layout its header names. */
  private parseSnapshotBody(header: SnapshotHeader, body: Buffer, path: string): S {
    if (header.layout === undefined) {
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw new Error('checksum matches but the body does not parse as json');
      }
      return this.codec.parseSnapshot(json, path);
    }
    const layout = this.codec.layout;
    if (layout?.name !== header.layout) {
      throw new PipelineError(
        'invalid-state',
        `${path} is written in the snapshot layout "${header.layout}", which this version of Agent Pipeline does not read.`,
        { file: path, fix: 'Use the version of Agent Pipeline that wrote it, or a newer one.' },
      );
    }
    return layout.read(body, path);
  }

  /** A snapshot body of the current state, in the codec's layout when it has one. */
  private async snapshotBody(name: string): Promise<{ body: Buffer; layout?: string }> {
    const layout = this.codec.layout;
    if (layout) return { body: await layout.write(this._state, join(this.dir, name)), layout: layout.name };
    return { body: Buffer.from(await sliceStringify(this._state), 'utf8') };
  }

  /** Warnings for what replay found, for a process that changes nothing (a reader, or a dry run). */
  private reportDamage(): void {
    const dmg = this.damage;
    let n = 0;
    for (const l of dmg.lost.values()) {
      if (n++ >= LISTED_PER_KIND) break;
      this.warn(
        `Journal ${l.file}, line ${l.line} (byte ${l.offset}) is damaged; it held record ${l.seq}${l.guess ? ` (the damaged bytes read: ${l.guess})` : ''}, which is lost: it is not in the state.`,
      );
    }
    n = 0;
    for (const u of dmg.unapplied.values()) {
      if (n++ >= LISTED_PER_KIND) break;
      this.warn(`Record ${u.seq} (${u.what}; ${u.file}, line ${u.line}) is intact but was not applied: ${u.why}.`);
    }
    if (dmg.stop) {
      const s = dmg.stop;
      this.warn(
        `Journal ${join(this.dir, s.seg.name)}, line ${s.line} (byte ${s.offset}): ${s.what}. Replay stopped there: no record from there on is in the state.`,
      );
    }
    for (const h of dmg.harmless.values()) {
      this.warn(
        `Journal ${join(this.dir, h.seg.name)}, line ${h.line} (byte ${h.offset}): ${h.what}. Nothing acknowledged was lost there; the leader moves the damage aside when it opens the state.`,
      );
    }
    for (const t of dmg.tails.values()) {
      this.warn(
        `Journal ${join(this.dir, t.seg.name)}, line ${t.line} (byte ${t.offset}): ${t.reason}. Replay stopped there for this file. This process only reads; the leader cuts the file there when it opens the state, keeping a copy of it.`,
      );
    }
    if (dmg.hasLoss) {
      this.warn(
        `The journal in ${this.dir} is damaged: ${dmg.lossSummary()}. The state shown holds every record that could be recovered. No process leads this pipeline until the damage is repaired: run \`pipeline repair --dry-run\` to see what a repair would do, then \`pipeline repair\`.`,
      );
    }
  }

  private lossError(): PipelineError {
    const dmg = this.damage;
    const first = [...dmg.lost.values()].sort((a, b) => a.seq - b.seq)[0];
    const firstUnapplied = [...dmg.unapplied.values()].sort((a, b) => a.seq - b.seq)[0];
    const file = first?.file ?? (dmg.stop ? join(this.dir, dmg.stop.seg.name) : firstUnapplied?.file);
    const where = first
      ? `line ${first.line} (byte ${first.offset})`
      : dmg.stop
        ? `line ${dmg.stop.line} (byte ${dmg.stop.offset})`
        : firstUnapplied
          ? `line ${firstUnapplied.line}`
          : undefined;
    return new PipelineError(
      'corrupt-journal',
      `The journal in ${this.dir} is damaged: ${dmg.lossSummary()}. This process will not lead the pipeline until the damage is repaired, so that the loss is not made permanent without a person deciding.`,
      {
        ...(file ? { file } : {}),
        ...(where ? { where } : {}),
        fix: 'Run `pipeline repair --dry-run` to see what is damaged and what a repair would do, then `pipeline repair` (it keeps every damaged file, moved aside), or restore the state directory from a backup. `pipeline status` shows what could be recovered.',
      },
    );
  }

  /**
   * The leader's repairs when nothing acknowledged was lost. A file that ends in damaged or torn
   * bytes (a crash in mid-write) is copied aside whole, then cut after its last whole commit. A file
   * with damage between intact records cannot be cut without losing them: a snapshot of the state
   * is written first, so that the file's records are no longer needed, and then it is moved aside.
   */
  private async autoRepair(): Promise<void> {
    const dmg = this.damage;
    const moved = new Set<string>();
    const mid = [...dmg.harmless.values()].filter((h) => h.midFile);
    if (mid.length > 0) {
      const snap = await this.writeRepairSnapshot();
      for (const h of mid) {
        const path = join(this.dir, h.seg.name);
        if (!moved.has(h.seg.name)) {
          moved.add(h.seg.name);
          const to = await moveAside(path);
          this.warn(
            `Journal ${path}, line ${h.line} (byte ${h.offset}): ${h.what}. Nothing acknowledged was lost; the state was written to snapshot ${snap} and the file was moved aside to ${to}.`,
          );
        }
      }
    }
    const cuts = new Map<string, { seg: SegmentFile; offset: number; line: number; what: string }>();
    const tailOf = (seg: SegmentFile, offset: number, line: number, what: string) => {
      const c = cuts.get(seg.name);
      if (!c || offset < c.offset) cuts.set(seg.name, { seg, offset, line, what });
    };
    for (const t of dmg.tails.values()) tailOf(t.seg, t.offset, t.line, t.reason);
    for (const h of dmg.harmless.values()) if (!h.midFile) tailOf(h.seg, h.offset, h.line, h.what);
    for (const c of cuts.values()) {
      if (moved.has(c.seg.name)) continue;
      const path = join(this.dir, c.seg.name);
      const copy = await copyAside(path);
      await truncateFile(path, c.offset);
      this.warn(
        `Journal ${path}, line ${c.line} (byte ${c.offset}): ${c.what}. Replay stopped there for this file; the file was cut at byte ${c.offset} and the whole original kept as ${copy}. Inspect the copy if records after that point matter.`,
      );
    }
  }

  /** The plan for `StateStore.repair`, carried out when `perform`. */
  private async repairNow(perform: boolean): Promise<RepairReport> {
    const dmg = this.damage;
    const segs = this.layoutAtLoad.segments;
    const why = new Map<string, string[]>();
    const note = (name: string, text: string): void => {
      const list = why.get(name) ?? [];
      list.push(text);
      why.set(name, list);
    };
    for (const l of dmg.lost.values())
      note(basename(l.file), `line ${l.line} (byte ${l.offset}) is damaged and held record ${l.seq}, now lost`);
    for (const u of dmg.unapplied.values())
      note(basename(u.file), `record ${u.seq} on line ${u.line} is intact but not applied: ${u.why}`);
    for (const h of dmg.harmless.values())
      note(h.seg.name, `line ${h.line} (byte ${h.offset}): ${h.what} (nothing lost)`);
    for (const t of dmg.tails.values())
      note(t.seg.name, `line ${t.line} (byte ${t.offset}): ${t.reason} (never acknowledged)`);
    if (dmg.stop) {
      const at = segs.findIndex((s) => s.name === dmg.stop!.seg.name);
      note(dmg.stop.seg.name, `line ${dmg.stop.line} (byte ${dmg.stop.offset}): ${dmg.stop.what}; replay stops there`);
      for (const later of segs.slice(at + 1))
        note(later.name, `comes after the point where replay stopped: its records are not in the state`);
    }
    for (const name of this.damagedSnapshots) note(name, 'the snapshot is damaged');
    const damaged = [...why].map(([name, texts]) => `${join(this.dir, name)}: ${texts.join('; ')}`);
    const stale = this.staleSnapshots;
    const clean = why.size === 0 && stale.length === 0;
    const lost = [...dmg.lost.values()].sort((a, b) => a.seq - b.seq);
    const unapplied = [...dmg.unapplied.values()].sort((a, b) => a.seq - b.seq);
    const stop = dmg.stop ? `${join(this.dir, dmg.stop.seg.name)}, line ${dmg.stop.line}: ${dmg.stop.what}` : undefined;
    const actions: string[] = [];
    const base = { dir: this.dir, seq: this._seq, lost, unapplied, stop, damaged, clean };
    if (clean) return { ...base, actions, performed: false };

    const left = [...dmg.lost.keys(), ...dmg.unapplied.keys()];
    const snapNote = `the state as recovered up to record ${this._seq}${left.length ? ` (without records ${JournalDamage.ranges(left)})` : ''}${dmg.stop ? ' (nothing from where replay stopped on)' : ''} is written as a new snapshot`;
    if (!perform) {
      actions.push(`${snapNote} (snapshot-${String(this._seq).padStart(12, '0')}-e<next epoch>.json)`);
      for (const name of why.keys()) actions.push(`${join(this.dir, name)} is moved aside to ${name}.corrupt-<time>`);
      for (const name of stale)
        actions.push(`${join(this.dir, name)} (a replaced leader's) is moved aside to ${name}.stale-<time>`);
      return { ...base, actions, performed: false };
    }
    const snap = await this.writeRepairSnapshot();
    actions.push(`${snapNote}: ${join(this.dir, snap)}`);
    for (const name of why.keys()) {
      const to = await moveAside(join(this.dir, name));
      actions.push(`${join(this.dir, name)} was moved aside to ${to}`);
    }
    for (const name of stale) {
      const to = await moveAside(join(this.dir, name), 'stale');
      actions.push(`${join(this.dir, name)} (a replaced leader's) was moved aside to ${to}`);
    }
    return { ...base, actions, performed: true };
  }

  /** Writes the recovered state as a snapshot at the current seq (synced), so damaged files can go. */
  private async writeRepairSnapshot(): Promise<string> {
    const lease = this.lease!;
    const name = snapshotName(this._seq, lease.epoch);
    const body = await this.snapshotBody(name);
    const data = encodeSnapshot(this._seq, lease.epoch, body.body, body.layout);
    await writeFileAtomic(join(this.dir, name), data, () => lease.assertLeader());
    this.snapshotSeqOnDisk = Math.max(this.snapshotSeqOnDisk, this._seq);
    return name;
  }

  /**
   * Reads forward from the cursor (or from the first segment the state does not cover) and places
   * every record it can in the sequence (the rule is in journalDamage.ts), applying whole commits;
   * what it cannot place or apply goes to `this.damage`. A reader waits at an incomplete tail of
   * the last segment: the leader may be writing it. The cursor moves only past what is settled, so
   * a reader that stops inside damaged or incomplete lines reads them again next time.
   */
  private async advance(layout: Layout, mode: Mode): Promise<boolean> {
    const segs = layout.segments;
    const dmg = this.damage;
    let changed = false;
    let run: DamagedPiece[] = [];
    let group: Group | undefined;
    let next = this._seq + 1;
    let waiting = false;
    /** What damaged lines said about the records they held, by the seq they were placed at. */
    const guesses = new Map<number, LineGuess>();
    const path = (seg: SegmentFile): string => join(this.dir, seg.name);
    let i = this.cursor
      ? segs.findIndex((s) => s.name === this.cursor!.seg)
      : segs.findIndex((s) => s.lastValidBound > this._seq);
    if (i === -1) i = segs.length;

    const stopAt = (seg: SegmentFile, offset: number, line: number, what: string, gap = false): void => {
      dmg.stop = { seg, offset, line, what, gap };
    };

    /**
     * Settles the stretch since the last record placed, at a record (or the start of a file) that
     * is numbered `seq`: the records in between are lost when the damaged lines there account for
     * them exactly; the damaged lines held nothing needed when no number is missing. False: it
     * cannot be placed, and replay stops.
     */
    const place = (seq: number, seg: SegmentFile, offset: number, line: number): boolean => {
      const gap = seq - next;
      if (gap < 0) {
        stopAt(seg, offset, line, `record ${seq} comes after records already placed up to ${next - 1}`);
        return false;
      }
      if (gap > 0) {
        const { lo, hi } = capacity(run);
        if (gap < lo || gap > hi) {
          const at = line > 0 ? `line ${line} (record ${seq})` : `the start of this file (record ${seq})`;
          stopAt(
            seg,
            offset,
            line,
            run.length === 0
              ? `record${gap > 1 ? `s ${next}–${seq - 1} are` : ` ${next} is`} missing before ${at}, and no damaged line is there to have held ${gap > 1 ? 'them' : 'it'}`
              : `record${gap > 1 ? `s ${next}–${seq - 1} are` : ` ${next} is`} missing before ${at}, and the ${run.length} damaged line(s) before it cannot have held exactly ${gap}`,
            true,
          );
          return false;
        }
        const exact = run.length === gap && run.every((p) => p.embeddedStarts === 0);
        const all = run
          .map((p) => p.guess?.summary)
          .filter(Boolean)
          .join('; ');
        for (let s = next; s < seq; s++) {
          const p = exact ? run[s - next]! : run[0]!;
          if (exact && p.guess) guesses.set(s, p.guess);
          const guess = exact ? p.guess?.summary : all || undefined;
          dmg.lost.set(s, { seq: s, file: path(p.seg), line: p.line, offset: p.offset, guess });
        }
      } else if (run.length > 0) {
        for (const p of run) {
          dmg.harmless.set(`${p.seg.name}:${p.offset}`, {
            seg: p.seg,
            offset: p.offset,
            line: p.line,
            what: `${p.reason}; it held no record the state needs (record ${seq} follows record ${seq - 1} without a gap)`,
            midFile: p.seg === seg && line > 0,
          });
        }
      }
      run = [];
      return true;
    };

    /** A lost record known (from its damaged bytes) to be the last of its commit. */
    const endsCommit = (seq: number): boolean => {
      const g = guesses.get(seq);
      return g?.seq === seq && g.last === seq;
    };

    const finish = (g: Group): void => {
      let why = g.broken ?? this.replaySkip.get(g.first);
      let recs: R[] | undefined;
      if (!why) {
        try {
          recs = g.entries.map((x) => this.codec.parseRecord(x.entry.rec));
        } catch (err) {
          why = `it is not a valid record for this version of Agent Pipeline (${message(err)}); if a newer version wrote this journal, use that version`;
        }
      }
      if (recs) {
        let applied = 0;
        try {
          for (const r of recs) {
            this.codec.apply(this._state, r);
            applied++;
          }
        } catch (err) {
          // Part of the commit is applied and cannot be taken back here: load again, leaving it out.
          if (applied > 0)
            throw new ReplayRestart(g.first, `its record ${g.first + applied} does not apply: ${message(err)}`);
          why = `${dmg.lost.size > 0 ? 'it does not apply without the lost records' : 'it does not apply to the state'} (${message(err).replace(/\.$/, '')})`;
        }
      }
      if (why) {
        for (const x of g.entries) {
          dmg.unapplied.set(x.entry.seq, {
            seq: x.entry.seq,
            file: path(g.seg),
            line: x.line,
            what: describeRecord(x.entry.rec),
            why,
          });
        }
      }
      this._seq = g.last;
      this.appliedEpochs.set(g.seg.epoch, Math.max(this.appliedEpochs.get(g.seg.epoch) ?? 0, g.last));
      this.cursor = g.end;
      changed = true;
    };

    outer: for (; i < segs.length; i++) {
      const seg = segs[i]!;
      const isLast = i === segs.length - 1;
      const resumed = this.cursor?.seg === seg.name;
      const from: Cursor = resumed ? this.cursor! : { seg: seg.name, offset: 0, line: 1 };
      const settled = run.length === 0 && !group;
      if (settled) this.cursor = from;
      if (seg.lastValidBound <= this._seq && !isLast && settled) continue;

      // A file's start is a fact too: its writer had every record before it.
      if (!resumed && seg.start < seg.fence && seg.start > this._seq) {
        if (group) {
          if (seg.start === group.first) {
            // The open commit at the end of the previous file was never acknowledged (torn).
            dmg.tails.set(`${group.seg.name}:${group.offset}`, {
              seg: group.seg,
              offset: group.offset,
              end: group.end.offset,
              line: group.line,
              reason: `the commit starting at line ${group.line} is incomplete (a crash during a write; it was never acknowledged)`,
              guess: undefined,
              startsLine: true,
              embeddedStarts: 0,
              afterIntact: true,
            });
            for (const p of run) dmg.tails.set(`${p.seg.name}:${p.offset}`, p);
            run = [];
            group = undefined;
            next = seg.start;
            this.cursor = from;
          } else if (seg.start > group.first) {
            const lastSeen = group.entries[group.entries.length - 1]!.entry.seq;
            if (!place(seg.start, seg, 0, 0)) break;
            group.broken ??= `its commit (records ${group.first}–${group.last}) lost record(s) ${JournalDamage.ranges(range(lastSeen + 1, Math.min(group.last, seg.start - 1)))}`;
            finish(group);
            group = undefined;
            next = seg.start;
            if (this._seq < seg.start - 1) this._seq = seg.start - 1;
            this.cursor = from;
          }
        } else if (seg.start >= next) {
          const gap = seg.start - next;
          if (!place(seg.start, seg, 0, 0)) break;
          next = seg.start;
          if (gap > 0) {
            this._seq = seg.start - 1;
            changed = true;
          }
          this.cursor = from;
        }
      }

      const buf = await this.readSegment(seg, from.offset);
      this.cursorSeenSize = from.offset + buf.length;
      let stale = 0;
      let prevIntact = true;
      for (const l of scanLines(buf, from.offset, from.line)) {
        if (l.kind === 'partial' && isLast && mode === 'reader') {
          waiting = true;
          break;
        }
        if (l.kind !== 'entry' || l.entry.epoch !== seg.epoch) {
          const bytes = buf.subarray(l.offset - from.offset, l.end - from.offset);
          const reason =
            l.kind === 'partial'
              ? `the file ends with ${l.end - l.offset} bytes of a line that was never completed (a crash during a write)`
              : l.kind === 'bad'
                ? `line ${l.line} is damaged: ${l.reason}`
                : `line ${l.line} carries epoch ${l.entry.epoch} in a file of epoch ${seg.epoch}`;
          run.push({
            seg,
            offset: l.offset,
            end: l.end,
            line: l.line,
            reason,
            guess: guessLine(bytes),
            startsLine: startsLikeLine(bytes),
            embeddedStarts: embeddedLineStarts(bytes),
            afterIntact: prevIntact,
          });
          prevIntact = false;
          continue;
        }
        prevIntact = true;
        const e = l.entry;
        const after: Cursor = { seg: seg.name, offset: l.end, line: l.line + 1 };
        if (e.last >= seg.fence) {
          stale++;
          if (run.length === 0 && !group) this.cursor = after;
          continue;
        }
        if (!group && e.last <= this._seq) {
          // Already in the state (the snapshot covers it): damage before it cost nothing.
          for (const p of run) {
            dmg.harmless.set(`${p.seg.name}:${p.offset}`, {
              seg: p.seg,
              offset: p.offset,
              line: p.line,
              what: `${p.reason}; the snapshot covers it`,
              midFile: p.seg === seg,
            });
          }
          run = [];
          this.cursor = after;
          continue;
        }
        if (group && e.seq <= group.last) {
          const prev = group.entries[group.entries.length - 1]!.entry.seq;
          if (e.last !== group.last || e.seq <= prev) {
            stopAt(
              seg,
              l.offset,
              l.line,
              `line ${l.line} (record ${e.seq}, commit ending at ${e.last}) does not continue the commit of records ${group.first}–${group.last}`,
            );
            break outer;
          }
          const gap = e.seq - next;
          if (!place(e.seq, seg, l.offset, l.line)) break outer;
          if (gap > 0)
            group.broken ??= `its commit (records ${group.first}–${group.last}) lost record(s) ${JournalDamage.ranges(range(next, e.seq - 1))}`;
          group.entries.push({ entry: e, line: l.line });
          group.end = after;
        } else {
          if (e.seq < next) {
            stopAt(
              seg,
              l.offset,
              l.line,
              `line ${l.line} holds records ${e.seq}–${e.last}, overlapping records already placed up to ${next - 1}`,
            );
            break outer;
          }
          const gap = e.seq - next;
          const open = group;
          if (!place(e.seq, seg, l.offset, l.line)) break outer;
          let headless = gap > 0 && !endsCommit(e.seq - 1);
          if (open) {
            const lastSeen = open.entries[open.entries.length - 1]!.entry.seq;
            open.broken ??= `its commit (records ${open.first}–${open.last}) lost record(s) ${JournalDamage.ranges(range(lastSeen + 1, open.last))}`;
            finish(open);
            group = undefined;
            headless = open.last !== e.seq - 1 && !endsCommit(e.seq - 1);
          }
          if (gap > 0 && this._seq < e.seq - 1) {
            this._seq = e.seq - 1;
            this.cursor = { seg: seg.name, offset: l.offset, line: l.line };
            changed = true;
          }
          group = {
            seg,
            first: e.seq,
            last: e.last,
            offset: l.offset,
            line: l.line,
            entries: [{ entry: e, line: l.line }],
            end: after,
            ...(headless ? { broken: `it follows lost record ${e.seq - 1}, which may have begun its commit` } : {}),
          };
        }
        next = e.seq + 1;
        if (e.seq === e.last) {
          finish(group);
          group = undefined;
        }
      }
      if (stale > 0) {
        this.warn(
          `Journal ${path(seg)}: ignored ${stale} record(s) of epoch ${seg.epoch} from record ${seg.fence} on, written after a newer leader took over there (a replaced leader's late writes).`,
        );
      }
      if (waiting) break;
    }

    if (!dmg.stop) {
      if (group) {
        const last = segs[segs.length - 1];
        if (mode === 'reader' && group.seg === last) waiting = true;
        else {
          dmg.tails.set(`${group.seg.name}:${group.offset}`, {
            seg: group.seg,
            offset: group.offset,
            end: group.end.offset,
            line: group.line,
            reason: `the commit starting at line ${group.line} is incomplete (a crash during a write; it was never acknowledged)`,
            guess: undefined,
            startsLine: true,
            embeddedStarts: 0,
            afterIntact: true,
          });
        }
      }
      for (const p of run) dmg.tails.set(`${p.seg.name}:${p.offset}`, p);
    }
    return changed;
  }

  private async readSegment(seg: SegmentFile, offset: number): Promise<Buffer> {
    try {
      return await readFrom(join(this.dir, seg.name), offset);
    } catch (e) {
      if (isEnoent(e)) throw e;
      throw fsProblem(e, join(this.dir, seg.name), 'a journal file');
    }
  }
}

interface Group {
  seg: SegmentFile;
  first: number;
  last: number;
  offset: number;
  line: number;
  entries: { entry: JournalEntry; line: number }[];
  end: Cursor;
  /** Why the commit cannot be applied: it lost a record. */
  broken?: string;
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
}

/** A file-system error on the state directory as a PipelineError that names the path and the fix. */
export function fsProblem(e: unknown, path: string, what: string): unknown {
  const code = errnoCode(e);
  if (code === 'EISDIR')
    return new PipelineError('invalid-state', `${path} should be ${what}, but it is a directory.`, {
      file: path,
      fix: `Move it out of the way (for example \`mv ${path} ${path}.bad\`) and run the command again; it holds no records the pipeline wrote.`,
    });
  if (code === 'ENOTDIR' || code === 'EEXIST')
    return new PipelineError('invalid-state', `${path} should be ${what}, but it is a file.`, {
      file: path,
      fix: `Move it out of the way (for example \`mv ${path} ${path}.bad\`) and run the command again. If it should hold the pipeline's state, restore the directory from a backup.`,
    });
  if (code === 'EACCES' || code === 'EPERM')
    return new PipelineError('invalid-state', `${path} (${what}) cannot be read or written: permission denied.`, {
      file: path,
      fix: 'Give the user that runs the pipeline read and write access to it.',
    });
  return e;
}
