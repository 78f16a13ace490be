import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { CONTEXT } from '../../../src/contributions';
import { extensionUnderTest, pipelineApi, tooltipOf, waitFor, within } from './extensionUnderTest';
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

    t.it('api.ready resolves and the engine is open, following until started', async () => {
      const api = extensionUnderTest().exports;
      await within(api.ready, 'api.ready');
      assert.ok(api.session.current, 'the session opened the engine during start-up');
      assert.equal(api.session.running, false);
      assert.equal(api.session.current.isLeader, false, 'a window follows until the pipeline is started in it');
      assert.ok(api.activationMs >= 0 && api.activationMs < 1000, `activate() took ${api.activationMs} ms`);
    });

    t.it('sets the context keys: initialised, not running, not leading', async () => {
      const api = await pipelineApi();
      // VS Code has no API that reads a context key: the session keeps the values it last sent (it
      // sends one only when it changed), and the UI tests see their effect on menus and welcome views.
      await api.session.updateContext();
      const set = api.session.contextValues;
      assert.equal(set.get(CONTEXT.initialised), true);
      assert.equal(set.get(CONTEXT.running), false);
      assert.equal(set.get(CONTEXT.leading), false);
      assert.equal(set.get(CONTEXT.followingOther), false);
    });

    t.it('the status bar item shows the orchestration and rollout modes', async () => {
      const api = await pipelineApi();
      await waitFor(
        () => api.statusBar.item.text.includes('parallel · production'),
        () => `the status bar to show the modes (it shows "${api.statusBar.item.text}")`,
      );
      assert.match(api.statusBar.item.text, /parallel · production · 0\/0 busy · 0 waiting/);
      assert.equal(api.statusBar.item.command, 'agentPipeline.showStatus');
      assert.match(tooltipOf(api.statusBar.item) ?? '', /Agent Pipeline: stopped/);
    });
  });
}
