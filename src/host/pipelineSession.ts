import { stat } from 'node:fs/promises';
import * as vscode from 'vscode';
import { PipelineError } from '../engine/errors';
import type { Monitor } from '../engine/monitor/monitor';
import type { MetricsServer } from '../engine/observability/metricsServer';
import { startObservability, type Observability } from '../engine/observability/observability';
import type { PipelineMetrics } from '../engine/observability/pipelineMetrics';
import { Pipeline } from '../engine/pipeline';
import { homeAt } from '../engine/home/pipelineHome';
import type { WorkspacePort } from '../engine/ports/workspacePort';
import { CONTEXT, SETTINGS } from '../contributions';
import { LeaderRun } from './leaderRun';
import { metricsSettings, userStageChecks } from './settings';
import type { TerminalRunner } from './terminalRunner';
import type { WorkersStatus } from '../engine/workers/workerStatus';
import { WorkersWatch } from './workersWatch';

const WAS_RUNNING = 'agentPipeline.wasRunning';
/** How long changes gather before the views redraw: quick to the eye, few redraws for a busy host. */
export const CHANGE_COALESCE_MS = 100;

/**
 * src/host/ is the extension's side that is not a view: the session of this window (this file), the
 * run it leads (leaderRun.ts), the terminal runner and the settings. It imports the engine, `vscode`
 * and the contributed ids (src/contributions.ts), never src/views/: the views present the session,
 * the session does not know them (a lint rule keeps it so).
 *
 * The pipeline of this window: the engine for the first workspace folder, opened lazily (never in
 * `activate()`), following read-only until the user starts it; its metrics are kept from the moment
 * it opens, so the metrics panel works in a window that follows. Starting takes the lead (or says
 * who leads instead) and starts a `LeaderRun`; stopping ends it, which stops the agents and requeues
 * their work, and gives the lead back. Context keys follow every change, so the palette offers only
 * what makes sense.
 */
export class PipelineSession implements vscode.Disposable {
  private pipeline: Pipeline | undefined;
  private opening: Promise<Pipeline> | undefined;
  /** The window's metrics, from the moment the pipeline opened. */
  private observed: Observability | undefined;
  /** The run this window leads, if it leads. */
  private run: LeaderRun | undefined;
  /** The workers of a pipeline in PostgreSQL, for the Agents tree. */
  private workersWatch: WorkersWatch | undefined;
  private starting: Promise<void> | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly opened = new vscode.EventEmitter<Pipeline>();
  private changeTimer: NodeJS.Timeout | undefined;
  /** The context keys' values last sent to the window. */
  private readonly contextSent = new Map<string, boolean>();
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
    return this.run !== undefined;
  }
  get terminalRunner(): TerminalRunner | undefined {
    return this.run?.terminalRunner;
  }
  get gitWorkspace(): WorkspacePort | undefined {
    return this.run?.workspace;
  }
  /** The engine's metrics, fed by its events from the moment it opened. */
  get metrics(): PipelineMetrics | undefined {
    return this.observed?.metrics;
  }
  /** The workers of a pipeline in PostgreSQL as last read; none for a pipeline in files. */
  get workers(): WorkersStatus | undefined {
    return this.workersWatch?.status;
  }
  /** The metrics endpoint, when this window serves one. */
  get metricsServer(): MetricsServer | undefined {
    return this.run?.metricsServer;
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
      // Metrics only, as in a window that follows; a LeaderRun adds the log and the endpoint.
      this.observed = await startObservability(p, { log: false, metrics: true });
      this.pipeline = p;
      this.workersWatch = WorkersWatch.start(p, () => this.fireChanged());
      p.events.on('state:changed', () => this.fireChanged());
      p.events.on('leader:acquired', () => this.fireChanged());
      p.events.on('leader:lost', (e) => {
        this.log.warn(
          `Lost the lead of the pipeline${e.leader ? ` to ${e.leader.label} (pid ${e.leader.pid})` : ''}; following read-only.`,
        );
        // The monitor stands down by itself and leaves the agents to the new leader; so does the run.
        void this.endRun({ stopAgents: false });
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
    if (this.run) return;
    // A second start while the first is under way waits for it rather than starting a second run.
    await (this.starting ??= this.startRun().finally(() => (this.starting = undefined)));
  }

  private async startRun(): Promise<void> {
    const p = await this.open();
    await p.lead();
    try {
      const ms = metricsSettings();
      const kind = vscode.workspace.getConfiguration(SETTINGS.section).get<string>(SETTINGS.runner, 'terminal');
      this.run = await LeaderRun.start(p, {
        extensionPath: this.context.extensionPath,
        runner: kind === 'process' ? 'process' : 'terminal',
        metrics: this.observed?.metrics,
        metricsPort: ms.enabled ? ms.port : undefined,
        log: this.log,
      });
      await this.context.workspaceState.update(WAS_RUNNING, true);
      this.log.info(`Pipeline started: ${p.state.orchestration_mode} mode, ${p.state.mode} rollout.`);
    } catch (e) {
      await this.endRun();
      await p.follow().catch(() => undefined);
      throw e;
    } finally {
      this.fireChanged();
    }
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.context.workspaceState.update(WAS_RUNNING, false);
    await this.endRun();
    await this.pipeline?.follow();
    this.log.info('Pipeline stopped; agents were stopped and their tasks requeued.');
    this.fireChanged();
  }

  private async endRun(opts: { stopAgents?: boolean } = {}): Promise<void> {
    const run = this.run;
    this.run = undefined;
    await run?.dispose(opts);
    this.fireChanged();
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
    if (!this.run)
      throw new PipelineError('not-leader', 'The pipeline is not running in this window.', {
        fix: 'Start it with "Agent Pipeline: Start Pipeline".',
      });
    return this.run.monitor;
  }

  private fireChanged(): void {
    if (this.changeTimer) return;
    // Bursts of changes (a tick commits several records, agents finish together) redraw once, at
    // most every CHANGE_COALESCE_MS; a change during the wait is drawn when it ends, so the last
    // one is never lost.
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      void this.updateContext();
      this.changed.fire();
    }, CHANGE_COALESCE_MS);
  }

  async updateContext(): Promise<void> {
    const p = this.pipeline;
    await this.setContext(CONTEXT.initialised, p !== undefined || (await this.isInitialised()));
    await this.setContext(CONTEXT.running, this.running);
    await this.setContext(CONTEXT.leading, p?.isLeader ?? false);
    await this.setContext(CONTEXT.followingOther, !!p && !p.isLeader && p.leader !== null);
  }

  /**
   * Sets a context key when its value changed: every state change calls updateContext, and each
   * setContext is a message to the window, which a busy run would send several times a second.
   */
  /** The context keys' values as last sent to the window (VS Code has no API that reads them back). */
  get contextValues(): ReadonlyMap<string, boolean> {
    return this.contextSent;
  }

  private async setContext(key: string, value: boolean): Promise<void> {
    if (this.contextSent.get(key) === value) return;
    this.contextSent.set(key, value);
    await vscode.commands.executeCommand('setContext', key, value);
  }

  dispose(): void {
    this.disposed = true;
    if (this.changeTimer) clearTimeout(this.changeTimer);
    const run = this.run;
    this.run = undefined;
    const observed = this.observed;
    this.observed = undefined;
    const p = this.pipeline;
    this.pipeline = undefined;
    this.workersWatch?.dispose();
    this.workersWatch = undefined;
    void (async () => {
      // Agents in terminals keep running across a reload; the next window re-attaches to them.
      await run?.dispose({ stopAgents: false });
      await observed?.close();
      await p?.close();
    })();
    this.changed.dispose();
    this.opened.dispose();
  }
}
