import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adapterFor } from '../../../src/engine/agents/cli/agentCliRegistry';
import { lastLines, screenText } from '../../../src/engine/monitor/attemptOutput';

/**
 * An agent in a terminal draws its screen with cursor moves. What the monitor reads of it (the words
 * a failure quotes, what an adapter classifies) must be the text a person sees, not words run
 * together. The samples are Claude Code's own drawing, as its interactive interface wrote it to an
 * agent's log.
 */

const ESC = '\x1b';

void test('cursor moves along a line read as gaps, moves to other lines as line breaks, colours and modes as nothing', () => {
  const drawn =
    `${ESC}7${ESC}[r${ESC}8${ESC}[?25h${ESC}]0;✳ Claude Code\x07${ESC}[?2026h${ESC}[H\r${ESC}[2C${ESC}[1B⏵⏵${ESC}[6Gaccept${ESC}[13Gedits${ESC}[19Gon` +
    `${ESC}[30;1H${ESC}[28;3H${ESC}(B\x0f${ESC}[1;32m●${ESC}[0m${ESC}[3GDone.`;
  const text = screenText(drawn);
  assert.match(text, /⏵⏵ accept edits on/);
  assert.match(text, /● Done\./);
  assert.ok(![...text].some((c) => c < ' ' && c !== '\n'), 'no control characters are left');
  assert.doesNotMatch(text, /Claude Code/, 'the window title is not on the screen');
  assert.equal(lastLines(drawn, 2), '⏵⏵ accept edits on | ● Done.');
});

void test('text without escapes is unchanged, so a headless CLI’s JSON stream reads as before', () => {
  const stream = '{"type":"result","result":"API Error: 429 {\\"error\\":\\"\\u001b[31m\\"}"}\n';
  assert.equal(screenText(stream), stream);
});

void test("Claude Code's usage limit, drawn in its interface, is classified as a limit with its reset time", () => {
  const drawn =
    `${ESC}[?2026h${ESC}[H\r${ESC}[19B●${ESC}[3GClaude${ESC}[10GAI${ESC}[13Gusage${ESC}[19Glimit${ESC}[25Greached|1893456000` +
    `\r${ESC}[1B${ESC}[2C⎿${ESC}[6GPress${ESC}[12GCtrl-C${ESC}[19Gto${ESC}[22Gexit${ESC}[30;1H`;
  const claude = adapterFor('claude');
  assert.ok(claude);
  assert.equal(claude.classify({ code: 1, signal: null }, drawn), null, 'run together, the words are not recognised');
  const failure = claude.classify({ code: 1, signal: null }, screenText(drawn));
  assert.equal(failure?.kind, 'limit');
  assert.equal(failure?.resetAt, 1893456000 * 1000);
});
