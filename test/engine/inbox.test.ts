import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InboxServer, sendInboxRequest } from '../../src/engine/inbox';
import { isPipelineError, PipelineError } from '../../src/engine/errors';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'inbox-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a request reaches the leader once, its result comes back, and no file is left', async () => {
  await withDir(async (dir) => {
    const seen: unknown[] = [];
    const server = new InboxServer(dir, (method, args) => {
      seen.push([method, args]);
      return Promise.resolve({ echoed: args[0] });
    });
    await server.start();
    try {
      assert.deepEqual(await sendInboxRequest(dir, 'addTasks', ['x']), { echoed: 'x' });
      assert.deepEqual(seen, [['addTasks', ['x']]]);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      server.dispose();
    }
  });
});

test("the leader's PipelineError comes back to the requester with its code and fix", async () => {
  await withDir(async (dir) => {
    const server = new InboxServer(dir, () =>
      Promise.reject(new PipelineError('unknown-task', 'Unknown task TASK-9.', { fix: 'List the tasks.' })),
    );
    await server.start();
    try {
      await assert.rejects(
        sendInboxRequest(dir, 'blockTask', ['TASK-9']),
        (e: unknown) => isPipelineError(e) && e.code === 'unknown-task' && e.details.fix === 'List the tasks.',
      );
    } finally {
      server.dispose();
    }
  });
});

test("any other error of the leader's comes back as an `internal` PipelineError with its message", async () => {
  await withDir(async (dir) => {
    const server = new InboxServer(dir, () => Promise.reject(new TypeError('cannot read x')));
    await server.start();
    try {
      await assert.rejects(
        sendInboxRequest(dir, 'blockTask', ['TASK-9']),
        (e: unknown) => isPipelineError(e) && e.code === ('internal' as string) && e.message === 'cannot read x',
      );
    } finally {
      server.dispose();
    }
  });
});

test('a leader that replied and then stopped before removing the request: the requester removes it, so no next leader applies it again', async () => {
  await withDir(async (dir) => {
    // A stand-in for a leader paused right after its reply: it answers but leaves the request.
    const answering = (async () => {
      for (;;) {
        const req = (await readdir(dir)).find((n) => n.endsWith('.req.json'));
        if (req) {
          const { id } = JSON.parse(await readFile(join(dir, req), 'utf8')) as { id: string };
          await writeFile(join(dir, `${id}.res.json`), JSON.stringify({ id, ok: true, result: 'done' }));
          return;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    assert.equal(await sendInboxRequest(dir, 'addTasks', []), 'done');
    await answering;
    assert.deepEqual(await readdir(dir), [], 'nothing is left for the next leader to apply again');
  });
});

test('with no leader answering, the request times out with an error that says what to check, and is withdrawn', async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      sendInboxRequest(dir, 'addTasks', [], { timeoutMs: 300, leaderLabel: 'pipeline run, pid 1' }),
      (e: unknown) =>
        isPipelineError(e) && e.code === 'not-leader' && /pipeline run, pid 1/.test(e.message) && !!e.details.fix,
    );
    assert.deepEqual(await readdir(dir), []);
  });
});
