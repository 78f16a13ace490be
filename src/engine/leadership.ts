import type { PipelineHome } from './home/pipelineHome';
import { InboxServer } from './inbox';
import type { Disposable } from './model/events';
import { PipelineError } from './errors';
import { isLease, type LeaderInfo, type LeasePort, type LeaseSource } from './ports/statePort';

/**
 * Who this process is to its pipeline, made explicit. Exactly one process leads a pipeline at a
 * time (a lease with a fencing epoch: store/leaderLease.ts, or postgres/pgLease.ts):
 *
 * - `leading`: this process holds the lease, writes the journal and serves the inbox (changes other
 *   processes forward). When the lease is lost (another process took over after it lapsed), it
 *   becomes a follower and says so ('leader:lost').
 * - `following`: this process reads the state, re-reading it on a heartbeat; with `takeOver`, it
 *   takes the lead when the leader's lease lapses.
 *
 * The pipeline owns the state store; every change of role reopens it (as the writer under the
 * lease, or as a reader) through the host's `reopenStore`.
 */
export type Role =
  | { kind: 'leading'; lease: LeasePort; inbox: InboxServer; lostSubscription: Disposable }
  | { kind: 'following'; leader: LeaderInfo | null; heartbeat: NodeJS.Timeout | undefined };

export interface LeadershipHost {
  readonly home: PipelineHome;
  /** Where leases of this pipeline are taken (the lease files, or the database's leader row). */
  readonly leases: LeaseSource;
  /** Reopens the state store: the writer under `lease`, or a reader when null. */
  reopenStore(lease: LeasePort | null): Promise<void>;
  /** A follower's re-read of the state. */
  refresh(): Promise<void>;
  /** Runs a request forwarded by another process (the inbox's handler). */
  dispatch(method: string, args: unknown[]): Promise<unknown>;
  /** This process lost the lead to `leader` (null: unknown). */
  lost(leader: LeaderInfo | null): void;
  /** This process took the lead. */
  acquired(leader: LeaderInfo): void;
  /** Something the inbox handled that a person should know (an unreadable request moved aside). */
  warn(message: string): void;
}

export interface LeadershipOptions {
  label: string;
  takeOver: boolean;
  followIntervalMs: number;
}

export class Leadership {
  private role: Role;
  private closed = false;
  private heartbeatBusy = false;
  /** The heartbeat under way, if any: `close` waits for it. Never rejects. */
  private heartbeatRun: Promise<void> | undefined;

  constructor(
    private readonly host: LeadershipHost,
    private readonly options: LeadershipOptions,
    initial: LeasePort | { leader: LeaderInfo | null },
  ) {
    this.role = isLease(initial)
      ? { kind: 'leading', lease: initial, inbox: this.newInbox(), lostSubscription: this.watchLoss(initial) }
      : { kind: 'following', leader: initial.leader, heartbeat: undefined };
  }

  /** Starts serving the inbox (leading) or the heartbeat (following). */
  async start(): Promise<void> {
    if (this.role.kind === 'leading') await this.role.inbox.start();
    else this.startHeartbeat();
  }

  get isLeader(): boolean {
    return this.role.kind === 'leading';
  }

  /** Who leads: this process's lease when it leads, else the other leader as last seen. */
  get leader(): LeaderInfo | null {
    return this.role.kind === 'leading' ? this.role.lease.info : this.role.leader;
  }

  /** Throws `not-leader` unless this process still holds the lease, as seen on disk now. */
  async fence(): Promise<void> {
    if (this.role.kind !== 'leading') throw notLeaderError(this.role.leader);
    await this.role.lease.assertLeader();
  }

  /** The lease, for the store's writer; null when following. */
  get lease(): LeasePort | null {
    return this.role.kind === 'leading' ? this.role.lease : null;
  }

  /** Takes the lead now; throws `not-leader` naming the process that leads instead. */
  async lead(): Promise<void> {
    if (this.role.kind === 'leading') return;
    const lease = await this.tryAcquire();
    if (!lease) throw notLeaderError(this.leader);
    await this.promote(lease);
    this.host.acquired(lease.info);
  }

  /** Gives up the lead (if held) and follows read-only from now on. */
  async follow(): Promise<void> {
    if (this.role.kind === 'leading') await this.demote(null, true);
  }

  /**
   * Runs `fn` as the leader when nobody leads, under a lease taken for just this change, then gives
   * it back. Null when another process leads (the change must be forwarded to it).
   */
  async whileNobodyLeads<T>(fn: () => Promise<T>): Promise<{ result: T } | null> {
    if (await this.host.leases.current()) return null;
    const lease = await this.tryAcquire(true);
    if (!lease) return null;
    await this.promote(lease);
    try {
      return { result: await fn() };
    } finally {
      // Serve the changes other processes queued behind this short lead before letting go.
      if (this.role.kind === 'leading') await this.role.inbox.drain();
      await this.demote(null, true);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.role.kind === 'following' && this.role.heartbeat) clearInterval(this.role.heartbeat);
    // A heartbeat under way may be taking the lead: let it end, so that a lead it took is given
    // back (or closed below) rather than left running after the pipeline closed.
    await this.heartbeatRun;
    const role = this.role;
    if (role.kind === 'leading') {
      // Answer what other processes queued behind this leader before letting go.
      await role.inbox.drain();
      role.inbox.dispose();
      role.lostSubscription.dispose();
    } else if (role.heartbeat) clearInterval(role.heartbeat);
  }

  /** Releases the lease after the store is closed. */
  async release(): Promise<void> {
    if (this.role.kind === 'leading') await this.role.lease.release();
    this.role = { kind: 'following', leader: null, heartbeat: undefined };
  }

  private newInbox(): InboxServer {
    const inbox = new InboxServer(this.host.home.inboxDir, (method, args) => this.host.dispatch(method, args));
    // Disposed with the inbox (its emitter), so no subscription outlives it.
    inbox.onWarning((message) => this.host.warn(message));
    return inbox;
  }

  private watchLoss(lease: LeasePort): Disposable {
    return lease.onLost((leader) => void this.onLost(leader));
  }

  private async onLost(leader: LeaderInfo | null): Promise<void> {
    if (this.closed || this.role.kind !== 'leading') return;
    await this.demote(leader, false);
    this.host.lost(leader);
  }

  /** Leading → following: the store is reopened read-only and the heartbeat starts. */
  private async demote(leader: LeaderInfo | null, release: boolean): Promise<void> {
    if (this.role.kind !== 'leading') return;
    const { lease, inbox, lostSubscription } = this.role;
    inbox.dispose();
    lostSubscription.dispose();
    this.role = { kind: 'following', leader, heartbeat: undefined };
    if (release) {
      // The journal is closed before the lease is given up, so no write can follow the release.
      await this.host.reopenStore(null);
      await lease.release();
    } else await this.host.reopenStore(null);
    this.startHeartbeat();
  }

  /** Following → leading with a lease just acquired: the store is reopened as the writer. */
  private async promote(lease: LeasePort): Promise<void> {
    if (this.role.kind !== 'following') return;
    if (this.role.heartbeat) clearInterval(this.role.heartbeat);
    this.role.heartbeat = undefined;
    try {
      await this.host.reopenStore(lease);
    } catch (e) {
      await lease.release();
      this.startHeartbeat();
      throw e;
    }
    this.role = { kind: 'leading', lease, inbox: this.newInbox(), lostSubscription: this.watchLoss(lease) };
    await this.role.inbox.start();
  }

  private async tryAcquire(oneChange = false): Promise<LeasePort | null> {
    const r = await this.host.leases.acquire(this.options.label, oneChange ? { oneChange } : undefined);
    if (isLease(r)) return r;
    if (this.role.kind === 'following') this.role.leader = r.leader;
    return null;
  }

  private startHeartbeat(): void {
    if (this.role.kind !== 'following' || this.role.heartbeat || this.closed) return;
    this.role.heartbeat = setInterval(() => void this.heartbeat(), this.options.followIntervalMs);
    this.role.heartbeat.unref();
  }

  /** A follower's heartbeat: catch up with the leader's writes, and take over a lapsed lease. */
  private heartbeat(): Promise<void> {
    if (this.heartbeatBusy || this.closed || this.role.kind !== 'following') return Promise.resolve();
    this.heartbeatRun = this.heartbeatOnce();
    return this.heartbeatRun;
  }

  private async heartbeatOnce(): Promise<void> {
    this.heartbeatBusy = true;
    try {
      await this.host.refresh();
      const leader = await this.host.leases.current();
      if (this.role.kind === 'following') this.role.leader = leader;
      if (this.options.takeOver && !leader && !this.closed) {
        const lease = await this.tryAcquire();
        if (lease && this.closed) {
          await lease.release();
          return;
        }
        if (lease) {
          await this.promote(lease);
          this.host.acquired(lease.info);
        }
      }
    } catch {
      // A failed heartbeat is retried on the next one; the follower keeps its last good state.
    } finally {
      this.heartbeatBusy = false;
    }
  }
}

export function notLeaderError(leader: LeaderInfo | null): PipelineError {
  return new PipelineError(
    'not-leader',
    leader
      ? `This pipeline is led by ${leader.label} (pid ${leader.pid} on ${leader.host}, since ${leader.since}).`
      : 'This process does not lead the pipeline.',
    {
      fix: 'Run the command where the pipeline is led, stop the leading process, or use read-only commands (status, task list).',
    },
  );
}
