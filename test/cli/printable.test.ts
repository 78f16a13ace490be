import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonText, printable, table } from '../../src/cli/output';

/** The CLI's one helper for text it did not write: control characters shown, never sent raw. */

test('printable shows control characters as escapes; multiline keeps line breaks and tabs', () => {
  assert.equal(printable('a\u001b[2Jb\u0007'), 'a\\x1b[2Jb\\x07');
  assert.equal(printable('one\ntwo\tthree\r'), 'one\\ntwo\\tthree\\r');
  assert.equal(printable('one\ntwo\tthree\r', { multiline: true }), 'one\ntwo\tthree\\r');
  assert.equal(printable('\u009b31m\u007f\u202eevil\u2066'), '\\x9b31m\\x7f\\u202eevil\\u2066');
  assert.equal(printable('plain text — with ünïcode ✓'), 'plain text — with ünïcode ✓');
  // Idempotent: what it prints has nothing left to escape.
  assert.equal(printable(printable('\u001b]0;x\u0007')), printable('\u001b]0;x\u0007'));
});

test('jsonText parses back to the exact value, with nothing raw a terminal would act on', () => {
  const value = { title: 'a\u001b[2J\u009b\u202e\u2028b', n: 1 };
  const text = jsonText(value, 2);
  assert.deepEqual(JSON.parse(text), value);
  // eslint-disable-next-line no-control-regex -- looking for control characters is the point.
  assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u202e]/);
  assert.match(text, /\\u009b\\u202e\\u2028/);
});

test('table cells stay on one line each', () => {
  assert.equal(table(['ID', 'TITLE'], [['T-1', 'two\nlines']]), 'ID   TITLE\nT-1  two\\nlines');
});
