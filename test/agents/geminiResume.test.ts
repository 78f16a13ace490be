import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { geminiAdapter } from '../../src/engine/agents/cli/geminiAdapter';
import type { ScriptedModel } from '../support/modelServers/scriptedModel';
import { geminiInstalled, playGemini, runGemini, streamEvents } from '../support/geminiKit';

/** Gemini CLI 0.61.0 resumes a session by the id its stream-json `init` event gives. */

const skip = geminiInstalled() ? false : 'the pinned Gemini CLI is not installed: node scripts/agentClis/install.mjs';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('Gemini CLI 0.61.0 sessions', { skip }, () => {
  test('a session resumes by the id its init event gave (--resume <session_id>)', async () => {
    const model: ScriptedModel = (turn) => ({
      action:
        turn.toolResults.length === 0
          ? { kind: 'read', path: 'README.md' }
          : { kind: 'text', text: `seen ${turn.toolResults.length}` },
    });
    const first = await playGemini(model);
    closers.push(first.close);
    assert.equal(first.run.code, 0, first.run.stderr);
    const sessionId = String(streamEvents(first.run.stdout).find((e) => e['type'] === 'init')?.['session_id']);
    const inv = geminiAdapter.invocation({
      ...first.ctx,
      prompt: 'Go on.',
      permissions: { allow: [], deny: [], extraArgs: ['--resume', sessionId] },
    });
    const before = first.server.requests.length;
    // Same HOME and folder: Gemini CLI keeps sessions per project under ~/.gemini/tmp/.
    const again = await runGemini(inv, {
      cwd: first.sb.worktree,
      home: first.sb.home,
      tmpDir: first.sb.tmp,
      baseUrl: first.server.url,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(streamEvents(again.stdout).find((e) => e['type'] === 'init')?.['session_id'], sessionId);
    const resumed = first.server.requests.slice(before).filter((r) => r.path.includes(':streamGenerateContent'));
    assert.equal(resumed.length, 1);
    assert.equal(resumed[0]!.prompt, first.ctx.prompt, 'the first run’s prompt opens the conversation');
    // 0.61.0 sends the restored tool result twice (one functionCall, two functionResponses).
    assert.ok(resumed[0]!.toolResults.length >= 1);
    assert.ok(resumed[0]!.toolResults.every((r) => r === '# sample\n'));
  });
});
