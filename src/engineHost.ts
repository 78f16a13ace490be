import * as vscode from 'vscode';
import { agentCommands } from './views/commands/agentCommands';
import type { Handlers } from './views/commands/commandContext';
import { pipelineCommands } from './views/commands/pipelineCommands';
import { reviewCommands } from './views/commands/reviewCommands';
import { taskCommands } from './views/commands/taskCommands';
import { TaskDiffProvider } from './views/diffProvider';
import { MetricsPanel, metricsCommands } from './views/metricsPanel';
import { notifyFromEvents } from './views/notifications';
import { PipelineSession } from './host/pipelineSession';

/**
 * The second half of the composition root (src/extension.ts is the first): everything of the
 * extension that needs the engine (zod, the store, the scheduler, git, metrics), bundled apart as
 * dist/engineHost.js and loaded right after activation, so activation itself loads only the views.
 * `createHost` builds the session (src/host/), the command handlers and the diff provider
 * (src/views/), and wires notifications to the engine's events.
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
    handlers: {
      ...pipelineCommands(ctx),
      ...taskCommands(ctx),
      ...reviewCommands(ctx),
      ...agentCommands(ctx),
      ...metricsCommands(ctx),
    },
    diff: new TaskDiffProvider(() => session.root),
    revivePanel: (panel) => MetricsPanel.revive(panel, session, context.extensionUri),
    metricsPanel: () => MetricsPanel.instance,
  };
}
