import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { extensionUnderTest, waitFor } from './extensionUnderTest';
import type { TestApi } from './harness';

export function activationTests(t: TestApi): void {
  t.describe('activation', () => {
    t.it('opens the test workspace, which has .pipeline/config.json', async () => {
      const folder = vscode.workspace.workspaceFolders?.[0];
      assert.ok(folder, 'a workspace folder is open');
      const stat = await vscode.workspace.fs.stat(vscode.Uri.joinPath(folder.uri, '.pipeline', 'config.json'));
      assert.equal(stat.type, vscode.FileType.File);
    });

    t.it('the extension is loaded from the development path', () => {
      const extension = extensionUnderTest();
      const manifest = extension.packageJSON as { main?: unknown };
      assert.equal(manifest.main, './dist/extension.js');
    });

    t.it('activates by itself on workspaceContains:.pipeline/config.json', async () => {
      // Not calling activate(): that would hide a broken activation event.
      const extension = extensionUnderTest();
      await waitFor(() => extension.isActive, 'the extension to activate');
    });

    t.it('activate() resolves without error', async () => {
      await extensionUnderTest().activate();
    });
  });
}
