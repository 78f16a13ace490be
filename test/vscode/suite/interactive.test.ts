import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { worktreeRootOf } from '../../../src/engine/home/pipelineHome';
import { startAnthropicServer } from '../../support/modelServers/anthropicServer';
import type { ModelServer } from '../../support/modelServers/scriptedModel';
import { stageModel } from '../../support/modelServers/stageModel';
import { extensionUnderTest, openPipeline, pipelineApi, waitFor } from './extensionUnderTest';
import type { TestApi } from './harness';

/**
 * An agent set to `interactive` runs Claude Code's own interface in its integrated terminal, where a
 * person can watch it and type to it: the real, pinned CLI, against our scripted Anthropic server on
 * 127.0.0.1, takes the architect stage of a task, writes its marker, and the task moves on through
 * the scripted agents' stages to its merge. The monitor ends the session after the marker.
 *
 * Claude Code's interface asks three things on a first start that a person answers once (the user's
 * own `~/.claude.json` remembers them): the onboarding, "use this API key?" and "trust this folder?".
 * The test's HOME has them answered, as a user's would; the terminals get it, the server's address and
 * the key through `terminal.integrated.env.linux`, the environment a user gives their terminals.
 */

const KEY = 'sk-ant-test-key-interactive-0123456789';

export function interactiveTests(t: TestApi): void {
  t.describe('an interactive Claude Code agent in a terminal', () => {
    let server: ModelServer | undefined;
    let home: string | undefined;

    t.it(
      'takes the architect stage in its own interface, writes its marker, and the task moves on to its merge',
      async () => {
        const api = await pipelineApi();
        const p = await openPipeline();
        const bin = join(extensionUnderTest().extensionPath, '.agent-clis', 'node_modules', '.bin');
        assert.ok(existsSync(join(bin, 'claude')), `the pinned Claude Code is installed in ${bin}`);
        server = await startAnthropicServer(stageModel());
        home = await mkdtemp(join(tmpdir(), 'interactive-claude-home-'));
        const worktree = join(worktreeRootOf(p.home, p.config.worktreeRoot), 'claude-1');
        await writeFile(
          join(home, '.claude.json'),
          JSON.stringify({
            hasCompletedOnboarding: true,
            // Claude Code remembers a key a person approved by its last 20 characters.
            customApiKeyResponses: { approved: [KEY.slice(-20)], rejected: [] },
            projects: { [worktree]: { hasTrustDialogAccepted: true } },
          }),
        );
        await mkdir(join(home, '.claude'), { recursive: true });
        await vscode.workspace.getConfiguration('terminal.integrated').update(
          'env.linux',
          {
            HOME: home,
            PATH: `${bin}:\${env:PATH}`,
            ANTHROPIC_BASE_URL: server.url,
            ANTHROPIC_API_KEY: KEY,
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
            DISABLE_TELEMETRY: '1',
            DISABLE_ERROR_REPORTING: '1',
            DISABLE_AUTOUPDATER: '1',
          },
          vscode.ConfigurationTarget.Global,
        );

        await p.addAgent({ id: 'claude-1', role: 'architect', command: 'claude' });
        await p.lead();
        const b = p.newBatch();
        b.updateAgent('claude-1', { interactive: true });
        await p.commit(b);
        await p.follow();
        assert.equal(p.state.agents['claude-1']?.interactive, true);

        const opened: vscode.Terminal[] = [];
        const sub = vscode.window.onDidOpenTerminal((terminal) => opened.push(terminal));
        try {
          await vscode.commands.executeCommand('agentPipeline.start');
          assert.equal(api.session.running, true, 'the pipeline runs in this window');
          await waitFor(
            () => {
              const task = p.state.tasks['TASK-001'];
              if (task?.status === 'blocked') throw new Error(`TASK-001 was blocked: ${task.blocked_reason ?? ''}`);
              return task?.status === 'done';
            },
            () => {
              const task = p.state.tasks['TASK-001'];
              return `TASK-001 to be merged (it is ${task?.status} at ${task?.stage}; ${server?.requests.length} model requests)`;
            },
            100_000,
          );
        } finally {
          sub.dispose();
        }

        const task = p.state.tasks['TASK-001']!;
        const architect = task.history.find((h) => h.event === 'assign' && h.stage === 'architect');
        assert.equal(architect?.agent, 'claude-1');
        assert.ok(
          opened.some((x) => x.name === 'Agent claude-1 (architect) · TASK-001'),
          `the agent's terminal opened (opened: ${opened.map((x) => x.name).join('; ')})`,
        );
        // The stage was the model's work through Claude Code's tools: read, write, test, commit, marker.
        const requests = server.requests.filter((r) => r.prompt.includes('TASK-001.attempt-1.md'));
        assert.deepEqual(
          requests.map((r) => r.action.kind),
          ['read', 'write', 'shell', 'shell', 'shell', 'text'].slice(0, requests.length),
        );
        assert.ok(requests.length >= 5, `the model was asked ${requests.length} times`);
        const taskFile = join(worktree, '.pipeline-task', 'TASK-001.attempt-1.md');
        assert.match(await readFile(taskFile, 'utf8'), /^## Status: COMPLETED ✅$/m);
        // Its own interface, not a headless run: its prompt box and mode line, drawn in a terminal,
        // are in the log; the command had no -p.
        const log = await readFile(join(p.home.root, '.pipeline', 'logs', 'agents', 'claude-1.log'), 'utf8');
        assert.match(log, /claude --permission-mode acceptEdits --settings/);
        assert.doesNotMatch(log, /claude -p /);
        // Claude Code draws with cursor moves as often as with spaces ("accept\x1B[13Gedits"): read
        // the screen text with every control sequence taken as a gap.
        // eslint-disable-next-line no-control-regex -- terminal escape sequences are what this reads
        const screenText = log.replace(/\x1B\[[0-9;?>]*[A-Za-z]/g, ' ').replace(/\s+/g, ' ');
        assert.match(screenText, /accept edits on/);
        // The monitor ended the session after the marker: Claude Code exited by itself (twice Ctrl-C,
        // status 0), nothing of it is left in the worktree, and its terminal still shows the session.
        const exitFile = join(p.home.dir, 'run', 'claude-1.TASK-001.attempt-1.exit');
        await waitFor(
          async () => (await readFile(exitFile, 'utf8').catch(() => '')).trim() === '0',
          'Claude Code to exit with status 0 after the marker',
          30_000,
        );
        await waitFor(async () => !(await claudeRunningIn(worktree)), 'no Claude Code left in the worktree', 30_000);
        const terminal = opened.find((x) => x.name === 'Agent claude-1 (architect) · TASK-001');
        assert.equal(terminal?.exitStatus, undefined, "the agent's terminal stays open");
      },
      { timeoutMs: 150_000 },
    );

    t.it('stops, and leaves the terminal settings as they were', async () => {
      await vscode.commands.executeCommand('agentPipeline.stop');
      await vscode.workspace
        .getConfiguration('terminal.integrated')
        .update('env.linux', undefined, vscode.ConfigurationTarget.Global);
      await server?.close();
      if (home) await rm(home, { recursive: true, force: true });
      assert.equal((await pipelineApi()).session.running, false);
    });
  });
}

/** Whether a Claude Code process has `dir` as its working directory (Linux's /proc). */
async function claudeRunningIn(dir: string): Promise<boolean> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('claude')) continue;
      if ((await readlink(`/proc/${pid}/cwd`)) === dir) return true;
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return false;
}
