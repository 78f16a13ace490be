import * as vscode from 'vscode';
import type { CommandContext, Handlers } from './commands/commandContext';
import { COMMANDS, METRICS_VIEW_TYPE } from '../contributions';
import type { PipelineSession } from '../host/pipelineSession';
import { answer } from '../engine/rpc/requestReply';
import { webviewHtml, webviewOptions } from './webviewHtml';
import { costView } from './costView';
import { inFlightRows } from './inFlightRows';
import { pageToHostSchema, type HostToPage } from './webviewProtocol';

/**
 * The live metrics panel: throughput, queue depth by stage over time, stage durations, agent
 * utilisation and handoff latency, what the agents cost (in total, per merged task, by stage), and a
 * table of the tasks in flight with what their agents do now. The page draws; the host
 * sends snapshots of the engine's metrics (event-driven, throttled). A serializer brings the panel
 * back after a window reload, and the page keeps its own view state with getState/setState.
 */
const THROTTLE_MS = 500;

export class MetricsPanel implements vscode.Disposable {
  private static current: MetricsPanel | undefined;
  private readonly subs: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ready = false;
  /** What the page last reported drawing, for tests. */
  drawn: { charts: number; rows: number } | undefined;

  static async show(session: PipelineSession, extensionUri: vscode.Uri): Promise<MetricsPanel> {
    await session.open();
    if (MetricsPanel.current) {
      MetricsPanel.current.panel.reveal(vscode.ViewColumn.Beside);
      return MetricsPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(
      METRICS_VIEW_TYPE,
      'Pipeline Metrics',
      vscode.ViewColumn.Beside,
      webviewOptions(extensionUri),
    );
    return (MetricsPanel.current = new MetricsPanel(panel, session, extensionUri));
  }

  static get instance(): MetricsPanel | undefined {
    return MetricsPanel.current;
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly session: PipelineSession,
    extensionUri: vscode.Uri,
  ) {
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'pipeline.svg');
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      title: 'Pipeline Metrics',
      script: 'out/metricsPage.js',
      styles: ['out/metricsPage.css', 'metrics.css'],
      body: '<main id="app" aria-live="polite"><p class="muted">Loading the pipeline\'s metrics…</p></main>',
    });
    this.subs.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      session.onDidChange(() => this.schedule()),
    );
    const sub = session.metrics?.onDidChange(() => this.schedule());
    if (sub) this.subs.push(sub);
    // What agents do now is news, not state: the leader announces it, and the table shows it.
    const progress = session.current?.events.on('agent:progress', () => this.schedule());
    if (progress) this.subs.push(progress);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const r = pageToHostSchema.safeParse(raw);
    if (!r.success) {
      this.session.log.warn(
        `Metrics panel: ignored a malformed message from the page: ${r.error.issues[0]?.message ?? ''}`,
      );
      return;
    }
    const m = r.data;
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.post();
        return;
      case 'drawn':
        this.drawn = { charts: m.charts, rows: m.rows };
        return;
      case 'openTask': {
        const r = await answer(m.requestId, () =>
          Promise.resolve(vscode.commands.executeCommand(COMMANDS.openTaskFile, m.taskId)),
        );
        void this.panel.webview.postMessage({ type: 'reply', reply: r } satisfies HostToPage);
        return;
      }
    }
  }

  private schedule(): void {
    if (this.timer || !this.ready) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.post();
    }, THROTTLE_MS);
  }

  private post(): void {
    const p = this.session.current;
    const metrics = this.session.metrics;
    if (!p || !metrics) return;
    const snapshot = metrics.metricsSnapshot();
    const msg: HostToPage = { type: 'snapshot', snapshot, inFlight: inFlightRows(p), cost: costView(snapshot) };
    void this.panel.webview.postMessage(msg);
  }

  dispose(): void {
    if (MetricsPanel.current === this) MetricsPanel.current = undefined;
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.subs) s.dispose();
    this.subs.length = 0;
    this.panel.dispose();
  }

  /** Brings a panel back after a window reload (the serializer's half of the job). */
  static revive(panel: vscode.WebviewPanel, session: PipelineSession, extensionUri: vscode.Uri): void {
    panel.webview.options = webviewOptions(extensionUri);
    MetricsPanel.current?.dispose();
    MetricsPanel.current = new MetricsPanel(panel, session, extensionUri);
  }
}

export function metricsCommands({ session, extension }: CommandContext): Handlers {
  return {
    [COMMANDS.showMetrics]: async () => {
      await MetricsPanel.show(session, extension.extensionUri);
    },
  };
}
