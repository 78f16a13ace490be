import * as assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { extensionUnderTest, pipelineApi, recordErrorMessages, runAnswering } from './extensionUnderTest';
import type { TestApi } from './harness';

/**
 * The suite for a second window: a plain git repository (no pipeline yet) opened in restricted mode,
 * with workspace trust on. It initialises a pipeline from the palette command, then sees that agents
 * never start there.
 */
export function untrustedTests(t: TestApi): void {
  t.describe('untrusted workspace without a pipeline', () => {
    t.it('the workspace is not trusted, has no pipeline, and the extension has not activated', () => {
      assert.equal(vscode.workspace.isTrusted, false);
      assert.equal(vscode.workspace.workspaceFolders?.length, 1);
      assert.equal(extensionUnderTest().isActive, false, 'nothing asked for the extension yet');
    });

    t.it('agentPipeline.init activates the extension and initialises .pipeline/ (no agents for now)', async () => {
      const root = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
      const errors = recordErrorMessages();
      try {
        await runAnswering('agentPipeline.init', [], 'accept');
      } finally {
        errors.dispose();
      }
      assert.deepEqual(errors.messages, []);
      assert.ok((await stat(join(root, '.pipeline', 'config.json'))).isFile(), '.pipeline/config.json was written');
      const api = await pipelineApi();
      assert.equal(await api.session.isInitialised(), true);
      const p = api.session.current;
      assert.ok(p, 'the engine is open');
      assert.deepEqual(
        p.config.stages.map((s) => s.name),
        ['architect', 'test', 'implementation', 'supervisor'],
      );
      assert.equal(p.config.targetBranch, 'main');
      assert.deepEqual(Object.keys(p.state.agents), []);
    });

    t.it('agentPipeline.start is refused: no agent starts, nothing leads, the message says why', async () => {
      const api = await pipelineApi();
      const p = await api.session.open();
      await p.addAgent({ id: 'architect', role: 'architect', command: 'scripted' });
      await p.addTasks([{ spec: { id: 'TASK-001', title: 'Never started here' }, source: 'in-host test' }]);
      const terminalsBefore = vscode.window.terminals.length;
      const errors = recordErrorMessages();
      try {
        await vscode.commands.executeCommand('agentPipeline.start');
      } finally {
        errors.dispose();
      }
      assert.equal(errors.messages.length, 1, `error messages: ${JSON.stringify(errors.messages)}`);
      assert.match(errors.messages[0]!, /Agents never start in an untrusted workspace\. Trust this workspace/);
      assert.equal(api.session.running, false);
      assert.equal(p.isLeader, false);
      assert.equal(p.state.tasks['TASK-001']?.status, 'pending', 'not queued: nothing leads');
      assert.equal(p.state.agents.architect?.status, 'idle');
      assert.equal(vscode.window.terminals.length, terminalsBefore, 'no terminal was opened');
      await assert.rejects(api.session.start(), /untrusted workspace/);
    });
  });
}
