import * as vscode from 'vscode';
import type { Disposable } from '../engine/model/events';
import { awaitingReview } from '../engine/model/humanStage';
import type { Pipeline } from '../engine/pipeline';
import { COMMANDS, SETTINGS } from '../contributions';

/**
 * Notifications that name the task, the agent and the reason, with the actions that help: open the
 * task file, show the diff, retry, review. Only the window that runs the pipeline notifies, so several
 * windows on one repository do not all speak at once.
 */
export function notifyFromEvents(p: Pipeline, running: () => boolean): Disposable {
  return p.events.on('task:transition', ({ before, after, event }) => {
    if (!running()) return;
    const name = `${after.id} (${after.title})`;
    const agent = before.assigned_to ? ` by ${before.assigned_to}` : '';
    const act = (msg: string, kind: 'info' | 'warn' | 'error', actions: [string, string][]) => {
      const show =
        kind === 'error'
          ? vscode.window.showErrorMessage
          : kind === 'warn'
            ? vscode.window.showWarningMessage
            : vscode.window.showInformationMessage;
      void show(msg, ...actions.map((a) => a[0])).then((picked) => {
        const a = actions.find((x) => x[0] === picked);
        if (a) void vscode.commands.executeCommand(a[1], after.id);
      });
    };
    // Arrived at a human stage (after the stage before it, or released from blocked): a person's turn.
    if (awaitingReview(after, p.config) && !awaitingReview(before, p.config))
      return act(`${after.id} awaits your review: ${after.title}`, 'info', [['Review', COMMANDS.reviewTask]]);
    switch (event.type) {
      case 'block':
        return act(`${name} is blocked${agent}: ${event.reason}`, 'error', [
          ['Open Task', COMMANDS.openTaskFile],
          ['Retry', COMMANDS.retryTask],
        ]);
      case 'changes_requested':
        return act(`${name}: changes requested${agent}: ${event.reason}`, 'warn', [
          ['Open Task', COMMANDS.openTaskFile],
          ['Show Diff', COMMANDS.showTaskDiff],
        ]);
      case 'conflict':
        return act(
          `${name} conflicts with ${after.stage === 'implementation' ? 'the target branch' : 'its target'} in ${event.files.join(', ')}; sent back to ${after.stage}.`,
          'warn',
          [['Show Diff', COMMANDS.showTaskDiff]],
        );
      case 'fail':
        return act(`${name}: attempt failed${agent}: ${event.reason}. It will be retried.`, 'warn', [
          ['Open Task', COMMANDS.openTaskFile],
        ]);
      case 'merged':
        if (!vscode.workspace.getConfiguration(SETTINGS.section).get<boolean>(SETTINGS.notifyMerged, true)) return;
        return act(`${name} merged (${event.commit.slice(0, 10)}).`, 'info', [['Show Diff', COMMANDS.showTaskDiff]]);
      default:
        return;
    }
  });
}
