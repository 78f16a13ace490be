import { join } from 'node:path';
import type * as vscode from 'vscode';
import type { AgentRunner } from '../engine/ports/agentRunner';
import { ProcessRunner } from '../engine/agents/processRunner';
import { ShellCheckRunner } from '../engine/agents/shellCheckRunner';
import type { Disposable } from '../engine/model/events';
import { RemoteWorkspace } from '../engine/git/remoteWorkspace';
import { Monitor } from '../engine/monitor/monitor';
import { startObservability, type Observability } from '../engine/observability/observability';
import type { MetricsServer } from '../engine/observability/metricsServer';
import type { PipelineMetrics } from '../engine/observability/pipelineMetrics';
import type { Pipeline } from '../engine/pipeline';
import { worktreeRootOf } from '../engine/home/pipelineHome';
import { TerminalRunner } from './terminalRunner';

/**
 * The niceness of the extension's git worker, and so of its git processes, against the extension
 * host's. Git's checkouts and merges run in the editor's own scheduling group (agents run in lowered
 * groups of their own, sessionGroup.ts), and at the host's priority the host waited for a core
 * behind them: in the extension benchmark, "late 57 ms: on a core 1 ms, waiting for one 67 ms" while
 * the agents' worktrees were being made. Five gives the host three times git's share of a core when
 * both want it, and leaves git all of it otherwise.
 */
const GIT_WORKER_NICENESS = 5;

export interface LeaderRunOptions {
  /** The extension's folder: dist/ holds the git worker and the scripted agent. */
  extensionPath: string;
  runner: 'terminal' | 'process';
  /** The window's metrics, kept since it opened the pipeline; the endpoint serves them. */
  metrics: PipelineMetrics | undefined;
  /** Serve /metrics, /healthz, /readyz on 127.0.0.1 at this port. */
  metricsPort: number | undefined;
  /** The window's log channel, which mirrors the structured log. */
  log: vscode.LogOutputChannel;
}

/**
 * One run of the pipeline led by this window: the monitor, its agent runner, the git worker, and
 * the observability a leader adds (the JSON log, mirrored into the log channel, and the metrics
 * endpoint when the settings ask for one). `start` builds all of it or nothing; one `dispose` ends
 * all of it, whether the user stopped the pipeline, the lead was lost, or the window closes.
 */
export class LeaderRun {
  private disposing: Promise<void> | undefined;

  private constructor(
    readonly monitor: Monitor,
    readonly runner: AgentRunner,
    readonly workspace: RemoteWorkspace,
    private readonly observability: Observability,
    private readonly mirror: Disposable | undefined,
  ) {}

  /** Runs the monitor on `p`, which this window must lead already. */
  static async start(p: Pipeline, o: LeaderRunOptions): Promise<LeaderRun> {
    const obs = await startObservability(
      p,
      o.metrics && o.metricsPort !== undefined ? { metrics: o.metrics, port: o.metricsPort } : {},
    );
    // The leader writes the structured log; the window mirrors it into its log channel.
    const mirror = obs.logger?.onLine(({ record }) =>
      o.log[record.level === 'debug' ? 'debug' : record.level](
        `${record.event}${record.task ? ` ${record.task}` : ''}${record.agent ? ` ${record.agent}` : ''}: ${record.message}`,
      ),
    );
    if (obs.server) o.log.info(`Metrics on ${obs.server.url}/metrics (health: /healthz, /readyz).`);
    const runDir = join(p.home.dir, 'run');
    const niceness = p.config.agentNiceness;
    const runner =
      o.runner === 'process' ? new ProcessRunner(runDir, { niceness }) : new TerminalRunner(runDir, { niceness });
    // Git runs in a worker process: thousands of git starts from this host would stall every
    // extension. Its git processes yield the cores to the editor (GIT_WORKER_NICENESS).
    const workspace = new RemoteWorkspace(
      join(o.extensionPath, 'dist', 'gitWorker.js'),
      p.home.root,
      worktreeRootOf(p.home, p.config.worktreeRoot),
      { niceness: GIT_WORKER_NICENESS },
    );
    const monitor = new Monitor({
      pipeline: p,
      workspace,
      runner,
      checks: new ShellCheckRunner({ niceness }),
      scriptedAgent: join(o.extensionPath, 'dist', 'scriptedAgent.js'),
    });
    const run = new LeaderRun(monitor, runner, workspace, obs, mirror);
    try {
      await monitor.start();
    } catch (e) {
      await run.dispose();
      throw e;
    }
    return run;
  }

  /** The agents' terminals, when agents run in terminals. */
  get terminalRunner(): TerminalRunner | undefined {
    return this.runner instanceof TerminalRunner ? this.runner : undefined;
  }

  /** The metrics endpoint, when this run serves one. */
  get metricsServer(): MetricsServer | undefined {
    return this.observability.server;
  }

  /**
   * Stops the monitor, then the endpoint, the log and the git worker. By default agents are stopped
   * and their tasks requeued; a closing window passes `stopAgents: false`, since agents in terminals
   * outlive a window reload and the next window re-attaches to them. Safe to call more than once.
   */
  dispose(opts: { stopAgents?: boolean } = {}): Promise<void> {
    return (this.disposing ??= (async () => {
      try {
        await this.monitor.stop({ stopAgents: opts.stopAgents ?? true });
      } finally {
        await this.observability.close();
        this.mirror?.dispose();
        this.workspace.dispose();
      }
    })());
  }
}
