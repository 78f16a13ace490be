import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelAction, ModelServer, ScriptedModel } from '../support/modelServers/scriptedModel';
import { always, FIXED_MODEL, geminiInstalled, makeStageSandbox, playGemini } from '../support/geminiKit';

/**
 * What the Gemini adapter lets the real Gemini CLI 0.61.0 do (its approval mode and policy file), and
 * how a runner stops it. The two runs are independent and run side by side.
 */

const skip = geminiInstalled() ? false : 'the pinned Gemini CLI is not installed: node scripts/agentClis/install.mjs';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('Gemini CLI 0.61.0 under the adapter’s policy', { skip, concurrency: true }, () => {
  test('the policy keeps it in its worktree: no write outside, no git push, a configured deny', async () => {
    let outside = '';
    const model: ScriptedModel = (turn) => {
      const steps: ModelAction[] = [
        { kind: 'write', path: outside, content: 'escaped\n' },
        { kind: 'shell', command: 'git push origin HEAD' },
        { kind: 'shell', command: 'rm README.md' },
        { kind: 'shell', command: 'git status --short --branch' },
      ];
      return { action: steps[turn.toolResults.length] ?? { kind: 'text', text: 'Done.' } };
    };
    const sb0 = await makeStageSandbox();
    closers.push(() => sb0.cleanup());
    outside = join(sb0.root, 'outside.txt');
    const { sb, run, turns, close } = await playGemini(model, { deny: ['run_shell_command(rm)'] });
    closers.push(close);
    assert.equal(run.code, 0, run.stderr);
    const results = turns.at(-1)!.toolResults;
    assert.equal(results.length, 4);
    assert.match(results[0]!, /workspace|outside/i);
    assert.equal(existsSync(outside), false);
    assert.match(results[1]!, /Not allowed for pipeline agents/);
    assert.match(results[2]!, /Not allowed for pipeline agents/);
    assert.ok(existsSync(join(sb.worktree, 'README.md')));
    assert.match(results[3]!, /## pipeline\/TASK-001/);
  });

  test('SIGTERM to its pid stops it (one process: GEMINI_CLI_NO_RELAUNCH)', async () => {
    let server: ModelServer | undefined;
    let watch: NodeJS.Timeout | undefined;
    let stoppedAt = 0;
    const { run, close } = await playGemini(always({ kind: 'hang' }), {
      extraArgs: FIXED_MODEL,
      timeoutMs: 60_000,
      withServer: (s) => (server = s),
      onSpawn: (stop) => {
        // Stop it once its request is held open: it is then waiting on the model, as a stuck agent is.
        watch = setInterval(() => {
          if (!server?.requests.length) return;
          clearInterval(watch);
          stoppedAt = Date.now();
          stop('SIGTERM');
        }, 50);
      },
    });
    clearInterval(watch);
    closers.push(close);
    assert.ok(stoppedAt > 0, 'the request arrived');
    assert.notEqual(run.signal, 'SIGKILL', 'it ended on SIGTERM, not on the timeout');
    assert.ok(Date.now() - stoppedAt < 20_000);
  });
});
