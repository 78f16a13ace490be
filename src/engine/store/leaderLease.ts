import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PipelineError } from '../errors';
import { Emitter, type Event } from '../model/events';
import { untilNoOneChangeLead } from '../oneChangeLead';
import type { LeasePort, LeaseSource } from '../ports/statePort';
import { exists } from './fsUtil';
import {
  cleanupLeaseFiles,
  createExclusive,
  DEFAULT_LEASE_MS,
  epochFile,
  holderAlive,
  publicInfo,
  readTop,
  writeHeartbeat,
  type LeaderInfo,
  type LeaseRecord,
} from './leaseFiles';

export type { LeaderInfo } from './leaseFiles';

/**
 * One leader per pipeline directory, with a fencing epoch.
 *
 * Files live in `<dir>/leader/`:
 * - `epoch-<n>.json` claims epoch n. It is created whole and exactly once: the claimant writes a temp
 *   file and hard-links it to the name, and `link` fails with EEXIST when the name exists, so of two
 *   processes racing for epoch n exactly one wins (unlike a stale-lock takeover, where both can
 *   "break" the old lock and both believe they hold it). The file is never rewritten.
 * - `renew-<n>.json` is the holder's heartbeat, replaced atomically (temp + rename) every `renewMs`.
 *
 * Epoch n+1 may be claimed only when epoch n's holder is gone: its heartbeat is older than its
 * `leaseMs`, it released the lease, or it ran on this host and its pid is dead. Whoever holds the
 * highest epoch leads; a holder that sees epoch n+1 exist has lost, fires `onLost` and must stop
 * writing. A holder that was paused (SIGSTOP, a debugger, a suspended laptop) may not notice in
 * time, which is why every journal record carries the epoch and replay ignores a lower epoch's
 * records once a higher one took over (see storeFiles.ts). The files are read and written in
 * leaseFiles.ts.
 */

export interface LeaseOptions {
  /** Shown to other processes that find the pipeline led (for example "VS Code window" or "pipeline run"). */
  label?: string;
  /** How long a heartbeat stays valid; another process may take over after it. Default 15 s. */
  leaseMs?: number;
  /** How often the holder renews its heartbeat. Default a third of `leaseMs`. */
  renewMs?: number;
  /** Claimed for one change only: others that mean to lead wait for it (`untilNoOneChangeLead`). */
  oneChange?: boolean;
}

export class LeaderLease implements LeasePort {
  private readonly lostEmitter = new Emitter<LeaderInfo | null>();
  /** Fires once when another process took over (with its info when readable) or our claim vanished. */
  readonly onLost: Event<LeaderInfo | null> = this.lostEmitter.event;

  private record: LeaseRecord;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;
  private lost = false;
  private released = false;

  private _epoch: number;

  private constructor(
    private readonly leaderDir: string,
    record: LeaseRecord,
    private readonly renewMs: number,
  ) {
    this.record = record;
    this._epoch = record.epoch;
  }

  /** The fencing token: every journal record and snapshot this holder writes carries it. */
  get epoch(): number {
    return this._epoch;
  }

  /**
   * Claims the lease on `dir` (files in `dir/leader/`), or says who holds it. Taking over from a
   * holder that is gone (expired heartbeat, released, dead pid on this host) is part of the claim.
   */
  static async acquire(dir: string, opts: LeaseOptions = {}): Promise<LeaderLease | { leader: LeaderInfo }> {
    const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    const renewMs = opts.renewMs ?? Math.max(1, Math.floor(leaseMs / 3));
    if (!(leaseMs > 0) || !(renewMs > 0) || renewMs >= leaseMs) {
      throw new PipelineError('usage', `Invalid lease timing: leaseMs ${leaseMs}, renewMs ${renewMs}.`, {
        where: 'LeaderLease.acquire',
        fix: 'Use a positive leaseMs and a renewMs below it.',
      });
    }
    const leaderDir = join(dir, 'leader');
    await mkdir(leaderDir, { recursive: true });
    for (let attempt = 0; attempt < 20; attempt++) {
      const top = await readTop(leaderDir);
      if (top && holderAlive(top)) return { leader: publicInfo(top) };
      const epoch = (top?.epoch ?? 0) + 1;
      const now = new Date().toISOString();
      const record: LeaseRecord = {
        pid: process.pid,
        host: hostname(),
        epoch,
        since: now,
        renewedAt: now,
        label: opts.label ?? '',
        leaseMs,
        ...(opts.oneChange ? { oneChange: true } : {}),
      };
      // Losing this race means someone else claimed the epoch first: look again at who it is.
      if (!(await createExclusive(leaderDir, join(leaderDir, epochFile(epoch)), JSON.stringify(record)))) continue;
      const lease = new LeaderLease(leaderDir, record, renewMs);
      lease.startRenewing();
      await cleanupLeaseFiles(leaderDir, lease.epoch);
      return lease;
    }
    throw new PipelineError('busy', 'Could not claim the leader lease: other processes keep claiming it.', {
      file: leaderDir,
      fix: 'Try again in a moment.',
    });
  }

  /**
   * Waits while `dir` is led for one change (a short command's lease, see LeaseOptions.oneChange),
   * for at most `limitMs`: who leads then (null: nobody). `onWait` is told once, when there is a wait.
   * A one-change holder that hangs keeps its lease only until its heartbeat lapses (`leaseMs`).
   */
  static async untilNoOneChangeLead(
    dir: string,
    limitMs: number,
    onWait?: (holder: LeaderInfo) => void,
  ): Promise<LeaderInfo | null> {
    return untilNoOneChangeLead({ current: () => LeaderLease.current(dir) }, limitMs, onWait);
  }

  /** Who leads `dir` now, or null when nobody does (never claimed, released, expired or dead). */
  static async current(dir: string): Promise<LeaderInfo | null> {
    const top = await readTop(join(dir, 'leader'));
    return top && holderAlive(top) ? publicInfo(top) : null;
  }

  get info(): LeaderInfo {
    return publicInfo(this.record);
  }

  /**
   * The fencing check before every write: two stats. Epochs are claimed one after another, so a
   * higher epoch exists exactly when `epoch-<ours+1>` does, unless cleanup already removed it; but
   * cleanup deletes oldest first, so our own file would be gone before it. Throws `not-leader`.
   */
  async assertLeader(): Promise<void> {
    if (this.released) throw this.notLeader('This process released the leader lease.');
    if (!this.lost) {
      const higher = await exists(join(this.leaderDir, epochFile(this.epoch + 1)));
      const own = higher ? true : await exists(join(this.leaderDir, epochFile(this.epoch)));
      if (higher || !own) await this.markLost();
    }
    if (this.lost) {
      const top = await readTop(this.leaderDir).catch(() => null);
      const who =
        top && top.epoch !== this.epoch
          ? ` Epoch ${top.epoch} (pid ${top.pid} on ${top.host}${top.label ? `, ${top.label}` : ''}) took over.`
          : '';
      throw this.notLeader(`This process (epoch ${this.epoch}) no longer leads the pipeline.${who}`);
    }
  }

  /**
   * Moves this holder's epoch above `floor`, an epoch the state already holds: the leader directory
   * was deleted or restored from an old copy, so its epochs start again below what the journal's
   * writers used, and every write would be refused as a stale leader's. The epochs in between are
   * claimed one by one, exactly as takeovers claim them, so the "epoch n + 1 exists" check in
   * `assertLeader` keeps working for every holder; a claim that fails means another process is
   * claiming too, and this one has lost.
   */
  async raiseAbove(floor: number): Promise<void> {
    if (floor < this._epoch) return;
    await this.assertLeader();
    for (let n = this._epoch + 1; n <= floor + 1; n++) {
      const record: LeaseRecord = { ...this.record, epoch: n, renewedAt: new Date().toISOString() };
      if (!(await createExclusive(this.leaderDir, join(this.leaderDir, epochFile(n)), JSON.stringify(record)))) {
        await this.markLost();
        throw this.notLeader(
          `Another process claimed epoch ${n} while this one moved past epoch ${floor}, the highest in the state.`,
        );
      }
      this._epoch = n;
      this.record = record;
    }
    await cleanupLeaseFiles(this.leaderDir, this.epoch);
  }

  /** Gives the lease up so another process can take over at once. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopRenewing();
    if (!this.lost && !(await exists(join(this.leaderDir, epochFile(this.epoch + 1))))) {
      await writeHeartbeat(this.leaderDir, this.epoch, {
        ...this.record,
        renewedAt: new Date().toISOString(),
        released: true,
      });
    }
    this.lostEmitter.dispose();
  }

  private notLeader(message: string): PipelineError {
    return new PipelineError('not-leader', message, {
      file: this.leaderDir,
      fix: 'Stop writing: reopen the state as a reader, or acquire the lease again once the other leader is gone.',
    });
  }

  private async markLost(): Promise<void> {
    if (this.lost) return;
    this.lost = true;
    this.stopRenewing();
    const top = await readTop(this.leaderDir).catch(() => null);
    this.lostEmitter.fire(top && top.epoch !== this.epoch ? publicInfo(top) : null);
  }

  private startRenewing(): void {
    this.timer = setInterval(() => void this.renew(), this.renewMs);
    // A heartbeat must not keep a CLI process alive after its work is done.
    this.timer.unref();
  }

  private stopRenewing(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async renew(): Promise<void> {
    if (this.renewing || this.lost || this.released) return;
    this.renewing = true;
    try {
      await this.assertLeader();
      const next = { ...this.record, renewedAt: new Date().toISOString() };
      await writeHeartbeat(this.leaderDir, this.epoch, next);
      this.record = next;
    } catch {
      // Lost leadership fired onLost in assertLeader; an I/O error is retried at the next tick, and
      // if it persists the heartbeat expires and another process takes over, which is safe.
    } finally {
      this.renewing = false;
    }
  }
}

/** The file lease as a lease source: leases on the pipeline directory `dir` (files in `dir/leader/`). */
export function fileLeaseSource(dir: string, opts: Omit<LeaseOptions, 'label'> = {}): LeaseSource<LeaderLease> {
  return {
    acquire: (label, o) => LeaderLease.acquire(dir, { ...opts, label, ...(o?.oneChange ? { oneChange: true } : {}) }),
    current: () => LeaderLease.current(dir),
  };
}
