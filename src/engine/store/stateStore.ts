// src/engine/store/ — durable state: the checksummed journal, snapshots, recovery and salvage, the leader
// lease with its fencing epochs. Main file: this one. It imports only ../errors, the model's events and the
// state port it implements; it knows nothing of tasks beyond the codec it is given.
import { mkdir } from 'node:fs/promises';
import { PipelineError } from '../errors';
import type { Disposable } from '../model/events';
import type { JournalDamage } from './journalDamage';
import { encodeCommit, fenceVerdict, JournalWriter } from './journalWriter';
import type { StoreMode } from './replayPosition';
import type { StatePort } from '../ports/statePort';
import type { LeaderLease } from './leaderLease';
import { SnapshotSchedule } from './snapshotSchedule';
import { sweepTemps } from './snapshotWriter';
import { StateLoader } from './stateLoader';
import type { StoreCodec } from './storeCodec';
import {
  fsProblem,
  isNotLeader,
  leaseLostError,
  lostDuringCommitError,
  message,
  readOnlyError,
  storeBrokenError,
  storeClosedError,
} from './storeErrors';
import { repairNow, type RepairReport } from './storeRepair';

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
 * files of their own: loading and following in stateLoader.ts, which replays the journal with
 * journalReplay.ts (a reader's follow in readerFollow.ts) from the starting snapshot of
 * snapshotRecovery.ts; when to take a snapshot in snapshotSchedule.ts, writing it in
 * snapshotWriter.ts; damage reports in damageReport.ts and repairs in storeRepair.ts.
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

export class StateStore<S, R> implements StatePort<S, R> {
  /** Human-readable notes of what recovery moved aside, cut off or ignored: the file, the place and what to do. */
  readonly warnings: string[] = [];

  private readonly dir: string;
  private readonly codec: StoreCodec<S, R>;
  private readonly snapshotEvery: number;
  private readonly lease: LeaderLease | undefined;

  /** Loads the state and follows the journal; holds the position replay reached (stateLoader.ts). */
  private readonly loader: StateLoader<S, R>;
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

  // Writing.
  private readonly segment: JournalWriter;
  /** When the next snapshot is due, and the one being written (snapshotSchedule.ts). */
  private readonly snapshots: SnapshotSchedule<S, R>;

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
    this.loader = new StateLoader({
      dir: opts.dir,
      codec: opts.codec,
      lease: opts.lease,
      warn: this.warn,
      lostLead: () => {
        this.lost = true;
      },
    });
    this.snapshots = new SnapshotSchedule({
      dir: opts.dir,
      codec: opts.codec,
      lease: opts.lease,
      loader: this.loader,
      segment: this.segment,
      every: this.snapshotEvery,
      startSegment: () => this.startSegment(),
      warn: this.warn,
    });
  }

  /** Opens (and recovers) the store in `opts.dir`; with a lease it becomes the writer. */
  static async open<S, R>(opts: StoreOpenOptions<S, R>): Promise<StateStore<S, R>> {
    const store = new StateStore(opts);
    if (store.lease) {
      await store.becomeWriter();
      await store.loader.load('writer');
      await store.startSegment();
      store.leaseSub = store.lease.onLost(() => {
        store.lost = true;
      });
      store.snapshots.start();
    } else {
      await store.loader.load('reader');
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
      store.loader.repairing = true;
      await store.loader.load(store.lease ? 'writer' : 'reader');
      return await repairNow(store.loader.repairContext(), store.loader.findings(), !opts.dryRun);
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
    const layout = await this.loader.listLayout('writer');
    if (layout.maxEpoch >= lease.epoch) await lease.raiseAbove(layout.maxEpoch);
    await sweepTemps(this.dir);
  }

  /** The current state. Mutated in place by commits; replaced by a reader's full reload. */
  get state(): S {
    return this.loader.pos.state;
  }

  /** The seq of the last applied record (0 for an empty journal). */
  get seq(): number {
    return this.loader.pos.seq;
  }

  /** What the last recovery found damaged, lost or not applied (see journalDamage.ts). */
  get damage(): JournalDamage {
    return this.loader.damage;
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
      if (this.snapshots.running) await this.snapshots.running.catch(() => undefined);
      const started = await this.enqueue<{ task: Promise<void> } | 'busy' | undefined>(() => {
        this.assertWritable();
        return this.snapshots.running ? Promise.resolve('busy') : this.snapshots.capture(true);
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
      if (this.snapshots.running) await this.snapshots.running.catch(() => undefined);
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

    const first = this.loader.pos.seq + 1;
    const last = this.loader.pos.seq + records.length;
    const { parsed, buf } = encodeCommit(this.codec, records, first, lease.epoch);

    let applied = 0;
    try {
      for (const r of parsed) {
        this.codec.apply(this.loader.pos.state, r);
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
    this.loader.pos.seq = last;
    this.loader.pos.appliedEpochs.set(lease.epoch, last);

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

    if (this.snapshots.due && !this.snapshots.running) {
      // After this commit resolves, before the next one: the snapshot's serialisation must see
      // the state at one seq exactly.
      void this.enqueue(() => {
        if (this.closed || this.lost || this.snapshots.running || !this.snapshots.due) return Promise.resolve();
        return this.snapshots.capture(false).then(() => undefined);
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
      await this.loader.load('writer');
      await this.startSegment();
    } catch (e) {
      this.broken = e;
      throw e;
    }
  }

  /** Opens (creating if needed) this epoch's segment starting at the next seq. */
  private startSegment(): Promise<void> {
    return this.segment.roll(this.loader.pos.seq + 1, this.lease!.epoch);
  }

  private async becomeReader(): Promise<void> {
    this.mode = 'reader';
    await this.segment.close();
    try {
      await this.loader.load('reader');
    } catch (e) {
      this.warn(
        `After losing the leader lease, reloading ${this.dir} failed: ${message(e)}. The state shown may be out of date.`,
      );
    }
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
    return this.loader.follow();
  }
}
