import { join } from 'node:path';
import * as vscode from 'vscode';
import { COMMANDS, DIFF_SCHEME, METRICS_VIEW_TYPE, VIEWS } from './contributions';
import { isPipelineError } from './engine/errors';
import type { EngineHost } from './engineHost';
import type { PipelineSession } from './host/pipelineSession';
import { AgentTreeProvider } from './views/agentTree';
import type { MetricsPanel } from './views/metricsPanel';
import { DeferredSessionView } from './views/sessionView';
import { PipelineStatusBar } from './views/statusBar';
import { TaskTreeProvider } from './views/taskTree';

/**
 * The composition root. Activation builds only the views and registers every contribution (trees,
 * commands, the diff provider, the metrics panel's serializer) and loads no engine code: the engine
 * host (src/engineHost.ts, bundled as dist/engineHost.js, with zod, the store, git and metrics) is
 * loaded right after, in the background, and a command run before that waits for it. Activation
 * does no git call and no disk scan.
 *
 * The folders: src/engine/ runs the pipeline anywhere (never `vscode`); src/host/ is this window's
 * session of it (the run it leads, the terminal runner, the settings); src/views/ presents the
 * session (trees, status bar, metrics panel, notifications, commands). src/contributions.ts names
 * every id package.json contributes.
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
  // The views, empty until the engine host is loaded and its session attached.
  const view = new DeferredSessionView();
  const tasks = new TaskTreeProvider(view);
  const agents = new AgentTreeProvider(view);
  const statusBar = new PipelineStatusBar(view);
  const engine = lazyEngineHost(context, log, (host) => view.attach(host.session));
  context.subscriptions.push(
    log,
    view,
    tasks,
    agents,
    statusBar,
    vscode.window.createTreeView(VIEWS.tasks, { treeDataProvider: tasks, showCollapseAll: true }),
    vscode.window.createTreeView(VIEWS.agents, { treeDataProvider: agents }),
    ...registerProviders(engine),
    ...registerCommands(engine, tasks, log),
  );
  // After activation, not in it: load the engine, open it, set the context keys, resume a run cut by a reload.
  const ready = new Promise<void>((resolve) => setTimeout(() => void startUp(engine, log).finally(resolve), 0));
  return {
    get session() {
      return engine().session;
    },
    tasks,
    agents,
    statusBar,
    ready,
    get metricsPanel() {
      return engine.loaded()?.metricsPanel();
    },
    activationMs: performance.now() - started,
  };
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}

/** The engine host, loaded on first use. */
interface LazyEngineHost {
  (): EngineHost;
  /** The host if it is loaded already; never loads it. */
  loaded(): EngineHost | undefined;
}

function lazyEngineHost(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  onLoad: (host: EngineHost) => void,
): LazyEngineHost {
  let host: EngineHost | undefined;
  // A dynamic path keeps esbuild from bundling the engine into this file.
  const hostFile = join(context.extensionPath, 'dist', 'engineHost.js');
  const load = (): EngineHost => {
    if (!host) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded at run time, by path, so it stays out of this bundle
      const mod = require(hostFile) as typeof import('./engineHost');
      host = mod.createHost(context, log);
      onLoad(host);
    }
    return host;
  };
  return Object.assign(load, { loaded: () => host });
}

/** The diff documents and the metrics panel's serializer, answered by the engine host. */
function registerProviders(engine: LazyEngineHost): vscode.Disposable[] {
  return [
    vscode.workspace.registerTextDocumentContentProvider(DIFF_SCHEME, {
      provideTextDocumentContent: (uri) => engine().diff.provideTextDocumentContent(uri),
    }),
    vscode.window.registerWebviewPanelSerializer(METRICS_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel) => {
        const h = engine();
        await h.session.open().catch(() => undefined);
        h.revivePanel(panel);
      },
    }),
  ];
}

/** Every contributed command, in one loop; a failure is logged and shown with its fix. */
function registerCommands(
  engine: LazyEngineHost,
  tasks: TaskTreeProvider,
  log: vscode.LogOutputChannel,
): vscode.Disposable[] {
  return Object.values(COMMANDS).map((id) =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        if (id === COMMANDS.refresh) return tasks.refresh();
        const handler = engine().handlers[id];
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

async function startUp(engine: LazyEngineHost, log: vscode.LogOutputChannel): Promise<void> {
  try {
    const session = engine().session;
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
