import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Pipeline } from '../pipeline';
import type { AgentRunner, RunExit, RunHandle, RunRequest } from '../ports/agentRunner';
import { PgListener } from '../postgres/pgListener';
import { CLAIMS_CHANNEL, type ClaimRow, type ClaimStore, type ReportedCheck } from './claimStore';
import { readLiveAgents } from './workerStatus';

/**
 * The coordinator's AgentRunner when agents run on workers. `start` offers the attempt (its task
 * file as the coordinator wrote it) in the claims table; a worker that runs the agent claims it and
 * reports how it ended. The handle's `exited` settles when the report arrives: the task file the
 * worker's agent left (with its marker) is written over the coordinator's copy, so the monitor
 * reads the marker exactly as on one machine, and the agent's output is mirrored into the local
 * log as heartbeats bring it (the monitor's stall watch and failure reasons read that log).
 *
 * A claim whose lease ran out (its worker died, froze or lost the database) is expired here: its
 * epoch is bumped, so the worker's late report is refused, and the attempt ends without a marker
 * (a failed attempt: retried on whichever worker claims it next). Expiry waits one lease after the
 * database was last unreachable from here, so a database restart gives workers time to renew.
 *
 * Each poll also reads which agents a live worker runs (workerStatus.ts): the monitor offers work
 * only to those (`runnable`), and is kicked when the set changes (a worker started, stopped or went
 * quiet). An offer made before its worker went away waits for one, and says so once.
 */
export interface RemoteRunnerOptions {
  /** How often the claims are read when no notification comes (ms). */
  pollMs: number;
  /** The longest lease a worker takes (ms): the grace after a database outage before expiring claims. */
  leaseMs: number;
  /** The database URL, for LISTEN. */
  url: string;
  /** Called when the agents a live worker runs changed (the monitor's kick). */
  onRunnableChange?: () => void;
}

interface Waiting {
  req: RunRequest;
  /** Characters of the claim's output already appended to the local log. */
  mirrored: number;
  resolve: (e: RunExit) => void;
  done: boolean;
}

export class RemoteRunner implements AgentRunner {
  readonly kind = 'worker';
  private readonly waiting = new Map<string, Waiting>();
  private timer: NodeJS.Timeout | undefined;
  private listener: PgListener | undefined;
  private polling: Promise<void> | undefined;
  private again = false;
  private disposed = false;
  /** When the database last failed a query of this runner (ms), for the expiry grace. */
  private troubleAt = 0;
  /** How the stage checks that workers ran ended, by attempt, until the monitor asks (ReportedChecks). */
  private readonly checks = new Map<string, ReportedCheck>();
  /** The agents some live worker runs, as last read; none until the first read. */
  private live = new Set<string>();
  /** Offers already said to wait for a worker (task#attempt), so the warning comes once. */
  private readonly saidWaiting = new Set<string>();

  constructor(
    private readonly pipeline: Pipeline,
    private readonly claims: ClaimStore,
    private readonly options: RemoteRunnerOptions,
  ) {}

  /** True when a live worker runs `agentId`: only such agents are offered work. */
  runnable(agentId: string): boolean {
    return this.live.has(agentId);
  }

  async begin(): Promise<void> {
    await this.readLive().catch(() => {
      this.troubleAt = Date.now();
    });
    this.listener = await PgListener.start(this.options.url, CLAIMS_CHANNEL, () => this.poke());
    this.schedule();
  }

  private schedule(): void {
    if (this.disposed) return;
    this.timer = setTimeout(() => {
      this.poke();
      this.schedule();
    }, this.options.pollMs);
    this.timer.unref();
  }

  /** Reads the claims now (a notification, the poll, a new offer); polls never overlap. */
  poke(): void {
    if (this.disposed) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    this.polling = this.poll()
      .catch(() => {
        this.troubleAt = Date.now();
      })
      .finally(() => {
        this.polling = undefined;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }

  private async readLive(): Promise<void> {
    const live = await readLiveAgents(this.claims.db);
    const changed = live.size !== this.live.size || [...live].some((a) => !this.live.has(a));
    this.live = live;
    if (changed) this.options.onRunnableChange?.();
  }

  private async poll(): Promise<void> {
    await this.readLive();
    if (this.pipeline.isLeader && Date.now() - this.troubleAt > this.options.leaseMs) {
      const expired = await this.claims.expire();
      for (const c of expired) {
        this.pipeline.events.emit('monitor:warning', {
          message: `${c.agent} on ${c.worker ?? 'a worker'} lost its claim of ${c.task_id} (attempt ${c.attempt}): ${c.note ?? 'its lease expired'}`,
          taskId: c.task_id,
          agentId: c.agent,
        });
      }
    }
    const keys = [...this.waiting.entries()].filter(([, w]) => !w.done);
    if (keys.length === 0) return;
    const rows = await this.claims.many(keys.map(([, w]) => ({ taskId: w.req.taskId, attempt: w.req.attempt })));
    for (const row of rows) {
      const w = this.waiting.get(key(row.task_id, row.attempt));
      if (w && !w.done) await this.update(w, row);
      this.sayIfWaiting(row);
    }
  }

  private async update(w: Waiting, row: ClaimRow): Promise<void> {
    if (row.output.length > w.mirrored) {
      await mkdir(dirname(w.req.logFile), { recursive: true });
      await appendFile(w.req.logFile, row.output.slice(w.mirrored));
      w.mirrored = row.output.length;
    }
    if (row.status === 'done') {
      if (row.check_passed !== null)
        this.checks.set(key(row.task_id, row.attempt), {
          passed: row.check_passed,
          code: row.check_code,
          timedOut: row.check_timed_out ?? false,
          durationMs: row.check_ms ?? 0,
          output: row.check_output ?? '',
        });
      await mkdir(dirname(w.req.taskFile), { recursive: true });
      await writeFile(w.req.taskFile, row.final_text ?? row.task_text);
      if (row.note) await appendFile(w.req.logFile, `\n[${row.worker ?? 'worker'}] ${row.note}\n`);
      this.finish(w, {
        code: row.exit_code,
        signal: row.exit_signal,
        ...(row.start_error ? { startError: row.start_error } : {}),
      });
    } else if (row.status === 'expired' || row.status === 'cancelled') {
      await appendFile(w.req.logFile, `\n[coordinator] ${row.note ?? `the claim was ${row.status}`}\n`);
      this.finish(w, { code: null, signal: null });
    }
  }

  /** An offer whose agent no live worker runs: said once in the log, and shown by `pipeline status`. */
  private sayIfWaiting(row: ClaimRow): void {
    const k = key(row.task_id, row.attempt);
    if (row.status !== 'offered' || this.live.has(row.agent)) {
      this.saidWaiting.delete(k);
      return;
    }
    if (this.saidWaiting.has(k)) return;
    this.saidWaiting.add(k);
    this.pipeline.events.emit('monitor:warning', {
      message: `${row.task_id} attempt ${row.attempt} (${row.stage}) is offered to ${row.agent}, but no live worker runs it: it waits for a worker running ${row.agent}`,
      taskId: row.task_id,
      agentId: row.agent,
    });
  }

  private finish(w: Waiting, exit: RunExit): void {
    if (w.done) return;
    w.done = true;
    this.waiting.delete(key(w.req.taskId, w.req.attempt));
    this.saidWaiting.delete(key(w.req.taskId, w.req.attempt));
    w.resolve(exit);
  }

  private handle(req: RunRequest, mirrored: number): RunHandle {
    let resolve!: (e: RunExit) => void;
    const exited = new Promise<RunExit>((r) => (resolve = r));
    const w: Waiting = { req, mirrored, resolve, done: false };
    this.waiting.set(key(req.taskId, req.attempt), w);
    return {
      agentId: req.agentId,
      attempt: req.attempt,
      pid: undefined,
      exited,
      stop: async () => {
        if (w.done) return;
        // Taken back: the worker sees its claim gone at its next heartbeat and stops its agent.
        await this.claims
          .cancel(req.taskId, req.attempt, `the coordinator took the attempt back`)
          .catch(() => undefined);
        this.finish(w, { code: null, signal: 'SIGTERM' });
      },
    };
  }

  async start(req: RunRequest): Promise<RunHandle> {
    const p = this.pipeline;
    const task = p.state.tasks[req.taskId];
    const agent = p.state.agents[req.agentId];
    const epoch = p.leader?.epoch;
    if (!task || !agent || epoch === undefined)
      throw new Error(`${req.taskId} is no longer assigned to ${req.agentId}`);
    const taskText = await readFile(req.taskFile, 'utf8');
    const offered = await this.claims.offer(
      {
        taskId: req.taskId,
        attempt: req.attempt,
        stage: task.stage,
        role: req.role,
        agent: req.agentId,
        command: agent.command,
        base: p.state.mode === 'pilot' ? p.config.pilotBranch : p.config.targetBranch,
        taskFileName: basename(req.taskFile),
        taskText,
        checkCommand: p.config.stages.find((s) => s.name === task.stage)?.check ?? null,
        resumeSession: req.resume ?? null,
      },
      epoch,
    );
    if (!offered) throw new Error(`another coordinator leads now: ${req.taskId} was not offered`);
    return this.handle(req, 0);
  }

  /**
   * How the worker's run of the stage's check for this attempt ended, taken (asked once); read from
   * the claim when this coordinator did not see the report (it took over after it came).
   */
  async takeCheck(taskId: string, attempt: number): Promise<ReportedCheck | null> {
    const k = key(taskId, attempt);
    const seen = this.checks.get(k);
    this.checks.delete(k);
    if (seen) return seen;
    const row = await this.claims.get(taskId, attempt);
    if (!row || row.status !== 'done' || row.check_passed === null) return null;
    return {
      passed: row.check_passed,
      code: row.check_code,
      timedOut: row.check_timed_out ?? false,
      durationMs: row.check_ms ?? 0,
      output: row.check_output ?? '',
    };
  }

  async reattach(req: RunRequest): Promise<RunHandle | null> {
    const row = await this.claims.get(req.taskId, req.attempt);
    if (
      !row ||
      row.agent !== req.agentId ||
      (row.status !== 'offered' && row.status !== 'claimed' && row.status !== 'done')
    )
      return null;
    // Output the previous coordinator mirrored is in its own log; this one mirrors from here on.
    const h = this.handle(req, row.output.length);
    this.poke();
    return h;
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
    await this.listener?.close();
  }
}

function key(taskId: string, attempt: number): string {
  return `${taskId}#${attempt}`;
}
