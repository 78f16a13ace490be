import { link, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PipelineError } from '../errors';
import type { LeaderInfo } from '../ports/statePort';
import { errnoCode, fsyncDir, isEnoent, isTempName, tempNameFor, unlinkQuiet } from './fsUtil';

/**
 * The leader lease's files in `<dir>/leader/` and how they are read and written: the claim of an
 * epoch (created whole, exactly once), the holder's heartbeat, who holds the highest epoch and
 * whether that holder is still alive, and the cleanup of older epochs. The rules they serve are in
 * leaderLease.ts.
 */

/** Who leads a pipeline, as other processes see it (the lease port's type). */
export type { LeaderInfo };

/** What the lease files hold: the public info plus what others need to judge expiry. */
export interface LeaseRecord extends LeaderInfo {
  leaseMs: number;
  released?: boolean;
}

export const DEFAULT_LEASE_MS = 15_000;
/** Older epochs' files kept for inspection; see `cleanupLeaseFiles` for why deletion must go oldest first. */
const KEEP_EPOCHS = 4;
/** Temp files older than this are orphans of a crash (a live claim takes milliseconds). */
const ORPHAN_TEMP_MS = 60_000;

const EPOCH_RE = /^epoch-(\d+)\.json$/;
const RENEW_RE = /^renew-(\d+)\.json$/;

export function epochFile(n: number): string {
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
      ...(v.oneChange === true ? { oneChange: true } : {}),
    };
  } catch {
    return undefined;
  }
}

export function publicInfo(r: LeaseRecord): LeaderInfo {
  const info: LeaderInfo = {
    pid: r.pid,
    host: r.host,
    epoch: r.epoch,
    since: r.since,
    renewedAt: r.renewedAt,
    label: r.label,
  };
  if (r.oneChange) info.oneChange = true;
  return info;
}

/** The highest claimed epoch and its holder's latest heartbeat, or null when none was ever claimed. */
export async function readTop(leaderDir: string): Promise<LeaseRecord | null> {
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

export function holderAlive(r: LeaseRecord, now = Date.now()): boolean {
  if (r.released) return false;
  if (r.host === hostname() && r.pid > 0 && !pidAlive(r.pid)) return false;
  const renewed = Date.parse(r.renewedAt);
  return Number.isFinite(renewed) && renewed + r.leaseMs >= now;
}

/** Creates `path` (it must not exist) with `content`, synced before it is closed. */
async function writeNewSynced(path: string, content: string): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates `path` with `content` only if it does not exist; false when it does. */
export async function createExclusive(leaderDir: string, path: string, content: string): Promise<boolean> {
  const tmp = tempNameFor(path);
  await writeNewSynced(tmp, content);
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
      await writeNewSynced(path, content);
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

/**
 * Replaces the heartbeat atomically. Not fsynced: after a machine crash the holder is dead anyway,
 * and an older heartbeat only lets the next leader take over sooner.
 */
export async function writeHeartbeat(leaderDir: string, epoch: number, r: LeaseRecord): Promise<void> {
  const path = join(leaderDir, renewFile(epoch));
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
 * to `LeaderLease.assertLeader`: if epoch n+1's file is gone, epoch n's went first, so a paused holder of n
 * still finds out it lost.
 */
export async function cleanupLeaseFiles(leaderDir: string, epoch: number): Promise<void> {
  const names = await readdir(leaderDir);
  const old: { n: number; name: string }[] = [];
  for (const name of names) {
    const m = EPOCH_RE.exec(name) ?? RENEW_RE.exec(name);
    if (m && Number(m[1]) < epoch - KEEP_EPOCHS) old.push({ n: Number(m[1]), name });
  }
  old.sort((a, b) => a.n - b.n || (a.name.startsWith('epoch') ? 1 : -1));
  for (const f of old) await unlinkQuiet(join(leaderDir, f.name));
  const now = Date.now();
  for (const name of names) {
    if (!isTempName(name)) continue;
    try {
      const st = await stat(join(leaderDir, name));
      if (now - st.mtimeMs > ORPHAN_TEMP_MS) await unlink(join(leaderDir, name));
    } catch (e) {
      if (!isEnoent(e)) throw e;
    }
  }
}
