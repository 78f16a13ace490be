import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ExitFileWaker } from '../../src/host/exitFileWaker';

/**
 * The terminal runner's waits for exit files: a write to the run directory ends a wait at once
 * (the tests sleep for far longer than any test runs, so only the wake can end them), a write that
 * came while nobody slept is not lost, and `wake` ends a wait when its terminal closes.
 */

const LONG_MS = 10 * 60_000;

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'exit-file-waker-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void test('writing the exit file ends the sleep on it, and only that one', async () => {
  await withDir(async (dir) => {
    const waker = new ExitFileWaker(dir);
    waker.start();
    const mine = join(dir, 'tester.TASK-001.attempt-1.exit');
    const other = join(dir, 'architect.TASK-002.attempt-1.exit');
    waker.expect(mine);
    waker.expect(other);
    let otherWoke = false;
    const otherSleep = waker.sleep(other, LONG_MS).then(() => (otherWoke = true));
    const sleep = waker.sleep(mine, LONG_MS);
    await writeFile(mine, '0\n');
    await sleep;
    await new Promise((r) => setImmediate(r));
    assert.equal(otherWoke, false, 'a write of one exit file leaves the other waits asleep');
    waker.wake(other);
    await otherSleep;
    waker.dispose();
  });
});

void test('a write while nobody sleeps ends the next sleep at once; a forgotten file keeps nothing', async () => {
  await withDir(async (dir) => {
    const waker = new ExitFileWaker(dir);
    const file = join(dir, 'tester.TASK-001.attempt-2.exit');
    waker.expect(file);
    // As the watch would when the file is written between a read and the next sleep.
    waker.wake(file);
    await waker.sleep(file, LONG_MS);
    waker.wake(file);
    waker.forget(file);
    let woke = false;
    const sleep = waker.sleep(file, LONG_MS).then(() => (woke = true));
    // Every promise already settled has run its callbacks by the next turn of the loop.
    await new Promise((r) => setImmediate(r));
    assert.equal(woke, false, 'a forgotten file has no remembered write');
    waker.wake(file);
    await sleep;
    waker.dispose();
  });
});

void test('without a watch, a sleep lasts its time and ends', async () => {
  const waker = new ExitFileWaker(join(tmpdir(), 'no-such-dir-for-exit-file-waker'));
  waker.start();
  const started = Date.now();
  await waker.sleep(join(tmpdir(), 'no-such-dir-for-exit-file-waker', 'x.exit'), 20);
  assert.ok(Date.now() - started >= 15, 'the poll interval is the fallback');
  waker.dispose();
});
