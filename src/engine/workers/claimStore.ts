import type { PgDatabase } from '../postgres/pgDatabase';

/**
 * The SQL of claims and workers (tables in postgres/migrations/v002Claims.ts), one function per
 * step, each one statement (so each is atomic on its own). The coordinator offers, expires,
 * cancels and reads outcomes; workers claim, renew and report, each time naming the epoch they
 * hold, so a worker whose claim was taken back writes nothing.
 */

export const CLAIMS_CHANNEL = 'pipeline_claims';

export type ClaimStatus = 'offered' | 'claimed' | 'done' | 'expired' | 'cancelled';

export interface ClaimRow {
  task_id: string;
  attempt: number;
  stage: string;
  role: string;
  agent: string;
  command: string;
  base: string;
  task_file_name: string;
  task_text: string;
  status: ClaimStatus;
  epoch: string;
  worker: string | null;
  output: string;
  final_text: string | null;
  exit_code: number | null;
  exit_signal: string | null;
  start_error: string | null;
  published: string | null;
  note: string | null;
  lease_expires_at: Date | null;
  heartbeat_at: Date | null;
  /** The stage's check, from the coordinator's configuration; null: the stage has none. */
  check_command: string | null;
  check_passed: boolean | null;
  check_code: number | null;
  check_timed_out: boolean | null;
  check_ms: number | null;
  check_output: string | null;
  /** The CLI session the attempt continues (after a usage limit); null: a fresh start. */
  resume_session: string | null;
}

export interface Offer {
  taskId: string;
  attempt: number;
  stage: string;
  role: string;
  agent: string;
  command: string;
  base: string;
  taskFileName: string;
  taskText: string;
  /** The stage's check, which the worker runs in its clone before it publishes; null: none. */
  checkCommand: string | null;
  /** The CLI session the attempt continues, with the CLI's own resume; null: a fresh start. */
  resumeSession: string | null;
}

/** How a stage's check ended on the worker, with its output (the coordinator's evidence). */
export interface ReportedCheck {
  passed: boolean;
  code: number | null;
  timedOut: boolean;
  durationMs: number;
  output: string;
}

/** The outcome a worker reports for its claim. */
export interface Report {
  finalText: string | null;
  exitCode: number | null;
  exitSignal: string | null;
  startError: string | null;
  published: string | null;
  note: string | null;
  /** The stage's check, when the offer had one and the agent's marker said the stage is done. */
  check: ReportedCheck | null;
}

export class ClaimStore {
  constructor(readonly db: PgDatabase) {}

  /**
   * Offers an attempt to the workers, fenced by the coordinator's epoch: nothing is written when
   * another coordinator leads now. An offer of the same attempt again (a restarted coordinator)
   * is a fresh offer. False when fenced out. The NOTIFY is part of the same statement, so it is sent
   * when the offer commits, without a second round trip before workers hear of it.
   */
  async offer(o: Offer, coordinatorEpoch: number): Promise<boolean> {
    const r = await this.db.query(
      `WITH offered AS (INSERT INTO pipeline.claims AS c (task_id, attempt, stage, role, agent, command, base, task_file_name, task_text, coordinator_epoch, status, check_command, resume_session)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'offered', $12, $13
       WHERE EXISTS (SELECT 1 FROM pipeline.leader WHERE epoch = $10 AND NOT released)
       ON CONFLICT (task_id, attempt) DO UPDATE SET
         stage = EXCLUDED.stage, role = EXCLUDED.role, agent = EXCLUDED.agent, command = EXCLUDED.command,
         base = EXCLUDED.base, task_file_name = EXCLUDED.task_file_name, task_text = EXCLUDED.task_text,
         coordinator_epoch = EXCLUDED.coordinator_epoch, status = 'offered', epoch = c.epoch + 1, worker = NULL,
         offered_at = now(), claimed_at = NULL, heartbeat_at = NULL, lease_expires_at = NULL, finished_at = NULL,
         output = '', final_text = NULL, exit_code = NULL, exit_signal = NULL, start_error = NULL, published = NULL, note = NULL,
         check_command = EXCLUDED.check_command, check_passed = NULL, check_code = NULL, check_timed_out = NULL,
         check_ms = NULL, check_output = NULL, resume_session = EXCLUDED.resume_session
       RETURNING 1)
       SELECT pg_notify($11, '') FROM offered`,
      [
        o.taskId,
        o.attempt,
        o.stage,
        o.role,
        o.agent,
        o.command,
        o.base,
        o.taskFileName,
        o.taskText,
        coordinatorEpoch,
        CLAIMS_CHANNEL,
        o.checkCommand,
        o.resumeSession,
      ],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async notify(): Promise<void> {
    await this.db.query(`SELECT pg_notify($1, '')`, [CLAIMS_CHANNEL]);
  }

  /**
   * A worker takes the oldest offer for one of `agents`: the row is locked with SKIP LOCKED, so two
   * workers never take the same one; the claim gets a new epoch and a lease of `leaseMs`.
   */
  async claim(worker: string, agents: readonly string[], leaseMs: number): Promise<ClaimRow | null> {
    if (agents.length === 0) return null;
    const r = await this.db.query<ClaimRow>(
      `UPDATE pipeline.claims c SET status = 'claimed', worker = $1, epoch = c.epoch + 1, claimed_at = now(),
         heartbeat_at = now(), lease_expires_at = now() + make_interval(secs => $3::double precision / 1000)
       WHERE (c.task_id, c.attempt) = (
         SELECT task_id, attempt FROM pipeline.claims
         WHERE status = 'offered' AND agent = ANY($2::text[])
         ORDER BY offered_at, task_id
         LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING c.*`,
      [worker, agents, leaseMs],
    );
    return r.rows[0] ?? null;
  }

  /**
   * Renews a claim held under `epoch` and adds the agent's new output; false when the claim was
   * taken back (expired, cancelled, or claimed again by another worker).
   */
  async renew(taskId: string, attempt: number, epoch: string, leaseMs: number, output = ''): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE pipeline.claims SET heartbeat_at = now(),
         lease_expires_at = now() + make_interval(secs => $4::double precision / 1000), output = output || $5
       WHERE task_id = $1 AND attempt = $2 AND epoch = $3 AND status = 'claimed'`,
      [taskId, attempt, epoch, leaseMs, output],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * The worker's outcome, accepted only under the epoch it holds; false: the late write is refused.
   * Its NOTIFY goes with it, as the offer's does.
   */
  async report(taskId: string, attempt: number, epoch: string, rep: Report, output = ''): Promise<boolean> {
    const r = await this.db.query(
      `WITH reported AS (UPDATE pipeline.claims SET status = 'done', finished_at = now(), final_text = $4, exit_code = $5,
         exit_signal = $6, start_error = $7, published = $8, note = $9, output = output || $10,
         check_passed = $12, check_code = $13, check_timed_out = $14, check_ms = $15, check_output = $16
       WHERE task_id = $1 AND attempt = $2 AND epoch = $3 AND status = 'claimed'
       RETURNING 1)
       SELECT pg_notify($11, '') FROM reported`,
      [
        taskId,
        attempt,
        epoch,
        rep.finalText,
        rep.exitCode,
        rep.exitSignal,
        rep.startError,
        rep.published,
        rep.note,
        output,
        CLAIMS_CHANNEL,
        rep.check?.passed ?? null,
        rep.check?.code ?? null,
        rep.check?.timedOut ?? null,
        rep.check === null ? null : Math.round(rep.check.durationMs),
        rep.check?.output ?? null,
      ],
    );
    return (r.rowCount ?? 0) > 0;
  }

  /** The coordinator takes back claims whose lease ran out (bumping their epoch); returns them. */
  async expire(): Promise<ClaimRow[]> {
    const r = await this.db.query<ClaimRow>(
      `UPDATE pipeline.claims SET status = 'expired', epoch = epoch + 1, finished_at = now(),
         note = 'the lease of ' || worker || ' expired at ' || to_char(lease_expires_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
       WHERE status = 'claimed' AND lease_expires_at < now()
       RETURNING *`,
    );
    if (r.rowCount) await this.notify();
    return r.rows;
  }

  /** The coordinator takes an attempt back (a stop, a timeout, a person's block); true when it was open. */
  async cancel(taskId: string, attempt: number, why: string): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE pipeline.claims SET status = 'cancelled', epoch = epoch + 1, finished_at = now(), note = $3
       WHERE task_id = $1 AND attempt = $2 AND status IN ('offered', 'claimed')`,
      [taskId, attempt, why],
    );
    if (r.rowCount) await this.notify();
    return (r.rowCount ?? 0) > 0;
  }

  async get(taskId: string, attempt: number): Promise<ClaimRow | null> {
    const r = await this.db.query<ClaimRow>('SELECT * FROM pipeline.claims WHERE task_id = $1 AND attempt = $2', [
      taskId,
      attempt,
    ]);
    return r.rows[0] ?? null;
  }

  /** The claims of these attempts, as they are now (the coordinator's poll of what it waits for). */
  async many(keys: readonly { taskId: string; attempt: number }[]): Promise<ClaimRow[]> {
    if (keys.length === 0) return [];
    const r = await this.db.query<ClaimRow>(
      `SELECT c.* FROM pipeline.claims c
       JOIN unnest($1::text[], $2::int[]) AS k(task_id, attempt) USING (task_id, attempt)`,
      [keys.map((k) => k.taskId), keys.map((k) => k.attempt)],
    );
    return r.rows;
  }

  /**
   * Says this worker is alive, what it runs and its lease (by which readers judge it offline), and
   * wakes the coordinators: agents this worker runs may now be offered work.
   */
  async registerWorker(w: {
    name: string;
    host: string;
    pid: number;
    agents: readonly string[];
    coordinate: boolean;
    leaseMs: number;
  }) {
    await this.db.query(
      `INSERT INTO pipeline.workers (name, host, pid, agents, coordinate, lease_ms) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (name) DO UPDATE SET host = $2, pid = $3, agents = $4, coordinate = $5, lease_ms = $6,
         started_at = now(), heartbeat_at = now(), stopped = false`,
      [w.name, w.host, w.pid, w.agents, w.coordinate, Math.max(1, Math.round(w.leaseMs))],
    );
    await this.notify();
  }

  async beatWorker(name: string): Promise<void> {
    await this.db.query('UPDATE pipeline.workers SET heartbeat_at = now() WHERE name = $1', [name]);
  }

  /** Says this worker stopped, and wakes the coordinators: its agents may have nobody left to run them. */
  async stopWorker(name: string): Promise<void> {
    await this.db.query('UPDATE pipeline.workers SET stopped = true, heartbeat_at = now() WHERE name = $1', [name]);
    await this.notify();
  }
}
