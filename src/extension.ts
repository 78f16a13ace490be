import * as vscode from 'vscode';
import { isPipelineError } from './engine/errors';
import { AgentTreeProvider } from './views/agentTree';
import { agentCommands } from './views/commands/agentCommands';
import type { CommandContext, Handlers } from './views/commands/commandContext';
import { pipelineCommands } from './views/commands/pipelineCommands';
import { taskCommands } from './views/commands/taskCommands';
import { COMMANDS, DIFF_SCHEME, VIEWS } from './views/contributions';
import { TaskDiffProvider } from './views/diffProvider';
import { MetricsPanel, metricsCommands, registerMetricsPanel } from './views/metricsPanel';
import { notifyFromEvents } from './views/notifications';
import { PipelineSession } from './views/pipelineSession';
import { PipelineStatusBar } from './views/statusBar';
import { TaskTreeProvider } from './views/taskTree';

/**
 * The composition root: builds the session (the engine, opened lazily), the views and the commands,
 * wires them, and hands every registration to `context.subscriptions`. Activation does no git call
 * and no disk scan; the engine opens right after, in the background.
 */
/** What `activate` returns: the live objects, for the tests that run inside VS Code. */
export interface AgentPipelineApi {
  session: PipelineSession;
  tasks: TaskTreeProvider;
  agents: AgentTreeProvider;
  statusBar: PipelineStatusBar;
  /** Resolves when the start-up after activation (opening the engine, resuming a run) is over. */
  ready: Promise<void>;
  /** The metrics panel while one is open. */
  readonly metricsPanel: MetricsPanel | undefined;
  /** How long `activate()` itself took, in milliseconds (the benchmark reads it). */
  activationMs: number;
}

export function activate(context: vscode.ExtensionContext): AgentPipelineApi {
  const started = performance.now();
  const log = vscode.window.createOutputChannel('Agent Pipeline', { log: true });
  const session = new PipelineSession(context, log);
  const tasks = new TaskTreeProvider(session);
  const agents = new AgentTreeProvider(session);
  const statusBar = new PipelineStatusBar(session);
  const ctx: CommandContext = { session, extension: context };
  context.subscriptions.push(
    log,
    session,
    tasks,
    agents,
    statusBar,
    vscode.window.createTreeView(VIEWS.tasks, { treeDataProvider: tasks, showCollapseAll: true }),
    vscode.window.createTreeView(VIEWS.agents, { treeDataProvider: agents }),
    vscode.workspace.registerTextDocumentContentProvider(DIFF_SCHEME, new TaskDiffProvider(() => session.root)),
    registerMetricsPanel(session, context.extensionUri),
    session.onDidOpen((p) => {
      context.subscriptions.push(notifyFromEvents(p, () => session.running));
    }),
  );
  registerCommands(context, log, {
    ...pipelineCommands(ctx),
    ...taskCommands(ctx),
    ...agentCommands(ctx),
    ...metricsCommands(ctx),
    [COMMANDS.refresh]: () => {
      tasks.refresh();
      return Promise.resolve();
    },
  });
  // After activation, not in it: open the engine, set the context keys, resume a run cut by a reload.
  const ready = new Promise<void>((resolve) => setTimeout(() => void startUp(session, log).finally(resolve), 0));
  return {
    session,
    tasks,
    agents,
    statusBar,
    ready,
    get metricsPanel() {
      return MetricsPanel.instance;
    },
    activationMs: performance.now() - started,
  };
}

async function startUp(session: PipelineSession, log: vscode.LogOutputChannel): Promise<void> {
  try {
    await session.updateContext();
    if (!(await session.isInitialised())) return;
    await session.open();
    await session.resumeIfWasRunning();
  } catch (e) {
    log.error(`Agent Pipeline could not open the pipeline: ${describe(e)}`);
    void vscode.window.showErrorMessage(`Agent Pipeline: ${isPipelineError(e) ? e.message : describe(e)}`, 'Show Log').then((c) => c && log.show());
  }
}

/** One loop over the handlers; an error becomes a message that says what to do, and a log line. */
function registerCommands(context: vscode.ExtensionContext, log: vscode.LogOutputChannel, handlers: Handlers): void {
  for (const [id, handler] of Object.entries(handlers)) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
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
}

function describe(e: unknown): string {
  return isPipelineError(e) ? e.describe() : e instanceof Error ? (e.stack ?? e.message) : String(e);
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
