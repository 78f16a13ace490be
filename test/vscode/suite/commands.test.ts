import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { extensionUnderTest } from './extensionUnderTest';
import type { TestApi } from './harness';

interface ContributedCommand {
  command: string;
  title: string;
}

function contributedCommands(): ContributedCommand[] {
  const manifest = extensionUnderTest().packageJSON as { contributes?: { commands?: ContributedCommand[] } };
  return manifest.contributes?.commands ?? [];
}

export function commandTests(t: TestApi): void {
  t.describe('commands', () => {
    t.it('every command in package.json is registered', async () => {
      await extensionUnderTest().activate();
      const registered = new Set(await vscode.commands.getCommands(true));
      const contributed = contributedCommands().map((c) => c.command);
      assert.ok(contributed.length > 0, 'package.json contributes commands');
      assert.deepEqual(contributed.filter((id) => !registered.has(id)), [], 'contributed but not registered');
    });

    t.it('agentPipeline.showStatus runs', async () => {
      await extensionUnderTest().activate();
      await vscode.commands.executeCommand('agentPipeline.showStatus');
    });
  });
}
