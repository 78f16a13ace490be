import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPipelineError, PipelineError } from '../../../src/engine/errors';
import {
  answer,
  fromWireError,
  PendingReplies,
  replySchema,
  resultOf,
  toWireError,
} from '../../../src/engine/rpc/requestReply';
import { z } from 'zod';

test('a PipelineError crosses a reply with its code, place and fix; any other error as a plain Error', () => {
  const sent = new PipelineError('busy', 'Agent a is working on TASK-001.', { where: 'a', fix: 'Wait.' });
  const wire = JSON.parse(JSON.stringify(toWireError(sent))) as ReturnType<typeof toWireError>;
  const back = fromWireError(wire);
  assert.ok(isPipelineError(back));
  assert.equal(back.code, 'busy');
  assert.equal(back.message, 'Agent a is working on TASK-001.');
  assert.deepEqual(back.details, { where: 'a', fix: 'Wait.' });

  const plain = fromWireError(toWireError(new TypeError('x is not a function')));
  assert.ok(!isPipelineError(plain));
  assert.equal(plain.message, 'x is not a function');
  assert.deepEqual(toWireError('a string'), { name: 'Error', message: 'a string' });
});

test('answer turns a result or a throw into the reply for its id, and resultOf undoes it', async () => {
  const ok = await answer(7, () => Promise.resolve({ n: 1 }));
  assert.deepEqual(ok, { id: 7, ok: true, result: { n: 1 } });
  assert.deepEqual(resultOf(ok), { n: 1 });
  // Nothing returned still replies, with null (JSON has no undefined).
  assert.deepEqual(await answer('r', () => Promise.resolve(undefined)), { id: 'r', ok: true, result: null });

  const failed = await answer(8, () => Promise.reject(new PipelineError('usage', 'Unknown request x.')));
  assert.equal(failed.ok, false);
  assert.throws(
    () => resultOf(failed),
    (e: unknown) => isPipelineError(e) && e.code === 'usage',
  );
  // A handler that throws before returning a promise is answered the same way.
  const sync = await answer(9, () => {
    throw new Error('at once');
  });
  assert.deepEqual(sync, { id: 9, ok: false, error: { name: 'Error', message: 'at once' } });
});

test('replySchema takes only replies with an id of the given kind', () => {
  const schema = replySchema(z.number().int());
  assert.ok(schema.safeParse({ id: 1, ok: true, result: 3 }).success);
  assert.ok(schema.safeParse({ id: 1, ok: false, error: { name: 'Error', message: 'm' } }).success);
  assert.ok(!schema.safeParse({ id: 'one', ok: true, result: 3 }).success);
  assert.ok(!schema.safeParse({ id: 1, ok: false, error: { message: 'no name' } }).success);
  assert.ok(!schema.safeParse({ id: 1, ok: true, result: 3, extra: 1 }).success);
});

test('PendingReplies: each request ends once, by its reply, its failure to send, or the channel closing', async () => {
  const book = new PendingReplies();
  const a = book.open();
  const b = book.open();
  const c = book.open();
  const d = book.open();
  assert.deepEqual([a.id, b.id, c.id, d.id], [1, 2, 3, 4], 'ids start at 1 and never repeat');

  assert.equal(book.settle({ id: a.id, ok: true, result: 'done' }), true);
  assert.equal(await a.result, 'done');
  assert.equal(book.settle({ id: a.id, ok: true, result: 'again' }), false, 'a second reply finds nobody waiting');
  assert.equal(book.settle({ id: 99, ok: true, result: 'foreign' }), false);

  book.settle({ id: b.id, ok: false, error: toWireError(new PipelineError('git', 'merge failed')) });
  await assert.rejects(b.result, (e: unknown) => isPipelineError(e) && e.code === 'git');

  book.fail(c.id, new Error('cannot send'));
  await assert.rejects(c.result, /cannot send/);

  book.failAll(new Error('the worker exited'));
  await assert.rejects(d.result, /the worker exited/);
  assert.equal(book.settle({ id: d.id, ok: true, result: 'late' }), false, 'nothing waits after the channel closed');
});
