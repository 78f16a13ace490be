// src/engine/workers/ — agents on several machines, one pipeline in PostgreSQL. Main file: this one
// (Worker: the loop of `pipeline worker --agents …` on one machine, in its own clone).
//
// Design. The state log stays single-writer: one coordinator (the pipeline's leader, under the
// leader row and its fencing epoch of postgres/pgLease.ts) runs the ordinary Monitor, so scheduling,
// prerequisites, conflicts, retries, time-outs, merges and recovery are the ones `pipeline run`
// has. Only its two ports change (coordinator.ts): RemoteRunner (remoteRunner.ts) offers each
// attempt in the `claims` table instead of starting a process, and RemoteWorkspace
// (remoteWorkspace.ts) reads and merges through the shared git remote instead of local worktrees.
// Workers (this file, workerAttempt.ts) claim offers for the agents they run with
// `SELECT … FOR UPDATE SKIP LOCKED` (claimStore.ts), each claim with a lease and an epoch renewed
// by heartbeat; they receive the task branch, run the agent as `pipeline run` would, publish the
// branch and report the outcome under their epoch. The coordinator turns the report into the
// task's transition; a claim whose lease lapsed is expired (epoch bumped: the late report matches
// no row) and the attempt fails and is retried elsewhere. Offers and reports NOTIFY
// `pipeline_claims`; polling is the backstop. `pipeline status` and /metrics read workerStatus.ts.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ProcessRunner } from '../agents/processRunner';
import { GitWorkspace } from '../git/gitWorkspace';
import { GitRemote } from '../git/remote/gitRemote';
import { worktreeRootOf, type PipelineHome } from '../home/pipelineHome';
import type { PipelineConfig } from '../model/configSchema';
import type { AgentRunner } from '../ports/agentRunner';
import type { PgDatabase } from '../postgres/pgDatabase';
import { PgListener } from '../postgres/pgListener';
import { CLAIMS_CHANNEL, ClaimStore } from './claimStore';
import { WorkerAttempt } from './workerAttempt';

export interface WorkerOptions {
  name: string;
  /** The agent ids this worker runs (registered in the pipeline with `pipeline agent add`). */
  agents: readonly string[];
  home: PipelineHome;
  config: PipelineConfig;
  db: PgDatabase;
  url: string;
  /** How long a claim holds without a heartbeat (ms); heartbeats come three times per lease. */
  leaseMs: number;
  /** How often offers are looked for when no notification comes (ms). */
  pollMs: number;
  /** Path of dist/scriptedAgent.js, for the `scripted` preset. */
  scriptedAgent: string;
  /** Whether this worker also stands as coordinator (said in the workers table). */
  coordinate: boolean;
  log: (line: string) => void;
}

/** What a worker's attempts share. */
export interface WorkerContext {
  readonly claims: ClaimStore;
  readonly remote: GitRemote;
  readonly workspace: GitWorkspace;
  readonly runner: AgentRunner;
  readonly config: PipelineConfig;
  readonly home: PipelineHome;
  readonly leaseMs: number;
  readonly scriptedAgent: string;
  readonly stopping: boolean;
  /** The worker's name, as it registered. */
  readonly name: string;
  log(line: string): void;
}

export class Worker implements WorkerContext {
  readonly claims: ClaimStore;
  private readonly running = new Map<string, WorkerAttempt>();
  private listener: PgListener | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private beatTimer: NodeJS.Timeout | undefined;
  private looking: Promise<void> | undefined;
  private lookAgain = false;
  stopping = false;

  private constructor(
    private readonly o: WorkerOptions,
    readonly workspace: GitWorkspace,
    readonly remote: GitRemote,
    readonly runner: AgentRunner,
  ) {
    this.claims = new ClaimStore(o.db);
  }

  static async open(o: WorkerOptions): Promise<Worker> {
    const workspace = await GitWorkspace.open(o.home.root, worktreeRootOf(o.home, o.config.worktreeRoot));
    const remote = await GitRemote.open(workspace.repo, workspace.worktrees);
    return new Worker(
      o,
      workspace,
      remote,
      new ProcessRunner(join(o.home.dir, 'run', 'worker'), { niceness: o.config.agentNiceness }),
    );
  }

  get config(): PipelineConfig {
    return this.o.config;
  }
  get home(): PipelineHome {
    return this.o.home;
  }
  get leaseMs(): number {
    return this.o.leaseMs;
  }
  get scriptedAgent(): string {
    return this.o.scriptedAgent;
  }
  get name(): string {
    return this.o.name;
  }

  log(line: string): void {
    this.o.log(`[${this.o.name}] ${line}`);
  }

  /** Agents of this worker with an attempt in hand. */
  get busy(): string[] {
    return [...this.running.keys()];
  }

  async start(): Promise<void> {
    for (const r of await this.workspace.repair(this.o.agents)) this.log(r);
    await this.persist(() =>
      this.claims.registerWorker({
        name: this.o.name,
        host: hostname(),
        pid: process.pid,
        agents: this.o.agents,
        coordinate: this.o.coordinate,
        leaseMs: this.o.leaseMs,
      }),
    );
    this.listener = await PgListener.start(this.o.url, CLAIMS_CHANNEL, () => this.lookForWork());
    this.schedulePoll();
    this.scheduleBeat();
    this.lookForWork();
  }

  private schedulePoll(): void {
    if (this.stopping) return;
    this.pollTimer = setTimeout(() => {
      this.lookForWork();
      this.schedulePoll();
    }, this.o.pollMs);
  }

  private scheduleBeat(): void {
    if (this.stopping) return;
    this.beatTimer = setTimeout(
      () => void this.beat().finally(() => this.scheduleBeat()),
      Math.max(50, Math.floor(this.o.leaseMs / 3)),
    );
  }

  /** Renews every claim in hand and says the worker is alive; a database outage is waited out. */
  private async beat(): Promise<void> {
    for (const a of this.running.values()) {
      await a.heartbeat().catch(() => undefined);
    }
    await this.claims.beatWorker(this.o.name).catch(() => undefined);
  }

  /** Claims offers for idle agents (a notification, the poll); never two looks at once. */
  lookForWork(): void {
    if (this.stopping) return;
    if (this.looking) {
      this.lookAgain = true;
      return;
    }
    this.looking = this.claimAll()
      .catch(() => undefined)
      .finally(() => {
        this.looking = undefined;
        if (this.lookAgain) {
          this.lookAgain = false;
          this.lookForWork();
        }
      });
  }

  private async claimAll(): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      const free = this.o.agents.filter((a) => !this.running.has(a));
      const row = await this.claims.claim(this.o.name, free, this.o.leaseMs);
      if (!row) return;
      const a = new WorkerAttempt(this, row);
      this.running.set(row.agent, a);
      this.log(`claimed ${row.task_id} attempt ${row.attempt} (${row.stage}) for ${row.agent}, epoch ${row.epoch}`);
      void a.run().finally(() => {
        if (this.running.get(row.agent) === a) this.running.delete(row.agent);
        this.lookForWork();
      });
    }
  }

  private async persist<T>(fn: () => Promise<T>): Promise<T> {
    return this.o.db.retrying(`registering worker ${this.o.name}`, 60_000, fn);
  }

  /**
   * Stops looking for work. Attempts in hand are stopped and their claims left to lapse (the
   * coordinator retries them elsewhere), unless `wait` lets them finish first.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.beatTimer) clearTimeout(this.beatTimer);
    await this.looking;
    await this.listener?.close();
    for (const a of this.running.values()) {
      await a.stopForShutdown();
    }
    await this.claims.stopWorker(this.o.name).catch(() => undefined);
    await this.runner.dispose();
  }
}
