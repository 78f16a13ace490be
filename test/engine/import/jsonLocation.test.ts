import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  findJsonProblem,
  formatJsonPath,
  lineColumn,
  parseJsonPath,
  placeOfPath,
} from '../../../src/engine/import/jsonLocation';
import { generateTaskMasterJson, mulberry32 } from './generateTaskMaster';

/** The JSON scanner must agree with JSON.parse on what is JSON, or its line:column would mislead. */

void test('formatJsonPath: bare keys, quoted odd keys, indexes', () => {
  assert.equal(formatJsonPath([]), '(top level)');
  assert.equal(formatJsonPath(['master', 'tasks', 3, 'subtasks', 1]), 'master.tasks[3].subtasks[1]');
  assert.equal(formatJsonPath(['feature-x', 'tasks', 0]), 'feature-x.tasks[0]');
  assert.equal(formatJsonPath(['tasks', 'TASK-001', 'status']), 'tasks.TASK-001.status');
  assert.equal(formatJsonPath(['tasks', 'a b', 'x']), 'tasks["a b"].x');
  assert.equal(formatJsonPath(['1st', 'x']), '["1st"].x');
});

void test('lineColumn counts from 1, lines by \\n', () => {
  const text = 'ab\ncd\r\nef';
  assert.deepEqual(lineColumn(text, 0), { line: 1, column: 1 });
  assert.deepEqual(lineColumn(text, 2), { line: 1, column: 3 });
  assert.deepEqual(lineColumn(text, 3), { line: 2, column: 1 });
  assert.deepEqual(lineColumn(text, 7), { line: 3, column: 1 });
  assert.deepEqual(lineColumn(text, 9), { line: 3, column: 3 });
});

void test('valid JSON of every kind passes the scanner', () => {
  const samples = [
    '0',
    '-0.5e+10',
    '"\\u00e9\\n\\"\\/"',
    'true',
    'null',
    '[]',
    '{}',
    ' [ 1 , { "a" : [ false , null ] } ] ',
    JSON.stringify({ deep: Array.from({ length: 5 }, (_, i) => ({ i, s: `x${i}`, n: [i, -i, i / 7] })) }, null, 2),
    `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
    generateTaskMasterJson({ tasks: 30, seed: 3 }),
  ];
  for (const s of samples) assert.equal(findJsonProblem(s), null, s.slice(0, 80));
});

void test('on random damage, the scanner and JSON.parse agree about validity', () => {
  const rnd = mulberry32(42);
  const base = generateTaskMasterJson({ tasks: 4, seed: 9, maxSubtasks: 2 });
  const noise = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', 'a', '0', '-', '.', 'e', 't', 'n', '\u0001', "'"];
  for (let k = 0; k < 2000; k++) {
    let text = base;
    for (let edits = 1 + Math.floor(rnd() * 3); edits > 0; edits--) {
      const at = Math.floor(rnd() * text.length);
      const op = rnd();
      const ch = noise[Math.floor(rnd() * noise.length)] ?? '';
      if (op < 0.4) text = text.slice(0, at) + text.slice(at + 1);
      else if (op < 0.8) text = text.slice(0, at) + ch + text.slice(at);
      else text = text.slice(0, at) + ch + text.slice(at + 1);
    }
    let parses = true;
    try {
      JSON.parse(text);
    } catch {
      parses = false;
    }
    const problem = findJsonProblem(text);
    assert.equal(problem === null, parses, `disagreement on damage ${k}: ${problem?.message ?? 'scanner accepts'}`);
    // The parser itself found the place: V8's own message (the fallback) never stands in for it.
    if (problem) assert.doesNotMatch(problem.message, /JSON at position|is not valid JSON|JSON input/, problem.message);
  }
});

void test('the scanner finds duplicate keys only when asked, with the path of their object', () => {
  const text = '{"tasks": {"A-1": {}, "B-1": {"x": 1, "x": 2}}}';
  assert.equal(findJsonProblem(text), null);
  const p = findJsonProblem(text, { duplicateKeys: true });
  assert.ok(p);
  assert.equal(p.message, 'Duplicate key "x"');
  assert.equal(p.path, 'tasks.B-1');
  assert.equal(p.offset, text.indexOf('"x": 2'));
  // Escaped spellings of one key are the same key.
  assert.equal(findJsonProblem('{"a": 1, "\\u0061": 2}', { duplicateKeys: true })?.message, 'Duplicate key "a"');
  assert.equal(findJsonProblem('[{"a": 1}, {"a": 2}]', { duplicateKeys: true }), null);
});

void test('each kind of fault gets the place and the words of the first problem', () => {
  // [text, offset, message]: what was found at the first place the text stops being JSON.
  const cases: Array<[string, number, string]> = [
    ['[1}', 2, 'Unexpected "}": expected "," or "]"'],
    ['{"a": truex}', 10, 'Unexpected "x": expected "," or "}"'],
    ['nullnull', 4, 'Unexpected "n" after the end of the JSON value'],
    ['{"a": 1.e5}', 8, 'Invalid number: expected a digit after ".", found "e"'],
    ['["a\rb"]', 3, 'Control character in a string (write it as an escape such as \\t)'],
    ['["a\nb"]', 1, 'Unterminated string (a line break inside a string must be written \\n)'],
    ['{"a": 1 // note\n}', 8, 'Unexpected "/": expected "," or "}"'],
    ['/* c */ {}', 0, 'Unexpected "/": expected a value'],
    // A string where none may stand is out of place, whatever is wrong inside it.
    ['{"a": 1 "b\\x"}', 8, 'Unexpected "\\"": expected "," or "}"'],
    ['[-Infinity]', 2, 'Invalid number: expected a digit, found "I"'],
    ['{"a": 0x1F}', 7, 'Unexpected "x": expected "," or "}"'],
    ['{"a":\u000b1}', 5, 'Unexpected "\\u000b": expected a value'],
    ['\uFEFF{}', 0, 'Unexpected "\uFEFF": expected a value'],
    ['{"a": {"b": [1, 2,]}}', 18, 'Unexpected "]": expected a value (a trailing comma is not allowed in JSON)'],
    ['{"a"', 4, 'Unexpected end of file: expected ":" after the property name'],
    ['{', 1, 'Unexpected end of file: expected a property name in double quotes'],
    ['[', 1, 'Unexpected end of file: expected a value'],
    ['{"a": }', 6, 'Unexpected "}": expected a value'],
    ['["\\u00e9", "\\u0G00"]', 12, 'Invalid \\u escape in a string: four hex digits must follow'],
    ['{"k": "\\q"}', 7, 'Invalid escape "\\\\q" in a string'],
  ];
  for (const [text, offset, message] of cases) {
    assert.deepEqual(findJsonProblem(text), { offset, message }, JSON.stringify(text));
  }
  assert.equal(findJsonProblem('{"a": "\\ud800"}'), null, 'a lone surrogate escape is JSON');
});

void test('nesting deeper than the parser can follow still gets a place', () => {
  const deep = '['.repeat(20_000);
  const p = findJsonProblem(deep);
  assert.ok(p);
  assert.equal(p.offset, deep.length);
});

void test('placeOfPath: the line and column of a value, at its key inside an object', () => {
  const text = '{\n  "retry": {\n    "maxAttempts": 0\n  },\n  "stages": [{"name": "x"}]\n}';
  assert.deepEqual(placeOfPath(text, ['retry', 'maxAttempts']), { line: 3, column: 5 });
  assert.deepEqual(placeOfPath(text, ['stages', 0, 'name']), { line: 5, column: 15 });
  assert.deepEqual(placeOfPath(text, ['stages', 0]), { line: 5, column: 14 });
  assert.equal(placeOfPath(text, ['missing']), null);
  assert.equal(placeOfPath('{oops', ['a']), null);
});

void test('parseJsonPath reads back what formatJsonPath writes, and nothing else', () => {
  const paths: Array<Array<string | number>> = [
    ['master', 'tasks', 3, 'subtasks', 1],
    ['feature-x', 'tasks', 0],
    ['tasks', 'TASK-001', 'status'],
    ['tasks', 'a b', 'x'],
    ['1st', 'x'],
    ['q"uote', 'back\\slash', 0],
  ];
  for (const p of paths) assert.deepEqual(parseJsonPath(formatJsonPath(p)), p, formatJsonPath(p));
  for (const text of ['(top level)', '(whole file)', '8:5', 'byte 3', '', '.tasks', 'tasks[x]', 'line 3, column 3'])
    assert.equal(parseJsonPath(text), null, text);
});
