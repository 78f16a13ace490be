import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QUEUE_IDS_SHOWN, queueText } from '../../src/cli/statusCommands';

/** How `pipeline status` prints a queue: every id of a short one, the first ones and a count of a long one. */

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `TASK-${String(i + 1).padStart(3, '0')}`);

test('an empty queue is a dash; a queue up to the limit lists every id', () => {
  assert.equal(queueText('unassigned', []), '-');
  assert.equal(queueText('architect', ['TASK-001', 'TASK-002']), 'TASK-001 TASK-002');
  assert.equal(queueText('completed', ids(QUEUE_IDS_SHOWN)), ids(QUEUE_IDS_SHOWN).join(' '));
});

test('a longer queue lists the first ids, counts the rest, and names the command that lists them all', () => {
  const all = ids(2905);
  const text = queueText('completed', all);
  assert.ok(text.startsWith(`${all.slice(0, QUEUE_IDS_SHOWN).join(' ')} and ${2905 - QUEUE_IDS_SHOWN} more`), text);
  assert.match(text, /\(2905 in all: `pipeline task list --status done` lists them\)$/);
  assert.doesNotMatch(text, new RegExp(`\\b${all[QUEUE_IDS_SHOWN]}\\b`), 'the first id past the limit is not printed');
  // A stage's queue holds tasks of several statuses: the JSON has them all.
  assert.match(queueText('architect', ids(21)), /\(21 in all: `pipeline status --json` lists them\)$/);
  assert.match(queueText('unassigned', ids(30)), /`pipeline task list --status pending`/);
  assert.match(queueText('cancelled', ids(30)), /`pipeline task list --status cancelled`/);
});
