import * as vscode from 'vscode';
import { agentCommands } from './commands/agentCommands';
import type { Handlers } from './commands/commandContext';
import { pipelineCommands } from './commands/pipelineCommands';
import { taskCommands } from './commands/taskCommands';
import { TaskDiffProvider } from './diffProvider';
import { MetricsPanel, metricsCommands } from './metricsPanel';
import { notifyFromEvents } from './notifications';
import { PipelineSession } from './pipelineSession';

/**
 * Everything of the extension that needs the engine (zod, the store, the scheduler, git, metrics),
 * bundled apart (dist/engineHost.js) and loaded right after activation, so activation itself loads
 * only the views. `createHost` builds the session and the command handlers and wires notifications.
 */
export interface EngineHost {
  session: PipelineSession;
  handlers: Handlers;
  diff: TaskDiffProvider;
  revivePanel(panel: vscode.WebviewPanel): void;
  metricsPanel(): MetricsPanel | undefined;
}

export function createHost(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): EngineHost {
  const session = new PipelineSession(context, log);
  const ctx = { session, extension: context };
  context.subscriptions.push(
    session,
    session.onDidOpen((p) => context.subscriptions.push(notifyFromEvents(p, () => session.running))),
  );
  return {
    session,
    handlers: { ...pipelineCommands(ctx), ...taskCommands(ctx), ...agentCommands(ctx), ...metricsCommands(ctx) },
    diff: new TaskDiffProvider(() => session.root),
    revivePanel: (panel) => MetricsPanel.revive(panel, session, context.extensionUri),
    metricsPanel: () => MetricsPanel.instance,
  };
}
