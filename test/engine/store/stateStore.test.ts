import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { isPipelineError } from '../../../src/engine/errors';
import { stateSchema } from '../../../src/engine/model/schema';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import { crc32, crc32Portable } from '../../../src/engine/store/crc32';
import { sliceStringify } from '../../../src/engine/store/sliceStringify';
import { StateStore } from '../../../src/engine/store/stateStore';
import {
  added,
  decision,
  openReader,
  openWriter,
  pipelineCodec,
  removeDir,
  replayReference,
  taskId,
  tempDir,
  transition,
} from './storeTestKit';

void test('crc32: the portable table matches the known vector and the native one', () => {
  const v = Buffer.from('123456789');
  assert.equal(crc32Portable(v), 0xcbf43926);
  assert.equal(crc32(v), 0xcbf43926);
  const rnd = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) & 0xff));
  assert.equal(crc32Portable(rnd), crc32(rnd));
  assert.equal(crc32Portable(Buffer.alloc(0)), 0);
});

void test('commit and reopen: writer, reader and a new writer all see the same state', async () => {
  const dir = await tempDir();
  try {
    const records: StateRecord[] = [];
    const { store, lease } = await openWriter(dir);
    assert.equal(store.seq, 0);
    const batches: StateRecord[][] = [
      [added(1)],
      [added(2), added(3)],
      [transition(taskId(1), 0), transition(taskId(1), 1)],
      [decision('hello')],
      [transition(taskId(1), 2)],
    ];
    for (const b of batches) {
      await store.commit(b);
      records.push(...b);
      assert.equal(store.seq, records.length);
    }
    await store.commit([]);
    assert.equal(store.seq, records.length);
    const expected = replayReference(records);
    assert.deepEqual(store.state, expected);
    assert.equal(store.state.tasks[taskId(1)]?.status, 'queued');
    assert.equal(store.state.tasks[taskId(1)]?.stage, 'implementation');

    const reader = await openReader(dir);
    assert.equal(reader.seq, records.length);
    assert.deepEqual(reader.state, expected);
    assert.deepEqual(reader.warnings, []);
    await assert.rejects(reader.commit([added(9)]), (e: unknown) => isPipelineError(e) && e.code === 'not-leader');
    await reader.close();

    await store.close();
    await lease.release();
    const again = await openWriter(dir);
    assert.equal(again.store.seq, records.length);
    assert.deepEqual(again.store.state, expected);
    stateSchema.parse(again.store.state);
    await again.store.commit([added(4)]);
    assert.equal(again.store.seq, records.length + 1);
    await again.store.close();
    await again.lease.release();

    // Every journal line is `<crc32> <json>` with seq, epoch, ts and rec, and the checksum is right.
    const names = (await readdir(dir)).filter((n) => n.startsWith('journal-'));
    assert.equal(names.length, 2, `one segment per epoch: ${names.join(', ')}`);
    for (const name of names) {
      const text = await readFile(join(dir, name), 'utf8');
      for (const line of text.split('\n').filter(Boolean)) {
        const m = /^([0-9a-f]{8}) (\{.*\})$/.exec(line);
        assert.ok(m, line);
        assert.equal(crc32(Buffer.from(m[2]!)).toString(16).padStart(8, '0'), m[1]);
        const e = JSON.parse(m[2]!) as Record<string, unknown>;
        assert.ok(typeof e.seq === 'number' && typeof e.epoch === 'number' && typeof e.ts === 'string' && 'rec' in e);
      }
    }
  } finally {
    await removeDir(dir);
  }
});

void test('a commit whose record does not apply changes nothing, and the store keeps working', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir);
    await store.commit([added(1), added(2)]);
    const before = structuredClone(store.state);
    const journalBefore = await readFile(
      join(
        dir,
        (await readdir(dir)).find((n) => n.startsWith('journal-'))!,
      ),
      'utf8',
    );

    // The second record is illegal (a pending task cannot be merged): the first must not stick.
    const illegal: StateRecord = {
      type: 'task.transition',
      id: taskId(1),
      event: { type: 'merged', commit: 'abc' },
      at: '2026-01-01T00:00:00.000Z',
    };
    await assert.rejects(
      store.commit([transition(taskId(1), 0), illegal]),
      (e: unknown) => isPipelineError(e) && e.code === 'illegal-transition',
    );
    assert.deepEqual(store.state, before);
    assert.equal(store.seq, 2);
    // The first record alone fails: apply() leaves the state as it was.
    await assert.rejects(
      store.commit([illegal]),
      (e: unknown) => isPipelineError(e) && e.code === 'illegal-transition',
    );
    assert.deepEqual(store.state, before);
    // A record that does not match the schema is refused before anything is applied or written.
    const bad = { type: 'task.added', task: { id: 'not an id' } } as unknown as StateRecord;
    await assert.rejects(store.commit([added(3), bad]));
    assert.deepEqual(store.state, before);
    const journalAfter = await readFile(
      join(
        dir,
        (await readdir(dir)).find((n) => n.startsWith('journal-'))!,
      ),
      'utf8',
    );
    assert.equal(journalAfter, journalBefore, 'nothing was appended');

    await store.commit([transition(taskId(1), 0)]);
    assert.equal(store.seq, 3);
    await store.close();
    await lease.release();
    const reader = await openReader(dir);
    assert.deepEqual(reader.state, replayReference([added(1), added(2), transition(taskId(1), 0)]));
    await reader.close();
  } finally {
    await removeDir(dir);
  }
});

void test('snapshots every N records roll the journal and delete what the older kept snapshot covers', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir, 10);
    const records: StateRecord[] = [];
    for (let i = 1; i <= 55; i++) {
      const r = i % 4 === 0 ? decision(`d${i}`) : added(i);
      await store.commit([r]);
      records.push(r);
    }
    await store.snapshotNow();
    await store.close();
    await lease.release();
    const names = (await readdir(dir)).sort();
    const snaps = names.filter((n) => n.startsWith('snapshot-'));
    const segs = names.filter((n) => n.startsWith('journal-'));
    assert.deepEqual(snaps, ['snapshot-000000000050-e1.json', 'snapshot-000000000055-e1.json']);
    // Segments start where snapshots were taken; those wholly covered by snapshot 50 are gone.
    assert.deepEqual(segs, ['journal-000000000051-e1.log', 'journal-000000000056-e1.log']);
    assert.ok(!names.some((n) => n.includes('.tmp-')), names.join(', '));

    const reader = await openReader(dir);
    assert.equal(reader.seq, 55);
    assert.deepEqual(reader.state, replayReference(records));
    assert.deepEqual(reader.warnings, []);
    await reader.close();
    const w = await openWriter(dir, 10);
    assert.deepEqual(w.store.state, replayReference(records));
    await w.store.close();
    await w.lease.release();
  } finally {
    await removeDir(dir);
  }
});

void test('readers follow the writer with refresh(), and an idle refresh reports no change', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir, 7);
    const reader = await openReader(dir);
    assert.equal(await reader.refresh(), false);
    const records: StateRecord[] = [];
    for (let i = 1; i <= 40; i++) {
      const batch = [added(i), transition(taskId(i), 0)];
      await store.commit(batch);
      records.push(...batch);
      if (i % 3 === 0) {
        assert.equal(await reader.refresh(), true);
        assert.equal(reader.seq, records.length);
        assert.deepEqual(reader.state, replayReference(records));
        assert.equal(await reader.refresh(), false);
      }
    }
    // Fall far behind: the segment the reader was in is deleted after two more snapshots.
    for (let i = 41; i <= 80; i++) {
      await store.commit([added(i)]);
      records.push(added(i));
    }
    await store.snapshotNow();
    assert.equal(await reader.refresh(), true);
    assert.deepEqual(reader.state, replayReference(records));
    assert.deepEqual(reader.warnings, []);
    await reader.close();
    await store.close();
    await lease.release();
  } finally {
    await removeDir(dir);
  }
});

void test('open options are checked', async () => {
  const dir = await tempDir();
  try {
    await assert.rejects(
      StateStore.open({ dir, codec: pipelineCodec, snapshotEvery: 0 }),
      (e: unknown) => isPipelineError(e) && e.code === 'usage',
    );
    const r = await StateStore.open({ dir: join(dir, 'made', 'on', 'demand'), codec: pipelineCodec });
    assert.equal(r.seq, 0);
    await r.close();
    await assert.rejects(r.refresh(), (e: unknown) => isPipelineError(e) && e.code === 'usage');
  } finally {
    await removeDir(dir);
  }
});

void test('sliceStringify gives exactly what JSON.stringify gives', async () => {
  const state = replayReference(Array.from({ length: 300 }, (_, i) => added(i + 1)));
  for (let i = 0; i < 150; i++) state.decisions.push({ at: 'x', text: `d${i}` });
  const odd = {
    a: undefined,
    b: [undefined, () => 1, 1],
    big: Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`k${i}`, i % 3 ? { v: i, u: undefined } : undefined]),
    ),
    list: Array.from({ length: 100 }, (_, i) => (i % 2 ? undefined : { i })),
    d: new Date(0),
    nested: { toJSON: () => 'custom' },
  };
  for (const v of [state, odd, [1, 2], 'text', null, 5]) assert.equal(await sliceStringify(v, 0), JSON.stringify(v));
});

void test('a write that fails half way is taken back: nothing is applied, the journal ends clean', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir);
    await store.commit([added(1)]);
    const before = structuredClone(store.state);
    const seg = join(
      dir,
      (await readdir(dir)).find((n) => n.startsWith('journal-'))!,
    );
    const sizeBefore = (await stat(seg)).size;
    // Reach into the store's journal handle (a test-only liberty) to make one write land half
    // and then fail, as a full disk would.
    const handle = (store as unknown as { segment: { fh: FileHandle } }).segment.fh;
    const realWrite = handle.write.bind(handle) as (
      b: Buffer,
      o: number,
      l: number,
    ) => Promise<{ bytesWritten: number }>;
    let failed = false;
    (handle as unknown as { write: (b: Buffer, o: number, l: number) => Promise<{ bytesWritten: number }> }).write =
      async (b, o, l) => {
        if (failed) return realWrite(b, o, l);
        failed = true;
        await realWrite(b, o, Math.floor(l / 2));
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      };
    await assert.rejects(store.commit([added(2), added(3)]), /ENOSPC/);
    assert.deepEqual(store.state, before);
    assert.equal(store.seq, 1);
    assert.equal((await stat(seg)).size, sizeBefore, 'the half-written commit was cut off');
    await store.commit([added(4)]);
    await store.close();
    await lease.release();
    const reader = await openReader(dir);
    assert.deepEqual(reader.state, replayReference([added(1), added(4)]));
    assert.deepEqual(reader.warnings, []);
    await reader.close();
  } finally {
    await removeDir(dir);
  }
});
