import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InboxRequestWithdrawn, InboxServer, sendInboxRequest } from '../../src/engine/inbox';
import { isPipelineError, PipelineError } from '../../src/engine/errors';
import { writeFileAtomic } from '../../src/engine/store/fsUtil';
import { until } from '../support/waiting';

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
          // Written whole, as the leader writes its replies (a reader could see a half-written file).
          await writeFileAtomic(join(dir, `${id}.res.json`), JSON.stringify({ id, ok: true, result: 'done' }));
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

test('a request not taken when its time is up, from a leader that leads for one change, is taken back to be sent again, not failed', async () => {
  await withDir(async (dir) => {
    let asked = 0;
    const withdrawOnTimeout = () => {
      asked++;
      return Promise.resolve(true);
    };
    await assert.rejects(
      sendInboxRequest(dir, 'addTasks', [], { timeoutMs: 300, withdrawOnTimeout }),
      (e: unknown) => e instanceof InboxRequestWithdrawn,
    );
    assert.equal(asked, 1);
    assert.deepEqual(await readdir(dir), [], 'the request was taken back unapplied');
    // A leader that leads for good and does not answer is still reported, with what to check.
    await assert.rejects(
      sendInboxRequest(dir, 'addTasks', [], { timeoutMs: 300, withdrawOnTimeout: () => Promise.resolve(false) }),
      (e: unknown) => isPipelineError(e) && e.code === 'not-leader',
    );
  });
});

test('the leader serves requests in the order their changes were first sent, whatever their ids', async () => {
  await withDir(async (dir) => {
    const order: unknown[] = [];
    const server = new InboxServer(dir, (_method, args) => {
      order.push(args[0]);
      return Promise.resolve(args[0]);
    });
    // Sent now, but first sent at different times (a change sent again keeps its first time).
    const firstSent = [5, 2, 8, 1, 7, 3, 6, 4];
    const replies = firstSent.map((n) => sendInboxRequest(dir, 'addTasks', [n], { queuedAt: 1_700_000_000_000 + n }));
    await until('every request written', 10_000, async () => (await requests(dir)).length === firstSent.length);
    await server.start();
    try {
      assert.deepEqual(await Promise.all(replies), firstSent);
      assert.deepEqual(order, [1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      server.dispose();
    }
  });
});

test('a drain (a one-change leader letting go) takes no request after its time; those left stay for the next leader', async () => {
  await withDir(async (dir) => {
    let served = 0;
    const server = new InboxServer(dir, async () => {
      served++;
      await new Promise((r) => setTimeout(r, 100));
      return 'ok';
    });
    const replies = Array.from({ length: 6 }, (_, i) =>
      sendInboxRequest(dir, 'addTasks', [i], { timeoutMs: 60_000 }).catch((e: unknown) => e),
    );
    await until('every request written', 10_000, async () => (await requests(dir)).length === 6);
    // Each request takes at least 100 ms; a drain of 150 ms cannot serve six.
    await server.drain(150);
    server.dispose();
    assert.ok(served >= 1 && served < 6, `served ${served}`);
    const left = await requests(dir);
    assert.equal(left.length, 6 - served, 'the others are neither taken nor lost');
    // The next leader serves the rest.
    const next = new InboxServer(dir, () => Promise.resolve('ok'));
    await next.start();
    try {
      assert.deepEqual(await Promise.all(replies), Array(6).fill('ok'));
    } finally {
      next.dispose();
    }
  });
});

/** The requests waiting in the inbox `dir`, not taken yet. */
async function requests(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.req.json'));
}

test('senders behind a busy leader that keeps serving the requests before theirs wait past their time; each is answered', async () => {
  await withDir(async (dir) => {
    const server = new InboxServer(dir, async (_method, args) => {
      await new Promise((r) => setTimeout(r, 300));
      return args[0];
    });
    // Six requests of 300 ms each take 1.8 s; each sender's time is 1 s.
    const replies = Array.from({ length: 6 }, (_, i) =>
      sendInboxRequest(dir, 'addTasks', [i], { timeoutMs: 1000, queuedAt: 1_700_000_000_000 + i }),
    );
    await until('every request written', 10_000, async () => (await requests(dir)).length === 6);
    await server.start();
    try {
      assert.deepEqual(await Promise.all(replies), [0, 1, 2, 3, 4, 5]);
    } finally {
      server.dispose();
    }
    // A leader that serves nothing still gets its senders an error after their time.
    await assert.rejects(
      sendInboxRequest(dir, 'addTasks', [], { timeoutMs: 300 }),
      (e: unknown) => isPipelineError(e) && e.code === 'not-leader' && /did not answer within \d+ s/.test(e.message),
    );
  });
});
