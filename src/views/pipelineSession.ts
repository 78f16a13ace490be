import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { AgentRunner } from '../engine/ports/agentRunner';
import { ProcessRunner } from '../engine/agents/processRunner';
import { PipelineError } from '../engine/errors';
import { RemoteWorkspace } from '../engine/git/remoteWorkspace';
import { Monitor } from '../engine/monitor/monitor';
import { JsonLogger } from '../engine/observability/jsonLogger';
import { MetricsServer } from '../engine/observability/metricsServer';
import { PipelineMetrics } from '../engine/observability/pipelineMetrics';
import { Pipeline } from '../engine/pipeline';
import { homeAt, worktreeRootOf } from '../engine/home/pipelineHome';
import type { WorkspacePort } from '../engine/ports/workspacePort';
import { CONTEXT, SETTINGS } from './contributions';
import { metricsSettings, userStageChecks } from './settings';
import { TerminalRunner } from './terminalRunner';

const WAS_RUNNING = 'agentPipeline.wasRunning';

/**
 * The pipeline of this window: the engine for the first workspace folder, opened lazily (never in
 * `activate()`), following read-only until the user starts it. Starting takes the lead (or says who
 * leads instead) and runs the monitor with agents in integrated terminals; stopping stops the
 * agents, requeues their work and gives the lead back. Context keys follow every change, so the
 * palette offers only what makes sense.
 */
export class PipelineSession implements vscode.Disposable {
  private pipeline: Pipeline | undefined;
  private opening: Promise<Pipeline> | undefined;
  private monitor: Monitor | undefined;
  private runner: AgentRunner | undefined;
  private workspace: RemoteWorkspace | undefined;
  private metricsInst: PipelineMetrics | undefined;
  private logger: JsonLogger | undefined;
  private server: MetricsServer | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly opened = new vscode.EventEmitter<Pipeline>();
  private changeTimer: NodeJS.Timeout | undefined;
  private disposed = false;

  /** Fires (coalesced) when the state or the session changed: trees and the status bar redraw. */
  readonly onDidChange = this.changed.event;
  /** Fires once the engine is open, for subscribers to its typed events. */
  readonly onDidOpen = this.opened.event;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {}

  /** The repository root: the first workspace folder (changing the first folder restarts extensions). */
  get root(): string | undefined {
    const f = vscode.workspace.workspaceFolders?.[0];
    return f?.uri.scheme === 'file' ? f.uri.fsPath : undefined;
  }

  get current(): Pipeline | undefined {
    return this.pipeline;
  }
  get running(): boolean {
    return this.monitor !== undefined;
  }
  get terminalRunner(): TerminalRunner | undefined {
    return this.runner instanceof TerminalRunner ? this.runner : undefined;
  }
  get gitWorkspace(): WorkspacePort | undefined {
    return this.workspace;
  }
  /** The engine's metrics, fed by its events from the moment it opened. */
  get metrics(): PipelineMetrics | undefined {
    return this.metricsInst;
  }

  async isInitialised(): Promise<boolean> {
    const root = this.root;
    if (!root) return false;
    return stat(homeAt(root).configFile).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** Opens the engine if it is not open yet; the error says what to do when there is no pipeline. */
  async open(): Promise<Pipeline> {
    if (this.pipeline) return this.pipeline;
    if (this.opening) return this.opening;
    const root = this.root;
    if (!root)
      throw new PipelineError('not-initialised', 'Open a folder (a git repository) first.', {
        fix: 'File > Open Folder…',
      });
    this.opening = (async () => {
      const checks = userStageChecks(this.log);
      const p = await Pipeline.open({
        home: homeAt(root),
        role: 'follow',
        label: `VS Code window (pid ${process.pid})`,
        takeOver: false,
        adjustConfig: (c) => ({
          ...c,
          stages: c.stages.map((s) => (s.check || !checks[s.name] ? s : { ...s, check: checks[s.name] })),
        }),
      });
      if (this.disposed) {
        await p.close();
        throw new Error('the window is closing');
      }
      this.pipeline = p;
      this.metricsInst = PipelineMetrics.attach(p);
      p.events.on('state:changed', () => this.fireChanged());
      p.events.on('leader:acquired', () => this.fireChanged());
      p.events.on('leader:lost', (e) => {
        this.log.warn(
          `Lost the lead of the pipeline${e.leader ? ` to ${e.leader.label} (pid ${e.leader.pid})` : ''}; following read-only.`,
        );
        void this.stopMonitor();
      });
      for (const w of p.storeWarnings) this.log.warn(w);
      this.opened.fire(p);
      this.fireChanged();
      return p;
    })();
    try {
      return await this.opening;
    } finally {
      this.opening = undefined;
    }
  }

  /** Starts the pipeline in this window: lead, then run the monitor. Never in an untrusted workspace. */
  async start(): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      throw new PipelineError('usage', 'Agents never start in an untrusted workspace.', {
        fix: 'Trust this workspace (Workspaces: Manage Workspace Trust) to run agents.',
      });
    }
    if (this.monitor) return;
    const p = await this.open();
    await p.lead();
    try {
      const runDir = join(p.home.dir, 'run');
      const kind = vscode.workspace.getConfiguration(SETTINGS.section).get<string>(SETTINGS.runner, 'terminal');
      this.runner = kind === 'process' ? new ProcessRunner(runDir) : new TerminalRunner(runDir);
      // Git runs in a worker process: thousands of git starts from this host would stall every extension.
      this.workspace = new RemoteWorkspace(
        join(this.context.extensionPath, 'dist', 'gitWorker.js'),
        p.home.root,
        worktreeRootOf(p.home, p.config.worktreeRoot),
      );
      const monitor = new Monitor({
        pipeline: p,
        workspace: this.workspace,
        runner: this.runner,
        scriptedAgent: join(this.context.extensionPath, 'dist', 'scriptedAgent.js'),
      });
      this.monitor = monitor;
      // The leader writes the structured log; the window mirrors it into its log channel.
      this.logger = JsonLogger.forPipeline(p);
      this.logger.onLine(({ record }) =>
        this.log[record.level === 'debug' ? 'debug' : record.level](
          `${record.event}${record.task ? ` ${record.task}` : ''}${record.agent ? ` ${record.agent}` : ''}: ${record.message}`,
        ),
      );
      const ms = metricsSettings();
      if (ms.enabled && this.metricsInst) {
        this.server = await MetricsServer.start({ port: ms.port, metrics: this.metricsInst, pipeline: p });
        this.log.info(`Metrics on ${this.server.url}/metrics (health: /healthz, /readyz).`);
      }
      await monitor.start();
      await this.context.workspaceState.update(WAS_RUNNING, true);
      this.log.info(`Pipeline started: ${p.state.orchestration_mode} mode, ${p.state.mode} rollout.`);
    } catch (e) {
      await this.stopMonitor();
      await p.follow().catch(() => undefined);
      throw e;
    } finally {
      this.fireChanged();
    }
  }

  async stop(): Promise<void> {
    await this.context.workspaceState.update(WAS_RUNNING, false);
    await this.stopMonitor();
    await this.pipeline?.follow();
    this.log.info('Pipeline stopped; agents were stopped and their tasks requeued.');
    this.fireChanged();
  }

  private async stopMonitor(): Promise<void> {
    const m = this.monitor;
    this.monitor = undefined;
    await m?.stop();
    await this.server?.close();
    this.server = undefined;
    await this.logger?.close();
    this.logger = undefined;
    this.workspace?.dispose();
    this.workspace = undefined;
    this.fireChanged();
  }

  /** The metrics endpoint, when this window serves one. */
  get metricsServer(): MetricsServer | undefined {
    return this.server;
  }

  /** After a window reload: start again if the pipeline was running here before (and may be resumed). */
  async resumeIfWasRunning(): Promise<void> {
    const auto = vscode.workspace.getConfiguration(SETTINGS.section).get<boolean>(SETTINGS.autoResume, true);
    if (!auto || !this.context.workspaceState.get<boolean>(WAS_RUNNING, false) || !vscode.workspace.isTrusted) return;
    if (!(await this.isInitialised())) return;
    await this.start();
  }

  /** The monitor, for agent actions; an error that says so when the pipeline does not run here. */
  requireMonitor(): Monitor {
    if (!this.monitor)
      throw new PipelineError('not-leader', 'The pipeline is not running in this window.', {
        fix: 'Start it with "Agent Pipeline: Start Pipeline".',
      });
    return this.monitor;
  }

  private fireChanged(): void {
    if (this.changeTimer) return;
    // Bursts of changes (a tick commits several records) redraw once.
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      void this.updateContext();
      this.changed.fire();
    }, 50);
  }

  async updateContext(): Promise<void> {
    const p = this.pipeline;
    await vscode.commands.executeCommand(
      'setContext',
      CONTEXT.initialised,
      p !== undefined || (await this.isInitialised()),
    );
    await vscode.commands.executeCommand('setContext', CONTEXT.running, this.running);
    await vscode.commands.executeCommand('setContext', CONTEXT.leading, p?.isLeader ?? false);
    await vscode.commands.executeCommand('setContext', CONTEXT.followingOther, !!p && !p.isLeader && p.leader !== null);
  }

  dispose(): void {
    this.disposed = true;
    if (this.changeTimer) clearTimeout(this.changeTimer);
    const m = this.monitor;
    this.monitor = undefined;
    const p = this.pipeline;
    this.pipeline = undefined;
    // Agents in terminals keep running across a reload; the next window re-attaches to them.
    const metrics = this.metricsInst;
    this.metricsInst = undefined;
    const server = this.server;
    const logger = this.logger;
    const workspace = this.workspace;
    this.workspace = undefined;
    void (async () => {
      await m?.stop({ stopAgents: false });
      await server?.close();
      await logger?.close();
      workspace?.dispose();
      metrics?.dispose();
      await p?.close();
    })();
    this.changed.dispose();
    this.opened.dispose();
  }
}
