import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { cli, fails, json, ok, requireCli, shown, withRepo } from './cliKit';

/**
 * Text from users and agents (titles, descriptions, reasons, commands) reaches the terminal through
 * the CLI. Escape sequences in it are shown, never sent raw: a title with ESC [ 2 J must not clear
 * the screen, an OSC sequence must not set the window title or plant a link. `--json` keeps the
 * exact text (JSON escapes it).
 */

requireCli();

const ESC = '\u001b';
const BEL = '\u0007';
const CSI8 = '\u009b';
const RLO = '\u202e';
/** Clears the screen, sets the window title (OSC 0), then an 8-bit CSI and a right-to-left override. */
const NASTY = `${ESC}[2J${ESC}]0;pwned${BEL}Fix${CSI8}31m the${RLO}parser`;

/** No byte a terminal would act on: C0 controls other than line breaks, DEL, C1, bidi overrides. */
function assertInert(text: string, what: string): void {
  // eslint-disable-next-line no-control-regex -- looking for control characters is the point.
  const bad = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u.exec(text);
  assert.equal(
    bad,
    null,
    `${what} printed a raw control character ${JSON.stringify(bad?.[0])}:\n${JSON.stringify(text)}`,
  );
}

test('titles, descriptions, reasons and agent commands with escape sequences are shown, not obeyed; --json keeps them exact', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const descFile = join(dir, 'desc.md');
    await writeFile(
      descFile,
      `First line\n${ESC}]8;;https://evil.example/${ESC}\\click${ESC}]8;;${ESC}\\\nlast line\n`,
    );
    const added = await ok(dir, 'task', 'add', NASTY, '--description-file', descFile);
    assertInert(added, 'task add');
    // Shown visibly, so the user sees that the title holds an escape sequence.
    assert.ok(added.includes('\\x1b[2J\\x1b]0;pwned\\x07Fix\\x9b31m the\\u202eparser'), added);

    await ok(dir, 'task', 'add', 'Second', '--depends-on', 'TASK-001');
    const blocked = await ok(dir, 'task', 'block', 'TASK-001', `waiting${ESC}[1A${ESC}[2Kfor keys\nforged line`);
    assertInert(blocked, 'task block');
    assert.ok(blocked.includes('waiting\\x1b[1A\\x1b[2Kfor keys\\nforged line'), blocked);

    const list = await ok(dir, 'task', 'list');
    assertInert(list, 'task list');
    assert.equal(list.trim().split('\n').length, 3, `one line per task, and the header:\n${list}`);

    for (const id of ['TASK-001', 'TASK-002']) {
      const show = await ok(dir, 'task', 'show', id);
      assertInert(show, `task show ${id}`);
    }
    const show = await ok(dir, 'task', 'show', 'TASK-001');
    // The description keeps its lines; only what a terminal would act on is escaped.
    assert.ok(show.includes('\nFirst line\n\\x1b]8;;https://evil.example/\\x1b\\click'), show);

    mentions(
      await ok(dir, 'agent', 'add', 'tester', '--role', 'tester', '--command', `echo ${ESC}[31mred`),
      '\\x1b[31mred',
    );
    const agents = await ok(dir, 'agent', 'list');
    assertInert(agents, 'agent list');

    // The dry run explains why TASK-002 waits, quoting the blocked reason.
    const dry = await ok(dir, 'run', '--dry');
    assertInert(dry, 'run --dry');

    // A run (no agent can take anything): its progress and its idle report quote the reason too.
    const run = await cli(dir, ['run', '--until-idle']);
    assert.equal(run.code, 1, shown(run));
    assertInert(run.stdout + run.stderr, 'run --until-idle');
    assert.match(run.stdout, /blocked: waiting\\x1b\[1A/, run.stdout);

    // Errors that repeat what was typed.
    const err = await fails(dir, 2, 'task', 'list', '--status', `x${ESC}[2J`);
    assertInert(err, 'an error');
    const unknownOption = await cli(dir, ['task', 'list', `--${ESC}[2J`]);
    assert.notEqual(unknownOption.code, 0, shown(unknownOption));
    assertInert(unknownOption.stderr, "commander's error");

    // JSON: exactly the text, escaped by JSON itself.
    const tasks = await json<Array<{ title: string; blocked_reason: string | null; description: string }>>(
      dir,
      'task',
      'list',
      '--json',
    );
    assert.equal(tasks[0]?.title, NASTY);
    assert.equal(tasks[0]?.blocked_reason, `waiting${ESC}[1A${ESC}[2Kfor keys\nforged line`);
    const raw = await ok(dir, 'status', '--json');
    assertInert(raw, 'status --json');
    assert.equal((JSON.parse(raw) as { tasks: Record<string, { title: string }> }).tasks['TASK-001']?.title, NASTY);
  });
});

function mentions(text: string, needle: string): void {
  assert.ok(text.includes(needle), `expected ${JSON.stringify(needle)} in:\n${text}`);
}
