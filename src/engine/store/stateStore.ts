// src/engine/store/ — durable state: the checksummed journal, snapshots, recovery and salvage, the leader
// lease with its fencing epochs. Main file: this one. It imports only ../errors and the model's events; it
// knows nothing of tasks beyond the codec it is given.
import { mkdir } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PipelineError } from '../errors';
import type { Disposable } from '../model/events';
import { isEnoent } from './fsUtil';
import { lossError, reportDamage } from './damageReport';
import { JournalDamage } from './journalDamage';
import { encodeCommit, fenceVerdict, JournalWriter } from './journalWriter';
import { replayJournal, ReplayRestart, type ReplayPosition, type StoreMode } from './journalReplay';
import type { StatePort } from '../ports/statePort';
import type { LeaderLease } from './leaderLease';
import { followStep } from './readerFollow';
import { assertRecovered, loadBaseSnapshot } from './snapshotRecovery';
import { cleanupAfterSnapshot, snapshotBody, sweepTemps, writeSnapshotFile, type SnapshotBody } from './snapshotWriter';
import type { StoreCodec } from './storeCodec';
import {
  fsProblem,
  isNotLeader,
  leaseLostError,
  lostDuringCommitError,
  message,
  newerLeaderError,
  readOnlyError,
  storeBrokenError,
  storeClosedError,
} from './storeErrors';
import { EMPTY_LAYOUT, readLayout, snapshotName, type Layout } from './storeFiles';
import { autoRepair, repairNow, type RepairContext, type RepairReport } from './storeRepair';

export type { SnapshotLayout, StoreCodec } from './storeCodec';
export { fsProblem } from './storeErrors';
export type { RepairReport } from './storeRepair';

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
 * The file formats are described in storeFiles.ts, the lease in leaderLease.ts. The parts live in
 * files of their own: replay in journalReplay.ts (a reader's follow in readerFollow.ts), the
 * starting snapshot in snapshotRecovery.ts, snapshot writing in snapshotWriter.ts, damage reports in
 * damageReport.ts and repairs in storeRepair.ts.
 */

export interface StoreOpenOptions<S, R> {
  /** The state directory, for example `<repo>/.pipeline/state`; created if missing. */
  dir: string;
  codec: StoreCodec<S, R>;
  /** Records between snapshots; default 1000. */
  snapshotEvery?: number;
  /** Present: this store writes, fenced by the lease's epoch. Absent: a read-only reader. */
  lease?: LeaderLease;
}

const DEFAULT_SNAPSHOT_EVERY = 1000;
const MAX_WARNINGS = 200;
/**
 * A new writer takes a snapshot at open when this many journal files have piled up since the newest
 * one: every short-lived writer (a `pipeline task add` while nothing leads) starts a file of its own,
 * because its epoch must be in a file name to fence it, so without this the files would grow with
 * every command. The snapshot lets cleanup delete what it covers.
 */
const CONSOLIDATE_SEGMENTS = 8;

export class StateStore<S, R> implements StatePort<S, R> {
  /** Human-readable notes of what recovery moved aside, cut off or ignored: the file, the place and what to do. */
  readonly warnings: string[] = [];
  /** What the last recovery found damaged, lost or not applied (see journalDamage.ts). */
  damage = new JournalDamage();

  private readonly dir: string;
  private readonly codec: StoreCodec<S, R>;
  private readonly snapshotEvery: number;
  private readonly lease: LeaderLease | undefined;

  /** The state, its seq, and where reading resumes; replay moves it on (journalReplay.ts). */
  private pos: ReplayPosition<S>;
  private mode: StoreMode;
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

  // Writing.
  private readonly segment: JournalWriter;
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
    this.segment = new JournalWriter(opts.dir);
    this.mode = opts.lease ? 'writer' : 'reader';
    this.pos = { state: opts.codec.initial(), seq: 0, cursor: undefined, cursorSeenSize: 0, appliedEpochs: new Map() };
  }

  /** Opens (and recovers) the store in `opts.dir`; with a lease it becomes the writer. */
  static async open<S, R>(opts: StoreOpenOptions<S, R>): Promise<StateStore<S, R>> {
    const store = new StateStore(opts);
    if (store.lease) {
      await store.becomeWriter();
      await store.load('writer');
      await store.startSegment();
      store.nextSnapshotAt = store.pos.seq + store.snapshotEvery;
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
      const found = {
        seq: store.pos.seq,
        segments: store.layoutAtLoad.segments,
        damagedSnapshots: store.damagedSnapshots,
        staleSnapshots: store.staleSnapshots,
      };
      return await repairNow(store.repairContext(), found, !opts.dryRun);
    } finally {
      store.closed = true;
      await store.segment.close();
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
    await sweepTemps(this.dir);
  }

  /**
   * When journal files have piled up since the newest snapshot (see CONSOLIDATE_SEGMENTS), the
   * first commit takes one. Not at open: a command that fails after opening changes no file.
   */
  private consolidate(): void {
    const pending = this.layoutAtLoad.segments.filter((s) => s.lastValidBound > this.snapshotSeqOnDisk).length;
    if (pending + 1 >= CONSOLIDATE_SEGMENTS) this.nextSnapshotAt = Math.min(this.nextSnapshotAt, this.pos.seq + 1);
  }

  /** The current state. Mutated in place by commits; replaced by a reader's full reload. */
  get state(): S {
    return this.pos.state;
  }

  /** The seq of the last applied record (0 for an empty journal). */
  get seq(): number {
    return this.pos.seq;
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
      await this.segment.close();
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
    if (this.closed) throw storeClosedError(this.dir);
    if (this.broken !== undefined) throw storeBrokenError(this.dir, this.broken);
  }

  private assertWritable(): void {
    this.assertOpen();
    if (!this.lease) throw readOnlyError(this.dir);
    if (this.lost || this.mode !== 'writer') throw leaseLostError(this.dir);
  }

  private async doCommit(records: readonly R[]): Promise<void> {
    this.assertWritable();
    const lease = this.lease!;
    if (records.length === 0) return;
    try {
      await lease.assertLeader();
    } catch (e) {
      if (isNotLeader(e)) this.lost = true;
      throw e;
    }

    const first = this.pos.seq + 1;
    const last = this.pos.seq + records.length;
    const { parsed, buf } = encodeCommit(this.codec, records, first, lease.epoch);

    let applied = 0;
    try {
      for (const r of parsed) {
        this.codec.apply(this.pos.state, r);
        applied++;
      }
    } catch (e) {
      // apply() leaves the state unchanged for the record that throws, so only earlier records of
      // this commit need undoing, and the only general undo is to rebuild from disk.
      if (applied > 0) await this.rebuild();
      throw e;
    }

    try {
      await this.segment.append(buf);
    } catch (e) {
      // The segment took back what it could of the write; recovery in rebuild() cuts off the rest.
      await this.rebuild();
      throw e;
    }
    this.pos.seq = last;
    this.pos.appliedEpochs.set(lease.epoch, last);

    // The records are durable, but count only if nobody took over before they landed.
    try {
      await lease.assertLeader();
    } catch (e) {
      // An I/O error reading the lease says nothing about who leads: report it as it is.
      if (!isNotLeader(e)) throw e;
      this.lost = true;
      const verdict = await fenceVerdict(this.dir, this.segment.name, last);
      await this.becomeReader();
      if (verdict !== 'kept') throw lostDuringCommitError(this.dir, e, verdict, first, last);
    }

    if (this.pos.seq >= this.nextSnapshotAt && !this.snapshotRunning) {
      // After this commit resolves, before the next one: the snapshot's serialisation must see
      // the state at one seq exactly.
      void this.enqueue(() => {
        if (this.closed || this.lost || this.snapshotRunning || this.pos.seq < this.nextSnapshotAt)
          return Promise.resolve();
        return this.captureSnapshot(false).then(() => undefined);
      }).catch((e: unknown) =>
        this.warn(`Could not start a snapshot of ${this.dir}: ${message(e)}. The journal still holds every record.`),
      );
    }
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
  private startSegment(): Promise<void> {
    return this.segment.roll(this.pos.seq + 1, this.lease!.epoch);
  }

  private async becomeReader(): Promise<void> {
    this.mode = 'reader';
    await this.segment.close();
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
    const seq = this.pos.seq;
    if (force ? seq === this.snapshotSeqOnDisk : seq < this.nextSnapshotAt) return undefined;
    const body = await snapshotBody(this.codec, this.pos.state, this.dir, snapshotName(seq, this.lease!.epoch));
    // A failure is retried after another full interval, not at every commit.
    this.nextSnapshotAt = seq + this.snapshotEvery;
    if (this.segment.start !== seq + 1) await this.startSegment();
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

  private async writeSnapshot(seq: number, body: SnapshotBody): Promise<void> {
    const lease = this.lease!;
    // Let the commit that triggered this resolve before the checksum pass over the whole state.
    await nextTurn();
    await writeSnapshotFile(this.dir, seq, lease, body);
    this.snapshotSeqOnDisk = Math.max(this.snapshotSeqOnDisk, seq);
    await cleanupAfterSnapshot(this.dir, lease, () => this.segment.name);
  }

  // -------------------------------------------------------------------------------------------
  // Recovery and reading.

  /** Bound, so that the parts in other files can warn through it. */
  private readonly warn = (text: string): void => {
    if (this.warned.has(text)) return;
    this.warned.add(text);
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(text);
  };

  private async doRefresh(): Promise<boolean> {
    this.assertOpen();
    if (this.mode === 'writer') {
      if (!this.lost) return false;
      await this.becomeReader();
      return true;
    }
    const step = await followStep(this.dir, this.pos);
    if (step.kind === 'idle') return false;
    if (step.kind === 'reload') {
      await this.load('reader');
      return true;
    }
    try {
      const changed = await this.advance(step.layout, 'reader');
      reportDamage(this.damage, this.dir, this.warn);
      return changed;
    } catch (e) {
      if (!(e instanceof ReplayRestart) && !isEnoent(e)) throw e;
      await this.load('reader');
      return true;
    }
  }

  private async load(mode: StoreMode): Promise<void> {
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

  private async listLayout(mode: StoreMode): Promise<Layout> {
    try {
      return await readLayout(this.dir);
    } catch (e) {
      // A reader of a pipeline that never wrote its state sees an empty one; it creates nothing.
      if (isEnoent(e) && mode === 'reader') return EMPTY_LAYOUT;
      throw fsProblem(e, this.dir, 'the state directory');
    }
  }

  private async loadOnce(mode: StoreMode): Promise<void> {
    const layout = await this.listLayout(mode);
    this.layoutAtLoad = layout;
    const epoch = this.lease?.epoch ?? 0;
    if (mode === 'writer' && layout.maxEpoch > epoch) {
      this.lost = true;
      throw newerLeaderError(this.dir, layout.maxEpoch, epoch);
    }

    const moveFiles = mode === 'writer' && !this.repairing;
    const found = await loadBaseSnapshot(layout, { dir: this.dir, codec: this.codec, moveFiles, warn: this.warn });
    this.staleSnapshots = found.stale;
    this.damagedSnapshots = found.damaged.filter((d) => !d.movedTo).map((d) => d.name);
    const base = found.base;
    this.pos = {
      state: base?.state ?? this.codec.initial(),
      seq: base?.seq ?? 0,
      cursor: undefined,
      cursorSeenSize: 0,
      appliedEpochs: new Map(base ? [[base.epoch, base.seq]] : []),
    };
    this.snapshotSeqOnDisk = base?.seq ?? 0;
    this.damage = new JournalDamage();
    await this.advance(layout, mode);
    const dmg = this.damage;
    await assertRecovered(this.dir, layout, found, this.pos.seq, dmg, this.warn);
    if (mode === 'writer' && !this.repairing) {
      if (dmg.hasLoss) throw lossError(dmg, this.dir);
      await autoRepair(this.repairContext());
    } else reportDamage(dmg, this.dir, this.warn);
  }

  /** Writes the recovered state as a snapshot at the current seq (synced), so damaged files can go. */
  private async writeRepairSnapshot(): Promise<string> {
    const lease = this.lease!;
    const name = snapshotName(this.pos.seq, lease.epoch);
    const body = await snapshotBody(this.codec, this.pos.state, this.dir, name);
    await writeSnapshotFile(this.dir, this.pos.seq, lease, body);
    this.snapshotSeqOnDisk = Math.max(this.snapshotSeqOnDisk, this.pos.seq);
    return name;
  }

  private repairContext(): RepairContext {
    return { dir: this.dir, damage: this.damage, writeSnapshot: () => this.writeRepairSnapshot(), warn: this.warn };
  }

  /** Replays the journal from the position on (see journalReplay.ts); true when the state changed. */
  private advance(layout: Layout, mode: StoreMode): Promise<boolean> {
    const ctx = { dir: this.dir, codec: this.codec, damage: this.damage, replaySkip: this.replaySkip, warn: this.warn };
    return replayJournal(this.pos, ctx, layout, mode);
  }
}
