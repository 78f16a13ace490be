import { join } from 'node:path';
import { GitRepo } from '../git/gitRepo';
import { GitRemote } from '../git/remote/gitRemote';
import { Worktrees } from '../git/worktrees';
import { worktreeRootOf } from '../home/pipelineHome';
import type { Disposable } from '../model/events';
import { Monitor } from '../monitor/monitor';
import type { Pipeline } from '../pipeline';
import { ClaimStore } from './claimStore';
import { RemoteRunner } from './remoteRunner';
import { ReportedChecks } from './reportedChecks';
import { RemoteWorkspace } from './remoteWorkspace';
import type { PgDatabase } from '../postgres/pgDatabase';

/**
 * The coordinator: while this process leads the pipeline (the leader row, one at a time), it runs
 * the ordinary Monitor with the workers' ports, so it is the only writer of the state log and the
 * only one that merges. It follows otherwise, and takes over when the leader's lease lapses (the
 * pipeline was opened with `takeOver`); a lost lead stops its monitor (the monitor does so itself)
 * and leaves the workers' claims to the next coordinator, which re-attaches to them.
 */
export interface CoordinatorOptions {
  pipeline: Pipeline;
  db: PgDatabase;
  url: string;
  leaseMs: number;
  pollMs: number;
  scriptedAgent: string;
  log: (line: string) => void;
}

export class Coordinator implements Disposable {
  private monitor: Monitor | undefined;
  private runner: RemoteRunner | undefined;
  private subscriptions: Disposable[] = [];
  private starting: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly o: CoordinatorOptions) {}

  get leading(): boolean {
    return this.o.pipeline.isLeader && this.monitor !== undefined;
  }

  get current(): Monitor | undefined {
    return this.monitor;
  }

  async start(): Promise<void> {
    const p = this.o.pipeline;
    this.subscriptions.push(
      p.events.on('leader:acquired', () => {
        this.starting = this.starting.then(() => this.lead());
      }),
      p.events.on('leader:lost', () => {
        this.o.log('lost the lead: the coordinator stands down');
        this.starting = this.starting.then(() => this.standDown());
      }),
    );
    if (p.isLeader) this.starting = this.starting.then(() => this.lead());
    else this.o.log(`following: ${p.leader ? `${p.leader.label} coordinates` : 'nobody coordinates yet'}`);
    await this.starting;
  }

  private async lead(): Promise<void> {
    const p = this.o.pipeline;
    if (this.closed || this.monitor || !p.isLeader) return;
    const repo = await GitRepo.open(p.home.root);
    const remote = await GitRemote.open(repo, new Worktrees(repo, worktreeRootOf(p.home, p.config.worktreeRoot)));
    const runner = new RemoteRunner(p, new ClaimStore(this.o.db), {
      pollMs: this.o.pollMs,
      leaseMs: this.o.leaseMs,
      url: this.o.url,
      onRunnableChange: () => this.monitor?.kick(),
    });
    await runner.begin();
    this.runner = runner;
    this.monitor = new Monitor({
      // Work goes only to agents a live worker runs (workerStatus.ts); the rest wait, named by status.
      unavailable: (id) => !runner.runnable(id),
      pipeline: p,
      workspace: new RemoteWorkspace(remote, join(p.home.dir, 'remote-agents')),
      runner,
      // Stage checks run on the worker, in its clone, where the agent's work is.
      checks: new ReportedChecks(runner),
      scriptedAgent: this.o.scriptedAgent,
      // Agents run on workers: a coordinator that stops leaves them to the next one.
      stopAgentsOnStop: false,
    });
    await this.monitor.start();
    this.o.log(`coordinating (leader epoch ${p.leader?.epoch ?? '?'})`);
  }

  private async standDown(): Promise<void> {
    const m = this.monitor;
    this.monitor = undefined;
    this.runner = undefined;
    await m?.stop({ stopAgents: false });
  }

  async stop(): Promise<void> {
    this.closed = true;
    for (const s of this.subscriptions) s.dispose();
    this.subscriptions = [];
    await this.starting.catch(() => undefined);
    await this.standDown();
  }

  dispose(): void {
    void this.stop();
  }
}
