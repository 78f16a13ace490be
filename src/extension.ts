import * as vscode from 'vscode';

/** The composition root: builds the engine and the views and wires them. */
export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('agentPipeline.showStatus', () => {
      void vscode.window.showInformationMessage('Agent Pipeline is active.');
    }),
  );
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
