import { link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PipelineError } from '../errors';
import { Emitter, type Event } from '../model/events';
import { errnoCode, exists, fsyncDir, isEnoent, isTempName, tempNameFor, unlinkQuiet } from './fsUtil';

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
 * records once a higher one took over (see storeFiles.ts).
 */

export interface LeaderInfo {
  pid: number;
  host: string;
  epoch: number;
  since: string;
  renewedAt: string;
  label: string;
}

export interface LeaseOptions {
  /** Shown to other processes that find the pipeline led (for example "VS Code window" or "pipeline run"). */
  label?: string;
  /** How long a heartbeat stays valid; another process may take over after it. Default 15 s. */
  leaseMs?: number;
  /** How often the holder renews its heartbeat. Default a third of `leaseMs`. */
  renewMs?: number;
}

/** What the lease files hold: the public info plus what others need to judge expiry. */
interface LeaseRecord extends LeaderInfo {
  leaseMs: number;
  released?: boolean;
}

const DEFAULT_LEASE_MS = 15_000;
/** Older epochs' files kept for inspection; see `cleanup` for why deletion must go oldest first. */
const KEEP_EPOCHS = 4;
/** Temp files older than this are orphans of a crash (a live claim takes milliseconds). */
const ORPHAN_TEMP_MS = 60_000;

const EPOCH_RE = /^epoch-(\d+)\.json$/;
const RENEW_RE = /^renew-(\d+)\.json$/;

function epochFile(n: number): string {
  return `epoch-${String(n).padStart(10, '0')}.json`;
}
function renewFile(n: number): string {
  return `renew-${String(n).padStart(10, '0')}.json`;
}

function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return errnoCode(e) === 'EPERM';
  }
}

function parseRecord(text: string): LeaseRecord | undefined {
  try {
    const v = JSON.parse(text) as Partial<LeaseRecord> | null;
    if (
      !v ||
      typeof v.pid !== 'number' ||
      typeof v.host !== 'string' ||
      typeof v.epoch !== 'number' ||
      typeof v.renewedAt !== 'string'
    )
      return undefined;
    return {
      pid: v.pid,
      host: v.host,
      epoch: v.epoch,
      since: typeof v.since === 'string' ? v.since : v.renewedAt,
      renewedAt: v.renewedAt,
      label: typeof v.label === 'string' ? v.label : '',
      leaseMs: typeof v.leaseMs === 'number' && v.leaseMs > 0 ? v.leaseMs : DEFAULT_LEASE_MS,
      released: v.released === true,
    };
  } catch {
    return undefined;
  }
}

function publicInfo(r: LeaseRecord): LeaderInfo {
  return { pid: r.pid, host: r.host, epoch: r.epoch, since: r.since, renewedAt: r.renewedAt, label: r.label };
}

/** The highest claimed epoch and its holder's latest heartbeat, or null when none was ever claimed. */
async function readTop(leaderDir: string): Promise<LeaseRecord | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let names: string[];
    try {
      names = await readdir(leaderDir);
    } catch (e) {
      if (isEnoent(e)) return null;
      throw e;
    }
    let top = 0;
    for (const n of names) {
      const m = EPOCH_RE.exec(n);
      if (m) top = Math.max(top, Number(m[1]));
    }
    if (top === 0) return null;
    let claim: LeaseRecord | undefined;
    let mtime: Date;
    try {
      const [text, st] = await Promise.all([
        readFile(join(leaderDir, epochFile(top)), 'utf8'),
        stat(join(leaderDir, epochFile(top))),
      ]);
      claim = parseRecord(text);
      mtime = st.mtime;
    } catch (e) {
      // Only a person deletes the top epoch file; look again.
      if (isEnoent(e)) continue;
      throw e;
    }
    // An unreadable claim (a disk fault, or a file system without hard links where the claim is
    // written in place) counts as a holder we know nothing about, alive until its file is old.
    const base: LeaseRecord = claim ?? {
      pid: 0,
      host: '',
      epoch: top,
      since: mtime.toISOString(),
      renewedAt: mtime.toISOString(),
      label: 'unknown (unreadable lease file)',
      leaseMs: DEFAULT_LEASE_MS,
    };
    let beat: LeaseRecord | undefined;
    try {
      beat = parseRecord(await readFile(join(leaderDir, renewFile(top)), 'utf8'));
    } catch (e) {
      if (!isEnoent(e)) throw e;
    }
    if (beat && beat.epoch === top && beat.pid === base.pid) {
      return {
        ...base,
        renewedAt: Date.parse(beat.renewedAt) > Date.parse(base.renewedAt) ? beat.renewedAt : base.renewedAt,
        released: beat.released === true,
      };
    }
    return { ...base, epoch: top };
  }
  throw new PipelineError('busy', 'The leader lease files keep changing under this process.', {
    file: leaderDir,
    fix: 'Try again; if it persists, check that nothing else rewrites this directory.',
  });
}

function holderAlive(r: LeaseRecord, now = Date.now()): boolean {
  if (r.released) return false;
  if (r.host === hostname() && r.pid > 0 && !pidAlive(r.pid)) return false;
  const renewed = Date.parse(r.renewedAt);
  return Number.isFinite(renewed) && renewed + r.leaseMs >= now;
}

/** Creates `path` with `content` only if it does not exist; false when it does. */
async function createExclusive(leaderDir: string, path: string, content: string): Promise<boolean> {
  const tmp = tempNameFor(path);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
    // No hard links here: O_EXCL still gives one winner; a reader may briefly see the file empty,
    // which readTop treats as a live holder of unknown identity.
    try {
      const out = await open(path, 'wx');
      try {
        await out.writeFile(content);
        await out.sync();
      } finally {
        await out.close();
      }
      return true;
    } catch (e2) {
      if (errnoCode(e2) === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    await unlinkQuiet(tmp);
    await fsyncDir(leaderDir);
  }
}

export class LeaderLease {
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
      };
      // Losing this race means someone else claimed the epoch first: look again at who it is.
      if (!(await createExclusive(leaderDir, join(leaderDir, epochFile(epoch)), JSON.stringify(record)))) continue;
      const lease = new LeaderLease(leaderDir, record, renewMs);
      lease.startRenewing();
      await lease.cleanup();
      return lease;
    }
    throw new PipelineError('busy', 'Could not claim the leader lease: other processes keep claiming it.', {
      file: leaderDir,
      fix: 'Try again in a moment.',
    });
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
    await this.cleanup();
  }

  /** Gives the lease up so another process can take over at once. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopRenewing();
    if (!this.lost && !(await exists(join(this.leaderDir, epochFile(this.epoch + 1))))) {
      await this.writeHeartbeat({ ...this.record, renewedAt: new Date().toISOString(), released: true });
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
      await this.writeHeartbeat(next);
      this.record = next;
    } catch {
      // Lost leadership fired onLost in assertLeader; an I/O error is retried at the next tick, and
      // if it persists the heartbeat expires and another process takes over, which is safe.
    } finally {
      this.renewing = false;
    }
  }

  /**
   * Replaces the heartbeat atomically. Not fsynced: after a machine crash the holder is dead anyway,
   * and an older heartbeat only lets the next leader take over sooner.
   */
  private async writeHeartbeat(r: LeaseRecord): Promise<void> {
    const path = join(this.leaderDir, renewFile(this.epoch));
    const tmp = tempNameFor(path);
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(JSON.stringify(r));
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, path);
    } catch (e) {
      await unlinkQuiet(tmp);
      throw e;
    }
  }

  /**
   * Deletes the files of epochs older than KEEP_EPOCHS below ours, oldest first. The order matters
   * to assertLeader: if epoch n+1's file is gone, epoch n's went first, so a paused holder of n
   * still finds out it lost.
   */
  private async cleanup(): Promise<void> {
    const names = await readdir(this.leaderDir);
    const old: { n: number; name: string }[] = [];
    for (const name of names) {
      const m = EPOCH_RE.exec(name) ?? RENEW_RE.exec(name);
      if (m && Number(m[1]) < this.epoch - KEEP_EPOCHS) old.push({ n: Number(m[1]), name });
    }
    old.sort((a, b) => a.n - b.n || (a.name.startsWith('epoch') ? 1 : -1));
    for (const f of old) await unlinkQuiet(join(this.leaderDir, f.name));
    const now = Date.now();
    for (const name of names) {
      if (!isTempName(name)) continue;
      try {
        const st = await stat(join(this.leaderDir, name));
        if (now - st.mtimeMs > ORPHAN_TEMP_MS) await unlink(join(this.leaderDir, name));
      } catch (e) {
        if (!isEnoent(e)) throw e;
      }
    }
  }
}
