import { isEnoent } from './fsUtil';
import { lossError, reportDamage } from './damageReport';
import { JournalDamage } from './journalDamage';
import { replayJournal } from './journalReplay';
import { ReplayRestart, type ReplayPosition, type StoreMode } from './replayPosition';
import type { LeaderLease } from './leaderLease';
import { followStep } from './readerFollow';
import { assertRecovered, loadBaseSnapshot } from './snapshotRecovery';
import { snapshotBody, writeSnapshotFile } from './snapshotWriter';
import type { StoreCodec } from './storeCodec';
import { fsProblem, newerLeaderError } from './storeErrors';
import { EMPTY_LAYOUT, readLayout, snapshotName, type Layout } from './storeFiles';
import { autoRepair, type RepairContext, type RepairFindings } from './storeRepair';

/**
 * Where the store's state comes from: `load` recovers it from the newest good snapshot plus every
 * later journal record that can still be placed (journalReplay.ts), and `follow` moves a reader on
 * as the leader writes (readerFollow.ts). It holds the position replay reached and what the last
 * load found on disk, which the leader's repairs (storeRepair.ts) work on. The store (stateStore.ts)
 * owns one and runs it inside its queue, one operation at a time.
 */

export interface StateLoaderOptions<S, R> {
  readonly dir: string;
  readonly codec: StoreCodec<S, R>;
  /** Present for a writer: its epoch fences older files, and repairs write snapshots under it. */
  readonly lease: LeaderLease | undefined;
  readonly warn: (text: string) => void;
  /** A writer's load found files of a newer leader: this process no longer leads. */
  readonly lostLead: () => void;
}

export class StateLoader<S, R> {
  /** The state, its seq, and where reading resumes; replay moves it on (journalReplay.ts). */
  pos: ReplayPosition<S>;
  /** What the last recovery found damaged, lost or not applied (see journalDamage.ts). */
  damage = new JournalDamage();
  /** The seq of the newest snapshot known to be durable: set by a load, moved on by every snapshot written. */
  snapshotSeqOnDisk = 0;
  /** The files the last load listed. */
  layoutAtLoad: Layout = EMPTY_LAYOUT;
  /** `StateStore.repair` loads as the writer without refusing damage or moving anything yet. */
  repairing = false;
  /** Commits that applied in part at replay, by first seq, with why: left out when replay starts again. */
  private replaySkip = new Map<number, string>();
  /** Snapshots the last load found written by a replaced leader, or damaged and left in place. */
  private staleSnapshots: string[] = [];
  private damagedSnapshots: string[] = [];

  constructor(private readonly opts: StateLoaderOptions<S, R>) {
    this.pos = { state: opts.codec.initial(), seq: 0, cursor: undefined, cursorSeenSize: 0, appliedEpochs: new Map() };
  }

  /** Loads the state from disk afresh, starting again when a commit must be left out or a listed file went. */
  async load(mode: StoreMode): Promise<void> {
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

  /** A reader catches up with what the leader wrote since the last look; true when the state changed. */
  async follow(): Promise<boolean> {
    const step = await followStep(this.opts.dir, this.pos);
    if (step.kind === 'idle') return false;
    if (step.kind === 'reload') {
      await this.load('reader');
      return true;
    }
    try {
      const changed = await this.advance(step.layout, 'reader');
      reportDamage(this.damage, this.opts.dir, this.opts.warn);
      return changed;
    } catch (e) {
      if (!(e instanceof ReplayRestart) && !isEnoent(e)) throw e;
      await this.load('reader');
      return true;
    }
  }

  async listLayout(mode: StoreMode): Promise<Layout> {
    try {
      return await readLayout(this.opts.dir);
    } catch (e) {
      // A reader of a pipeline that never wrote its state sees an empty one; it creates nothing.
      if (isEnoent(e) && mode === 'reader') return EMPTY_LAYOUT;
      throw fsProblem(e, this.opts.dir, 'the state directory');
    }
  }

  /** What the last load found besides the damage, for `repairNow`. */
  findings(): RepairFindings {
    return {
      seq: this.pos.seq,
      segments: this.layoutAtLoad.segments,
      damagedSnapshots: this.damagedSnapshots,
      staleSnapshots: this.staleSnapshots,
    };
  }

  repairContext(): RepairContext {
    const { dir, warn } = this.opts;
    return { dir, damage: this.damage, writeSnapshot: () => this.writeRepairSnapshot(), warn };
  }

  private async loadOnce(mode: StoreMode): Promise<void> {
    const { dir, codec, warn } = this.opts;
    const layout = await this.listLayout(mode);
    this.layoutAtLoad = layout;
    const epoch = this.opts.lease?.epoch ?? 0;
    if (mode === 'writer' && layout.maxEpoch > epoch) {
      this.opts.lostLead();
      throw newerLeaderError(dir, layout.maxEpoch, epoch);
    }

    const moveFiles = mode === 'writer' && !this.repairing;
    const found = await loadBaseSnapshot(layout, { dir, codec, moveFiles, warn });
    this.staleSnapshots = found.stale;
    this.damagedSnapshots = found.damaged.filter((d) => !d.movedTo).map((d) => d.name);
    const base = found.base;
    this.pos = {
      state: base?.state ?? codec.initial(),
      seq: base?.seq ?? 0,
      cursor: undefined,
      cursorSeenSize: 0,
      appliedEpochs: new Map(base ? [[base.epoch, base.seq]] : []),
    };
    this.snapshotSeqOnDisk = base?.seq ?? 0;
    this.damage = new JournalDamage();
    await this.advance(layout, mode);
    const dmg = this.damage;
    await assertRecovered(dir, layout, found, this.pos.seq, dmg, warn);
    if (mode === 'writer' && !this.repairing) {
      if (dmg.hasLoss) throw lossError(dmg, dir);
      await autoRepair(this.repairContext());
    } else reportDamage(dmg, dir, warn);
  }

  /** Writes the recovered state as a snapshot at the current seq (synced), so damaged files can go. */
  private async writeRepairSnapshot(): Promise<string> {
    const lease = this.opts.lease!;
    const name = snapshotName(this.pos.seq, lease.epoch);
    const body = await snapshotBody(this.opts.codec, this.pos.state, this.opts.dir, name);
    await writeSnapshotFile(this.opts.dir, this.pos.seq, lease, body);
    this.snapshotSeqOnDisk = Math.max(this.snapshotSeqOnDisk, this.pos.seq);
    return name;
  }

  /** Replays the journal from the position on (see journalReplay.ts); true when the state changed. */
  private advance(layout: Layout, mode: StoreMode): Promise<boolean> {
    const { dir, codec, warn } = this.opts;
    return replayJournal(
      this.pos,
      { dir, codec, damage: this.damage, replaySkip: this.replaySkip, warn },
      layout,
      mode,
    );
  }
}
