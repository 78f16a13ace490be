import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PipelineError } from '../../src/engine/errors';

/** How an error's file, place and fix are printed: one pair of parentheses, and no empty words. */

test('a place already in parentheses is not wrapped again, and "(file)" adds nothing to the file', () => {
  const missing = new PipelineError('import', '/x/tasks.json does not exist.', {
    file: '/x/tasks.json',
    where: '(file)',
    fix: 'Check the path.',
  });
  assert.equal(missing.describe(), '/x/tasks.json does not exist.\n  file: /x/tasks.json\n  fix: Check the path.');
  const top = new PipelineError('invalid-config', 'Bad.', { file: '/c.json', where: '(top level)' });
  assert.equal(top.describe(), 'Bad.\n  file: /c.json (top level)');
  const at = new PipelineError('usage', 'Bad.', { where: '(top level)' });
  assert.equal(at.describe(), 'Bad.\n  at: top level');
  const plain = new PipelineError('invalid-config', 'Bad.', { file: '/c.json', where: 'retry.maxAttempts' });
  assert.equal(plain.describe(), 'Bad.\n  file: /c.json (retry.maxAttempts)');
});
