import { join } from 'node:path';
import * as vscode from 'vscode';
import { isPipelineError } from './engine/errors';
import { AgentTreeProvider } from './views/agentTree';
import { COMMANDS, DIFF_SCHEME, METRICS_VIEW_TYPE, VIEWS } from './views/contributions';
import type { EngineHost } from './views/engineHost';
import type { MetricsPanel } from './views/metricsPanel';
import type { PipelineSession } from './views/pipelineSession';
import { DeferredSessionView } from './views/sessionView';
import { PipelineStatusBar } from './views/statusBar';
import { TaskTreeProvider } from './views/taskTree';

/**
 * The composition root. Activation builds only the views and registers every contribution (trees,
 * commands, the diff provider, the metrics panel's serializer) and loads no engine code: the
 * engine (dist/engineHost.js, with zod, the store, git and metrics) is loaded right after, in the
 * background, and a command run before that waits for it. Activation does no git call and no disk
 * scan.
 */
export interface AgentPipelineApi {
  /** The session; available once `ready` has resolved. */
  readonly session: PipelineSession;
  tasks: TaskTreeProvider;
  agents: AgentTreeProvider;
  statusBar: PipelineStatusBar;
  /** Resolves when the engine is loaded and the start-up (opening it, resuming a run) is over. */
  ready: Promise<void>;
  /** The metrics panel while one is open. */
  readonly metricsPanel: MetricsPanel | undefined;
  /** How long `activate()` itself took, in milliseconds (the benchmark reads it). */
  activationMs: number;
}

export function activate(context: vscode.ExtensionContext): AgentPipelineApi {
  const started = performance.now();
  const log = vscode.window.createOutputChannel('Agent Pipeline', { log: true });
  const view = new DeferredSessionView();
  const tasks = new TaskTreeProvider(view);
  const agents = new AgentTreeProvider(view);
  const statusBar = new PipelineStatusBar(view);
  let host: EngineHost | undefined;
  // A dynamic path keeps esbuild from bundling the engine into this file.
  const hostFile = join(context.extensionPath, 'dist', 'engineHost.js');
  const loadHost = (): EngineHost => {
    if (!host) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded at run time, by path, so it stays out of this bundle
      const mod = require(hostFile) as typeof import('./views/engineHost');
      host = mod.createHost(context, log);
      view.attach(host.session);
    }
    return host;
  };
  context.subscriptions.push(
    log,
    view,
    tasks,
    agents,
    statusBar,
    vscode.window.createTreeView(VIEWS.tasks, { treeDataProvider: tasks, showCollapseAll: true }),
    vscode.window.createTreeView(VIEWS.agents, { treeDataProvider: agents }),
    vscode.workspace.registerTextDocumentContentProvider(DIFF_SCHEME, {
      provideTextDocumentContent: (uri) => loadHost().diff.provideTextDocumentContent(uri),
    }),
    vscode.window.registerWebviewPanelSerializer(METRICS_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => {
        const h = loadHost();
        await h.session.open().catch(() => undefined);
        h.revivePanel(panel);
      },
    }),
  );
  for (const id of Object.values(COMMANDS)) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          if (id === COMMANDS.refresh) return tasks.refresh();
          const handler = loadHost().handlers[id];
          if (!handler) throw new Error(`no handler for ${id}`);
          return await handler(...args);
        } catch (e) {
          log.error(`${id}: ${describe(e)}`);
          const fix = isPipelineError(e) && e.details.fix ? ` ${e.details.fix}` : '';
          void vscode.window.showErrorMessage(`${isPipelineError(e) ? e.message : describe(e)}${fix}`);
          return undefined;
        }
      }),
    );
  }
  // After activation, not in it: load the engine, open it, set the context keys, resume a run cut by a reload.
  const ready = new Promise<void>((resolve) => setTimeout(() => void startUp(loadHost, log).finally(resolve), 0));
  return {
    get session() {
      return loadHost().session;
    },
    tasks,
    agents,
    statusBar,
    ready,
    get metricsPanel() {
      return host?.metricsPanel();
    },
    activationMs: performance.now() - started,
  };
}

async function startUp(loadHost: () => EngineHost, log: vscode.LogOutputChannel): Promise<void> {
  try {
    const session = loadHost().session;
    await session.updateContext();
    if (!(await session.isInitialised())) return;
    await session.open();
    await session.resumeIfWasRunning();
  } catch (e) {
    log.error(`Agent Pipeline could not open the pipeline: ${describe(e)}`);
    void vscode.window
      .showErrorMessage(`Agent Pipeline: ${isPipelineError(e) ? e.message : describe(e)}`, 'Show Log')
      .then((c) => c && log.show());
  }
}

function describe(e: unknown): string {
  return isPipelineError(e) ? e.describe() : e instanceof Error ? (e.stack ?? e.message) : String(e);
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
