// src/engine/postgres/ — the state store in PostgreSQL, for a pipeline shared between machines: the store
// (this file), its tables (stateTables.ts, the pipeline's in pipelineTables.ts), the leader lease row with
// its fencing epoch (pgLease.ts), versioned migrations (schemaMigrations.ts, migrations/), connections and
// their errors (pgDatabase.ts, pgErrors.ts), LISTEN/NOTIFY (pgListener.ts), and the pipeline's backend on
// all of it (pgBackend.ts, loaded only when the config names PostgreSQL). Main file: this one. It imports
// the `pg` driver, ../errors, ../ports, the model (the pipeline's tables and codec) and, in pgBackend.ts,
// ../stateBackend; never vscode, never the file store (only its codec interface, ../store/storeCodec.ts).
import { isPipelineError, PipelineError } from '../errors';
import { Emitter, type Disposable, type Event } from '../model/events';
import type { StatePort } from '../ports/statePort';
import type { StoreCodec } from '../store/storeCodec';
import { isTransient, type PgDatabase, type Sql } from './pgDatabase';
import { invalidTablesError, message, notAcknowledged, seqMismatchError } from './pgErrors';
import type { PgLeaderLease } from './pgLease';
import { PgListener } from './pgListener';
import { assertMigrated } from './schemaMigrations';
import type { TableProjection } from './stateTables';

/**
 * The state store in PostgreSQL, behind the same port as the file journal (ports/statePort.ts).
 *
 * - Every commit is ONE transaction: it locks the leader row `FOR SHARE` and checks that the epoch
 *   there is still this writer's (a takeover needs that row exclusively, so it waits for the commit
 *   or the commit sees the new epoch and writes nothing), checks that the head is at the seq this
 *   writer continues from, appends the records to `state_records` (seq, epoch, record), updates
 *   the tables the records touch (tasks, agents, attempts, history, the head), and NOTIFYs readers.
 *   It resolves only after COMMIT returned: acknowledged means durable in the database.
 * - Records are validated by the codec and applied in memory before the transaction; if anything
 *   fails, the state is reloaded from the tables, so nothing is ever half applied.
 * - When the server goes away (a restart, a network cut), a commit waits and retries for up to
 *   `retryMs`, then fails with an error naming the database and the fix. If the connection broke
 *   during COMMIT, the retry finds out whether the first try landed (the head is already at its
 *   last seq, with this epoch) instead of writing it twice.
 * - A reader loads the tables in one snapshot, then follows the record log from its seq; a
 *   NOTIFY makes it refresh at once (`onDidChange`), and the caller's polling is the backstop.
 */

export interface PgStoreOptions<S, R> {
  db: PgDatabase;
  codec: StoreCodec<S, R>;
  tables: TableProjection<S, R>;
  /** Present: this store writes, fenced by the lease's epoch. Absent: a read-only reader. */
  lease?: PgLeaderLease;
  /** How long a commit (or a reload) waits for the server to come back before it fails; default 30 s. */
  retryMs?: number;
  /** How long opening waits for the server; default 5 s (a command should say soon that it is down). */
  openRetryMs?: number;
  /** A reader LISTENs for commits (default true); notifications fire `onDidChange`. */
  listen?: boolean;
}

/** The NOTIFY channel of commits; the payload is the seq committed. */
export const STATE_CHANNEL = 'pipeline_state';
const MAX_WARNINGS = 200;
/** Records a reader reads per refresh before it prefers reloading the tables. */
const FOLLOW_LIMIT = 2_000;
/** How long undoing a failed commit waits for the server before leaving the reload to the next operation. */
const UNDO_RETRY_MS = 2_000;

type Pos<S> = { state: S; seq: number };

export class PgStateStore<S, R> implements StatePort<S, R> {
  readonly warnings: string[] = [];
  private readonly changed = new Emitter<void>();
  readonly onDidChange: Event<void> = this.changed.event;

  private readonly db: PgDatabase;
  private readonly codec: StoreCodec<S, R>;
  private readonly tables: TableProjection<S, R>;
  private readonly lease: PgLeaderLease | undefined;
  private readonly retryMs: number;
  /** How long opening and following wait for the server: a command should say soon that it is down. */
  private readonly openRetryMs: number;
  private pos: Pos<S>;
  private mode: 'writer' | 'reader';
  private closed = false;
  private closing: Promise<void> | undefined;
  /** The lease was lost: no more writes; the next refresh reloads as a reader. */
  private lost = false;
  /** The state in memory may be ahead of the tables (a failed commit whose reload failed too): reload first. */
  private stale = false;
  private leaseSub: Disposable | undefined;
  private listener: PgListener | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly warned = new Set<string>();

  private constructor(opts: PgStoreOptions<S, R>) {
    this.db = opts.db;
    this.codec = opts.codec;
    this.tables = opts.tables;
    this.lease = opts.lease;
    this.retryMs = opts.retryMs ?? 30_000;
    this.openRetryMs = opts.openRetryMs ?? 5_000;
    this.mode = opts.lease ? 'writer' : 'reader';
    this.pos = { state: opts.codec.initial(), seq: 0 };
  }

  /** Opens the store on a migrated database; with a lease it becomes the writer. */
  static async open<S, R>(opts: PgStoreOptions<S, R>): Promise<PgStateStore<S, R>> {
    const store = new PgStateStore(opts);
    const bound = store.openRetryMs;
    await opts.db.retrying('opening the pipeline state', bound, () => assertMigrated(opts.db));
    if (store.lease) {
      const lease = store.lease;
      await opts.db.retrying('checking the leader lease', bound, () => lease.assertLeader());
      store.leaseSub = lease.onLost(() => {
        store.lost = true;
      });
    }
    await opts.db.retrying('reading the pipeline state', bound, () => store.load());
    if (!store.lease && opts.listen !== false) {
      store.listener = await PgListener.start(opts.db.url, STATE_CHANNEL, () => store.changed.fire());
    }
    return store;
  }

  get state(): S {
    return this.pos.state;
  }

  get seq(): number {
    return this.pos.seq;
  }

  commit(records: readonly R[]): Promise<void> {
    return this.enqueue(() => this.doCommit(records));
  }

  refresh(): Promise<boolean> {
    return this.enqueue(() => this.doRefresh());
  }

  /** The tables are the state and always current: there is nothing to snapshot. */
  snapshotNow(): Promise<void> {
    return this.enqueue(() => {
      this.assertWritable();
      return Promise.resolve();
    });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.enqueue(() => {
        this.closed = true;
        return Promise.resolve();
      });
      await this.listener?.close();
      this.leaseSub?.dispose();
      this.changed.dispose();
    })();
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private warn(text: string): void {
    if (this.warned.has(text)) return;
    this.warned.add(text);
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(text);
  }

  private assertOpen(): void {
    if (this.closed)
      throw new PipelineError('usage', 'The state store is closed.', {
        where: this.db.where,
        fix: 'Open it again with PgStateStore.open.',
      });
  }

  private assertWritable(): void {
    this.assertOpen();
    const lease = this.lease;
    if (!lease)
      throw new PipelineError('not-leader', 'This state store was opened read-only (without the leader lease).', {
        where: this.db.where,
        fix: 'Acquire the lease and open the store with it.',
      });
    if (this.lost || this.mode !== 'writer' || lease.isLost)
      throw lease.notLeader('This process lost the leader lease; it can no longer write the state.', null);
  }

  private async doCommit(records: readonly R[]): Promise<void> {
    this.assertWritable();
    if (records.length === 0) return;
    if (this.stale) {
      const before = this.pos.seq;
      await this.reload(this.retryMs, 'reading the state again after a failed commit');
      if (this.pos.seq !== before) throw this.landedAfterAll(before);
    }
    const lease = this.lease!;

    // The same validation as the journal: every record survives a round trip through JSON and the codec.
    const parsed: R[] = [];
    const json: unknown[] = [];
    records.forEach((r, i) => {
      const text = JSON.stringify(r);
      if (text === undefined)
        throw new PipelineError('invalid-state', `Record ${i} of the commit cannot be serialised.`, {
          where: `records[${i}]`,
        });
      const value: unknown = JSON.parse(text);
      parsed.push(this.codec.parseRecord(value));
      json.push(value);
    });

    const first = this.pos.seq + 1;
    const last = this.pos.seq + parsed.length;
    const plan = this.tables.plan(this.pos.state, parsed);
    let applied = 0;
    try {
      for (const r of parsed) {
        this.codec.apply(this.pos.state, r);
        applied++;
      }
    } catch (e) {
      // apply() leaves the state unchanged for the record that throws; the plan undoes earlier ones.
      if (applied > 0) plan.undo(this.pos.state);
      throw e;
    }

    const write = (sql: Sql) => this.writeOnce(sql, plan.write.bind(plan), json, first, last, lease);
    try {
      await this.db.retrying(
        `committing records ${first}–${last}`,
        this.retryMs,
        () => this.db.transaction(write),
        (e) => this.warn(`${this.db.where} went away during a commit (${message(e)}); waiting for it to come back.`),
      );
    } catch (e) {
      plan.undo(this.pos.state);
      await this.afterFailedWrite(e);
      throw isPipelineError(e) && e.code === 'database' ? notAcknowledged(e) : e;
    }
    this.pos.seq = last;
  }

  /**
   * One try of a commit's transaction. Returns normally when the records are in the tables: written
   * now, or by an earlier try whose COMMIT landed although its answer was lost.
   */
  private async writeOnce(
    sql: Sql,
    writeTables: (sql: Sql, state: S, seq: number) => Promise<void>,
    json: unknown[],
    first: number,
    last: number,
    lease: PgLeaderLease,
  ): Promise<void> {
    // One round trip: the leader row locked against a takeover, the head locked against any other
    // writer, and what both hold.
    const locked = await sql.query<{ epoch: string; token: string; seq: string }>(
      `SELECT l.epoch, l.token, h.seq FROM pipeline.leader l, pipeline.state_head h
        WHERE l.id = 1 AND h.id = 1 FOR SHARE OF l FOR UPDATE OF h`,
    );
    const row = locked.rows[0];
    if (!row || Number(row.epoch) !== lease.epoch || row.token !== lease.token) {
      const by = await sql
        .query<{ epoch: string; pid: number; host: string; label: string; since: Date; renewed_at: Date }>(
          'SELECT epoch, pid, host, label, since, renewed_at FROM pipeline.leader WHERE id = 1',
        )
        .then((r) => r.rows[0])
        .catch(() => undefined);
      const info = by
        ? {
            epoch: Number(by.epoch),
            pid: by.pid,
            host: by.host,
            label: by.label,
            since: by.since.toISOString(),
            renewedAt: by.renewed_at.toISOString(),
          }
        : null;
      this.lost = true;
      lease.markLost(info);
      throw lease.notLeader(
        `This process (epoch ${lease.epoch}) no longer leads the pipeline: records ${first}–${last} were not written.`,
        info,
      );
    }
    const headSeq = Number(row.seq);
    if (headSeq === last) {
      const mine = await sql.query('SELECT 1 FROM pipeline.state_records WHERE seq = $1 AND epoch = $2', [
        first,
        lease.epoch,
      ]);
      if (mine.rowCount) return;
    }
    if (headSeq !== first - 1) throw seqMismatchError(this.db, first - 1, headSeq);
    await writeTables(sql, this.pos.state, last);
    // The records, the head's new seq and the notification, in one statement.
    await sql.query(
      `WITH recs AS (
         INSERT INTO pipeline.state_records (seq, epoch, record)
         SELECT $1::bigint + t.ord - 1, $2, t.r FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS t(r, ord)
       ), head AS (
         UPDATE pipeline.state_head SET seq = $4, epoch = $2, updated_at = now() WHERE id = 1
       )
       SELECT pg_notify($5, $4::text)`,
      [first, lease.epoch, JSON.stringify(json), last, STATE_CHANNEL],
    );
  }

  /**
   * After a commit's transaction failed (its records already undone in memory): a writer that lost
   * its lease follows the tables from now on; a commit cut off by the server going away may have
   * landed after all (the answer to COMMIT was lost), so the tables are read again, now if the
   * server answers, else before the next operation.
   */
  private async afterFailedWrite(e: unknown): Promise<void> {
    if (this.lost) this.mode = 'reader';
    if (!this.lost && !isTransient(e) && !isPipelineError(e)) return;
    const before = this.pos.seq;
    try {
      // Briefly: a commit that waited its whole bound for the server should not wait as long again.
      await this.reload(Math.min(this.retryMs, UNDO_RETRY_MS), 'reading the state again after a failed commit');
      // The commit landed although its answer was lost: whoever keeps views of the state rebuilds them.
      if (this.pos.seq !== before) this.changed.fire();
    } catch (r) {
      this.stale = true;
      this.warn(
        `After a failed commit, the state could not be read again from ${this.db.where} (${message(r)}); it is read before the next change.`,
      );
    }
  }

  /**
   * A commit whose answer was lost landed after all (the tables are past `before`): the change
   * being made now was computed on the state without it, so it is refused, and holders of views of
   * the state are told to rebuild them.
   */
  private landedAfterAll(before: number): PipelineError {
    this.changed.fire();
    return new PipelineError(
      'database',
      `An earlier change reached ${this.db.where} after all (the state is at record ${this.pos.seq}, not ${before}); this change was made against the state without it and was not applied.`,
      {
        where: this.db.source,
        fix: 'Check the state with `pipeline status` and make the change again if it still applies.',
      },
    );
  }

  private async reload(boundMs: number, what: string): Promise<void> {
    await this.db.retrying(what, boundMs, () => this.load());
  }

  /** Reads the tables in one snapshot of the database. */
  private async load(): Promise<void> {
    const got = await this.db.transaction(async (sql) => {
      const head = await sql.query<{ seq: string }>('SELECT seq FROM pipeline.state_head WHERE id = 1');
      const json = await this.tables.load(sql);
      return { seq: Number(head.rows[0]?.seq ?? 0), json };
    }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let state: S;
    try {
      state = got.json === undefined ? this.codec.initial() : this.codec.parseSnapshot(got.json, this.db.where);
    } catch (e) {
      throw invalidTablesError(this.db, e);
    }
    this.pos = { state, seq: got.seq };
    this.stale = false;
  }

  private async doRefresh(): Promise<boolean> {
    this.assertOpen();
    const what = 'following the pipeline state';
    if (this.mode === 'writer') {
      if (this.lost || this.lease?.isLost) {
        this.lost = true;
        this.mode = 'reader';
        await this.reload(this.openRetryMs, what);
        return true;
      }
      if (!this.stale) return false;
      const before = this.pos.seq;
      await this.reload(this.openRetryMs, what);
      return this.pos.seq !== before;
    }
    if (this.stale) {
      await this.reload(this.openRetryMs, what);
      return true;
    }
    const r = await this.db.retrying(what, this.openRetryMs, () =>
      this.db.query<{ seq: string; record: unknown }>(
        'SELECT seq, record FROM pipeline.state_records WHERE seq > $1 ORDER BY seq LIMIT $2',
        [this.pos.seq, FOLLOW_LIMIT],
      ),
    );
    if (r.rows.length === 0) return false;
    if (Number(r.rows[0]!.seq) !== this.pos.seq + 1 || r.rows.length === FOLLOW_LIMIT) {
      await this.reload(this.openRetryMs, what);
      return true;
    }
    for (const row of r.rows) {
      try {
        this.codec.apply(this.pos.state, this.codec.parseRecord(row.record));
        this.pos.seq = Number(row.seq);
      } catch (e) {
        // The writer applied it, so the tables are right and the record is not: read the tables.
        this.warn(
          `Record ${row.seq} in ${this.db.where} could not be followed (${message(e)}); the state was reloaded.`,
        );
        await this.reload(this.openRetryMs, what);
        return true;
      }
    }
    return true;
  }
}
