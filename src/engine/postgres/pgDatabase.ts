import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { unreachableError } from './pgErrors';

/**
 * One PostgreSQL database as the pipeline uses it: a small pool of connections for queries and
 * transactions, which errors mean "the server is not there right now" (worth waiting for) and which
 * mean a real failure, and a retry that waits for the server within a bound. Connections are made
 * lazily, so creating one costs nothing and a stopped server is noticed at the first query.
 */

/** What runs SQL: a pooled client inside a transaction, or the pool itself. */
export interface Sql {
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<T>>;
}

export interface PgDatabaseOptions {
  /** Where the URL came from, for messages (for example "the environment variable PIPELINE_DATABASE_URL"). */
  source?: string;
  /** How long making a connection may take before it counts as failed; default 5 s. */
  connectTimeoutMs?: number;
  /** How long one query may take before the client gives up on it; default 30 s. */
  queryTimeoutMs?: number;
  /** Connections in the pool; default 4 (the store's commits, the lease's heartbeat, loads). */
  max?: number;
  /**
   * How long the server lets a session sit idle inside a transaction before it ends the session;
   * default 5 s. A process frozen mid-commit (SIGSTOP, a suspended laptop) holds the leader row's
   * lock; this is what frees it, so that another process can take over after the lease.
   */
  idleInTransactionMs?: number;
}

/**
 * SQLSTATEs of a server going away or not yet ready (class 08, the shutdown and startup codes of
 * class 57), of a session it ended for idling in a transaction (25P03), and of a lost race between
 * transactions (40001, 40P01): the same work may succeed when tried again.
 */
const TRANSIENT_STATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01', '25P03']);
const TRANSIENT_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
const TRANSIENT_MESSAGES = [
  /Connection terminated/i,
  /connection error/i,
  /timeout expired/i,
  /Query read timeout/i,
  /not queryable/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /terminating connection/i,
];

/**
 * True when `e` says the server is unreachable or went away (or a transaction lost a serialisation
 * race): the same work may succeed when tried again once the server is back.
 */
export function isTransient(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || TRANSIENT_STATES.has(code) || TRANSIENT_ERRNOS.has(code)) return true;
  }
  // AggregateError: every address of a host refused.
  if (e instanceof AggregateError && e.errors.some(isTransient)) return true;
  return TRANSIENT_MESSAGES.some((re) => re.test(e.message));
}

/** `host:port/database` of a connection URL, never its password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const host = u.hostname || u.searchParams.get('host') || 'localhost';
    return `${host}:${u.port || '5432'}/${decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default database)'}`;
  } catch {
    return '(an unparsable URL)';
  }
}

export class PgDatabase implements Sql {
  readonly pool: pg.Pool;
  /** "PostgreSQL at host:port/database": how messages name this database. */
  readonly where: string;
  readonly source: string;
  private closed = false;

  constructor(
    readonly url: string,
    opts: PgDatabaseOptions = {},
  ) {
    this.where = `PostgreSQL at ${describeUrl(url)}`;
    this.source = opts.source ?? 'the connection URL';
    this.pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 4,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      query_timeout: opts.queryTimeoutMs ?? 30_000,
      idleTimeoutMillis: 10_000,
      keepAlive: true,
      idle_in_transaction_session_timeout: opts.idleInTransactionMs ?? 5_000,
      // An idle pool must not keep a CLI process alive once its work is done.
      allowExitOnIdle: true,
    });
    // An idle connection the server closed (a restart) is dropped by the pool; without a listener
    // the error would crash the process.
    this.pool.on('error', () => undefined);
  }

  query<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<T>> {
    return this.pool.query<T>(text, values);
  }

  /**
   * Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it
   * throws. A connection that failed is destroyed, not returned to the pool.
   */
  async transaction<T>(fn: (sql: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // An error on an idle checked-out client (the server went away between queries) is reported on
    // the next query; this listener only keeps it from crashing the process.
    const onError = (e: Error) => (broken = e);
    client.on('error', onError);
    try {
      await client.query(begin);
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      broken ??= isTransient(e) ? (e as Error) : undefined;
      if (!broken) await client.query('ROLLBACK').catch((r: Error) => (broken = r));
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken ?? false);
    }
  }

  /**
   * Runs `fn`, and again while it fails with a transient error (the server is down or restarting),
   * until `boundMs` have passed; then throws an error that names the database, what was being done
   * and the fix. `onWait` is told once when the waiting starts.
   */
  async retrying<T>(what: string, boundMs: number, fn: () => Promise<T>, onWait?: (e: unknown) => void): Promise<T> {
    const deadline = Date.now() + boundMs;
    let delay = 50;
    let told = false;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!isTransient(e) || this.closed) throw e;
        if (Date.now() + delay > deadline) throw unreachableError(this, what, e, boundMs);
        if (!told) onWait?.(e);
        told = true;
        await sleep(delay);
        delay = Math.min(delay * 2, 1_000);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
