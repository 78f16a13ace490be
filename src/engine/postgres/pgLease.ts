import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { PipelineError } from '../errors';
import { Emitter, type Event } from '../model/events';
import type { LeaderInfo, LeasePort, LeaseSource } from '../ports/statePort';
import type { PgDatabase, Sql } from './pgDatabase';

/**
 * One leader per pipeline in PostgreSQL: the row `pipeline.leader` (id 1) holds the epoch, who
 * holds it and until when (`expires_at`, on the database's clock, so machines whose clocks differ
 * agree on expiry).
 *
 * - Taking the lease is one transaction: the row is locked (`FOR UPDATE`), and if its holder
 *   released it, let it expire, or died on this machine (its pid is gone, see `holds`), the epoch
 *   goes up by one and the row names the new holder. Two
 *   processes racing are serialised by the row lock: the second sees the first one's live claim.
 * - The holder renews by heartbeat (`expires_at` moved on), only while the row still holds its
 *   epoch and token; finding another epoch there means it lost, and `onLost` fires.
 * - Every commit of the store locks the row `FOR SHARE` and checks the epoch inside its own
 *   transaction (postgresStore.ts), so a takeover (which needs the row exclusively) either waits
 *   for that commit or makes it fail: a paused ex-leader's late write is refused, never applied.
 */

export interface PgLeaseOptions {
  /**
   * Held for one change only (`LeaderInfo.oneChange`): recorded in the row, so that a process that
   * means to lead waits for the holder to let go rather than giving up.
   */
  oneChange?: boolean;
  /** How long a heartbeat stays valid; another process may take over after it. Default 15 s. */
  leaseMs?: number;
  /** How often the holder renews. Default a third of `leaseMs`. */
  renewMs?: number;
}

const DEFAULT_LEASE_MS = 15_000;

interface LeaderRow {
  epoch: string;
  token: string;
  pid: number;
  host: string;
  label: string;
  since: Date;
  renewed_at: Date;
  one_change: boolean;
  place: string;
  alive: boolean;
}

const ROW = `epoch, token, pid, host, label, since, renewed_at, one_change, place, (NOT released AND expires_at > now()) AS alive`;

function infoOf(r: LeaderRow): LeaderInfo {
  return {
    pid: r.pid,
    host: r.host,
    epoch: Number(r.epoch),
    since: r.since.toISOString(),
    renewedAt: r.renewed_at.toISOString(),
    label: r.label,
    ...(r.one_change ? { oneChange: true } : {}),
  };
}

/**
 * Where a pid names one process: the kernel's boot (a reboot reuses pids) and the pid namespace (a
 * container has its own pids), on Linux; '' elsewhere, where a holder's pid is never judged.
 */
function readPlace(): string {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = readlinkSync('/proc/self/ns/pid');
    return boot && ns ? `${boot} ${ns}` : '';
  } catch {
    return '';
  }
}

let place: string | undefined;
/** This process's place (readPlace), read once. */
export function processPlace(): string {
  return (place ??= readPlace());
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the row's holder still holds: not released, not expired, and, when it ran in this
 * process's place, its process still exists. A holder killed with -9 (or crashed) thus lets the
 * next process of the same machine lead at once, as the file lease does, rather than after the
 * lease; a holder elsewhere is judged by its heartbeat alone.
 */
function holds(r: LeaderRow): boolean {
  if (!r.alive) return false;
  const here = r.place !== '' && r.place === processPlace();
  return !(here && r.pid > 0 && r.pid !== process.pid && !pidAlive(r.pid));
}

async function readLeader(sql: Sql, lock = ''): Promise<LeaderRow> {
  const r = await sql.query<LeaderRow>(`SELECT ${ROW} FROM pipeline.leader WHERE id = 1 ${lock}`);
  const row = r.rows[0];
  if (!row) throw new Error('pipeline.leader has no row: the database was not migrated by `pipeline db migrate`.');
  return row;
}

export class PgLeaderLease implements LeasePort {
  private readonly lostEmitter = new Emitter<LeaderInfo | null>();
  readonly onLost: Event<LeaderInfo | null> = this.lostEmitter.event;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;
  private lost = false;
  private released = false;

  private constructor(
    private readonly db: PgDatabase,
    private record: LeaderInfo,
    /** A random id of this holding, so that even a reused epoch number could not be mistaken for ours. */
    readonly token: string,
    private readonly leaseMs: number,
    private readonly renewMs: number,
  ) {}

  get epoch(): number {
    return this.record.epoch;
  }

  get info(): LeaderInfo {
    return { ...this.record };
  }

  /** Claims the lease, taking over from a holder that released it or let it expire, or says who holds it. */
  static async acquire(
    db: PgDatabase,
    label: string,
    opts: PgLeaseOptions = {},
  ): Promise<PgLeaderLease | { leader: LeaderInfo }> {
    const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    const renewMs = opts.renewMs ?? Math.max(1, Math.floor(leaseMs / 3));
    if (!(leaseMs > 0) || !(renewMs > 0) || renewMs >= leaseMs) {
      throw new PipelineError('usage', `Invalid lease timing: leaseMs ${leaseMs}, renewMs ${renewMs}.`, {
        where: 'PgLeaderLease.acquire',
        fix: 'Use a positive leaseMs and a renewMs below it.',
      });
    }
    const token = randomUUID();
    const got = await db.transaction(async (sql) => {
      const top = await readLeader(sql, 'FOR UPDATE');
      if (holds(top)) return { leader: infoOf(top) };
      const r = await sql.query<LeaderRow>(
        `UPDATE pipeline.leader
            SET epoch = epoch + 1, token = $1, pid = $2, host = $3, label = $4, since = now(), renewed_at = now(),
                expires_at = now() + $5 * interval '1 millisecond', released = false, one_change = $6,
                place = $7
          WHERE id = 1
      RETURNING ${ROW}`,
        [token, process.pid, hostname(), label, leaseMs, opts.oneChange === true, processPlace()],
      );
      return infoOf(r.rows[0]!);
    });
    if ('leader' in got) return got;
    const lease = new PgLeaderLease(db, got, token, leaseMs, renewMs);
    lease.startRenewing();
    return lease;
  }

  /** Who leads now, or null when nobody does (never claimed, released or expired). */
  static async current(db: PgDatabase): Promise<LeaderInfo | null> {
    const top = await readLeader(db);
    return holds(top) ? infoOf(top) : null;
  }

  /**
   * The fencing check before a side effect the store's transactions cannot fence (a git mutation,
   * an agent start): one query. Throws `not-leader` when another epoch holds the row. While the
   * database does not answer (a restart) it waits, for at most the lease's length: past that,
   * another process may have taken over once the database is back, so it fails (code `database`).
   */
  async assertLeader(): Promise<void> {
    if (this.released) throw this.notLeader('This process released the leader lease.', null);
    if (!this.lost) {
      const top = await this.db.retrying('checking the leader lease', this.leaseMs, () => readLeader(this.db));
      if (Number(top.epoch) !== this.epoch || top.token !== this.token) this.markLost(infoOf(top));
    }
    if (this.lost) {
      const top = await readLeader(this.db).catch(() => null);
      throw this.notLeader(
        `This process (epoch ${this.epoch}) no longer leads the pipeline.`,
        top ? infoOf(top) : null,
      );
    }
  }

  /** True once this holder knows it lost the lease. */
  get isLost(): boolean {
    return this.lost || this.released;
  }

  /** Called by the store when a commit's transaction found another epoch in the row. */
  markLost(by: LeaderInfo | null): void {
    if (this.lost) return;
    this.lost = true;
    this.stopRenewing();
    this.lostEmitter.fire(by && by.epoch !== this.epoch ? by : null);
  }

  /** The error a fenced holder gets, naming who took over. */
  notLeader(text: string, by: LeaderInfo | null): PipelineError {
    const who =
      by && by.epoch !== this.epoch
        ? ` Epoch ${by.epoch} (pid ${by.pid} on ${by.host}${by.label ? `, ${by.label}` : ''}) took over.`
        : '';
    return new PipelineError('not-leader', `${text}${who}`, {
      where: `${this.db.where}, table pipeline.leader`,
      fix: 'Stop writing: reopen the state as a reader, or acquire the lease again once the other leader is gone.',
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopRenewing();
    if (!this.lost) {
      // If the database is down, the lease simply expires.
      await this.db
        .query(
          `UPDATE pipeline.leader SET released = true, expires_at = now() WHERE id = 1 AND epoch = $1 AND token = $2`,
          [this.epoch, this.token],
        )
        .catch(() => undefined);
    }
    this.lostEmitter.dispose();
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
      const r = await this.db.query<{ renewed_at: Date }>(
        `UPDATE pipeline.leader SET renewed_at = now(), expires_at = now() + $3 * interval '1 millisecond'
          WHERE id = 1 AND epoch = $1 AND token = $2 AND NOT released
      RETURNING renewed_at`,
        [this.epoch, this.token, this.leaseMs],
      );
      const row = r.rows[0];
      if (row) this.record = { ...this.record, renewedAt: row.renewed_at.toISOString() };
      else {
        const top = await readLeader(this.db);
        this.markLost(infoOf(top));
      }
    } catch {
      // The database is away: try again at the next tick. If it stays away past the lease, another
      // process may take over once it is back, and the epoch check fences this one then.
    } finally {
      this.renewing = false;
    }
  }
}

/** The PostgreSQL lease as a lease source. */
export function pgLeaseSource(db: PgDatabase, opts: PgLeaseOptions = {}): LeaseSource<PgLeaderLease> {
  return {
    acquire: (label, o) => PgLeaderLease.acquire(db, label, { ...opts, ...(o?.oneChange ? { oneChange: true } : {}) }),
    current: () => PgLeaderLease.current(db),
  };
}
