import type { Event } from '../model/events';

/**
 * What the pipeline needs from a state store and from the leader lease that fences it, as narrow
 * ports. Two adapters implement them: the file journal (store/stateStore.ts with
 * store/leaderLease.ts, the embedded default) and PostgreSQL (postgres/postgresStore.ts with
 * postgres/pgLease.ts, for a pipeline shared between machines). Both pass the one conformance
 * suite in test/engine/ports/statePort.conformance.ts.
 */

/** Who leads a pipeline, as other processes see it. */
export interface LeaderInfo {
  pid: number;
  host: string;
  epoch: number;
  since: string;
  renewedAt: string;
  label: string;
  /**
   * Held for one change only (a `task add` while nobody leads, leadership.ts): let go within moments,
   * so a process that means to lead waits for it rather than giving up (oneChangeLead.ts). Both
   * leases record it: the file lease in its epoch file, the PostgreSQL lease in its row.
   */
  oneChange?: boolean;
}

/**
 * A state kept durably: the state in memory, the seq of its last record, and commits of records.
 * Opened as the writer (under a lease) or as a read-only reader that follows the writer.
 */
export interface StatePort<S, R> {
  /** The current state. Mutated in place by commits; replaced by a reader's full reload. */
  readonly state: S;
  /** The seq of the last applied record (0 for a state that never changed). */
  readonly seq: number;
  /** Human-readable notes of what recovery found or what the store had to work around. */
  readonly warnings: readonly string[];
  /**
   * Validates and applies the records as one change and resolves once they are durable: after the
   * promise resolves they survive a crash of this process and of the storage's server. When it
   * rejects, nothing of the change is applied, in memory or durably. A writer whose lease was
   * taken over is refused with a `not-leader` error and writes nothing.
   */
  commit(records: readonly R[]): Promise<void>;
  /**
   * Catches up with what the writer committed since the last look; true when the state changed. A
   * writer's state is already current (false), unless it lost its lease: then it reloads and reads
   * from there on.
   */
  refresh(): Promise<boolean>;
  /** Makes recovery from the current state short (a snapshot); resolves once that is durable. */
  snapshotNow(): Promise<void>;
  /** Waits for queued work, then closes. Does not release the lease. */
  close(): Promise<void>;
  /**
   * A reader: a hint that another process probably committed (a notification from the database):
   * call `refresh`. A writer: its state was read again from storage and may differ from what its
   * commits made it (a commit whose answer was lost landed after all). Absent when the store has no
   * such means; polling `refresh` is always a reader's backstop.
   */
  readonly onDidChange?: Event<void>;
}

/**
 * One leader per pipeline, with a fencing epoch: taken (`LeaseSource.acquire`), renewed by a
 * heartbeat while held, released on close, and lost when another process takes over after it
 * lapsed. Every write of the store checks the epoch, so a holder that was paused past its lease
 * cannot write after the takeover.
 */
export interface LeasePort {
  /** The fencing token: every record this holder writes carries it; higher epochs win. */
  readonly epoch: number;
  readonly info: LeaderInfo;
  /** Fires once when another process took over (with its info when known) or the claim vanished. */
  readonly onLost: Event<LeaderInfo | null>;
  /** The fencing check before a side effect: throws `not-leader` unless this holder still leads. */
  assertLeader(): Promise<void>;
  /** Gives the lease up so another process can take over at once. */
  release(): Promise<void>;
}

/** Where leases of one pipeline are taken and who holds one is asked. */
export interface LeaseSource<L extends LeasePort = LeasePort> {
  /** Claims the lease, taking over from a holder that is gone, or says who holds it. */
  acquire(label: string, opts?: { oneChange?: boolean }): Promise<L | { leader: LeaderInfo }>;
  /** Who leads now, or null when nobody does (never claimed, released or expired). */
  current(): Promise<LeaderInfo | null>;
}

/** True for a lease, false for the answer "someone else leads" that `LeaseSource.acquire` gives. */
export function isLease(x: LeasePort | { leader: LeaderInfo | null }): x is LeasePort {
  return 'assertLeader' in x;
}
