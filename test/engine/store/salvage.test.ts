import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPipelineError } from '../../../src/engine/errors';
import { stateSchema } from '../../../src/engine/model/schema';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import { StateStore } from '../../../src/engine/store/stateStore';
import {
  acquireLease,
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

/**
 * Salvage: one damaged line must not hide the intact records after it. Every record that can be
 * placed in the sequence is recovered; what is lost is named; a leader refuses to open over a loss
 * until `StateStore.repair` makes it permanent, and nothing is ever cut or deleted on the way.
 */

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== 'leader').sort();
}

async function bytesOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of await names(dir)) out[n] = (await readFile(join(dir, n))).toString('base64');
  return out;
}

/** Nine tasks added and made ready, as a `pipeline run` writes them: 18 records in one file. */
async function nineTasks(dir: string): Promise<{ seg: string; records: StateRecord[] }> {
  const { store, lease } = await openWriter(dir);
  const records: StateRecord[] = [];
  for (let i = 1; i <= 9; i++) {
    for (const r of [added(i), transition(taskId(i), 0)]) {
      await store.commit([r]);
      records.push(r);
    }
  }
  await store.close();
  await lease.release();
  const seg = (await names(dir)).find((n) => n.startsWith('journal-'))!;
  return { seg: join(dir, seg), records };
}

/** Byte offsets where each line of a file starts (and where the file ends). */
async function lineStarts(file: string): Promise<number[]> {
  const buf = await readFile(file);
  const starts = [0];
  for (let i = 0; i < buf.length; i++) if (buf[i] === 0x0a) starts.push(i + 1);
  return starts;
}

/** Flips one bit in the middle of line `line` (1-based); returns the damaged bytes. */
async function damageLine(file: string, line: number, at = 0.6): Promise<Buffer> {
  const starts = await lineStarts(file);
  const buf = await readFile(file);
  const pos = starts[line - 1]! + Math.floor((starts[line]! - starts[line - 1]!) * at);
  buf[pos] = buf[pos]! ^ 0x01;
  await writeFile(file, buf);
  return buf;
}

void test('a damaged record in the middle: every later intact record is recovered, the lost one named, the one that depends on it not applied', async () => {
  const dir = await tempDir();
  try {
    const { seg, records } = await nineTasks(dir);
    // Record 13 adds TASK-007; record 14 makes it ready and cannot apply without it.
    await damageLine(seg, 13);
    const before = await bytesOf(dir);

    const reader = await openReader(dir);
    assert.equal(reader.seq, 18);
    stateSchema.parse(reader.state);
    const expected = records.filter((_, i) => i + 1 !== 13 && i + 1 !== 14);
    assert.deepEqual(reader.state, replayReference(expected));
    assert.deepEqual(Object.keys(reader.state.tasks).length, 8);
    assert.deepEqual([...reader.damage.lost.keys()], [13]);
    assert.match(reader.damage.lost.get(13)!.guess ?? '', /task\.added TASK-007/);
    assert.deepEqual([...reader.damage.unapplied.keys()], [14]);
    assert.match(reader.damage.unapplied.get(14)!.why, /without the lost records/);
    const all = reader.warnings.join('\n');
    assert.ok(all.includes(`${seg}, line 13`), all);
    assert.match(all, /record 13 .*lost/);
    assert.match(all, /Record 14 .*not applied/);
    assert.match(all, /pipeline repair --dry-run/);
    await reader.close();

    // A leader refuses: it would make the loss permanent with its next snapshot.
    const lease = await acquireLease(dir, { leaseMs: 60_000 });
    await assert.rejects(StateStore.open({ dir, codec: pipelineCodec, lease }), (e: unknown) => {
      assert.ok(isPipelineError(e) && e.code === 'corrupt-journal', String(e));
      assert.match(e.message, /\(13\)/);
      assert.equal(e.details.file, seg);
      assert.match(e.describe(), /fix: Run `pipeline repair --dry-run`/);
      return true;
    });
    assert.deepEqual(await bytesOf(dir), before, 'a refused leader changes no file');

    const dry = await StateStore.repair({ dir, codec: pipelineCodec, dryRun: true });
    assert.equal(dry.performed, false);
    assert.deepEqual(
      dry.lost.map((l) => l.seq),
      [13],
    );
    assert.deepEqual(
      dry.unapplied.map((u) => u.seq),
      [14],
    );
    assert.ok(dry.actions.some((a) => a.includes('moved aside')));
    assert.deepEqual(await bytesOf(dir), before, 'a dry run changes no file');

    const done = await StateStore.repair({ dir, codec: pipelineCodec, dryRun: false, lease });
    assert.equal(done.performed, true);
    const after = await names(dir);
    const aside = after.filter((n) => n.includes('.corrupt-'));
    assert.equal(aside.length, 1, after.join(', '));
    assert.equal(
      (await readFile(join(dir, aside[0]!))).toString('base64'),
      before[seg.split('/').pop()!],
      'the damaged file is kept whole, moved aside',
    );
    assert.ok(
      after.some((n) => /^snapshot-000000000018-e\d+\.json$/.test(n)),
      after.join(', '),
    );

    // Repaired: a leader opens without a word, with exactly the recovered state, and goes on.
    const store = await StateStore.open({ dir, codec: pipelineCodec, lease });
    assert.deepEqual(store.warnings, []);
    assert.equal(store.seq, 18);
    assert.deepEqual(store.state, replayReference(expected));
    await store.commit([added(10)]);
    await store.close();
    await lease.release();
    const again = await openReader(dir);
    assert.equal(again.seq, 19);
    assert.deepEqual(again.warnings, []);
    assert.ok(again.state.tasks[taskId(10)]);
    await again.close();
  } finally {
    await removeDir(dir);
  }
});

void test('damage to the first record, with no snapshot yet: the records after it are recovered', async () => {
  const dir = await tempDir();
  try {
    const { seg, records } = await nineTasks(dir);
    await damageLine(seg, 1);
    const reader = await openReader(dir);
    assert.equal(reader.seq, 18);
    assert.deepEqual([...reader.damage.lost.keys()], [1]);
    assert.deepEqual([...reader.damage.unapplied.keys()], [2]);
    assert.deepEqual(reader.state, replayReference(records.slice(2)));
    await reader.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a commit of three records with its middle one damaged is not applied at all; later commits are', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir);
    await store.commit([added(1)]);
    await store.commit([added(2), added(3), added(4)]);
    await store.commit([added(5)]);
    await store.close();
    await lease.release();
    const seg = join(
      dir,
      (await names(dir)).find((n) => n.startsWith('journal-'))!,
    );
    await damageLine(seg, 3);
    const reader = await openReader(dir);
    assert.equal(reader.seq, 5);
    assert.deepEqual(Object.keys(reader.state.tasks).sort(), [taskId(1), taskId(5)]);
    assert.deepEqual([...reader.damage.lost.keys()], [3]);
    assert.deepEqual([...reader.damage.unapplied.keys()].sort(), [2, 4]);
    assert.match(reader.damage.unapplied.get(2)!.why, /commit \(records 2–4\) lost record\(s\) 3/);
    await reader.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a stray line between two records that follow on: nothing is lost; the leader snapshots, moves the file aside and carries on', async () => {
  const dir = await tempDir();
  try {
    const { seg, records } = await nineTasks(dir);
    const starts = await lineStarts(seg);
    const buf = await readFile(seg);
    const stray = Buffer.from('0badc0de {"an":"editor","left":"this"}\n');
    const damaged = Buffer.concat([buf.subarray(0, starts[5]), stray, buf.subarray(starts[5])]);
    await writeFile(seg, damaged);

    const reader = await openReader(dir);
    assert.equal(reader.seq, 18);
    assert.deepEqual(reader.state, replayReference(records));
    assert.equal(reader.damage.hasLoss, false);
    assert.ok(
      reader.warnings.some((w) => w.includes('line 6') && w.includes('Nothing acknowledged was lost')),
      reader.warnings.join('\n'),
    );
    await reader.close();

    const { store, lease } = await openWriter(dir);
    assert.equal(store.seq, 18);
    const files = await names(dir);
    const aside = files.filter((n) => n.includes('.corrupt-'));
    assert.equal(aside.length, 1, files.join(', '));
    assert.deepEqual(await readFile(join(dir, aside[0]!)), damaged);
    assert.ok(
      files.some((n) => /^snapshot-000000000018-e2\.json$/.test(n)),
      files.join(', '),
    );
    assert.ok(
      store.warnings.some((w) => w.includes(aside[0]!)),
      store.warnings.join('\n'),
    );
    await store.commit([decision('after')]);
    await store.close();
    await lease.release();
    const again = await openReader(dir);
    assert.equal(again.seq, 19);
    assert.deepEqual(again.warnings, []);
    await again.close();
  } finally {
    await removeDir(dir);
  }
});

void test('the damaged last line of one file, when the next file starts after it, was acknowledged: it is lost, not cut away', async () => {
  const dir = await tempDir();
  try {
    const first = await openWriter(dir);
    await first.store.commit([added(1)]);
    await first.store.commit([added(2)]);
    await first.store.close();
    await first.lease.release();
    const second = await openWriter(dir);
    await second.store.commit([added(3)]);
    await second.store.close();
    await second.lease.release();
    const segs = (await names(dir)).filter((n) => n.startsWith('journal-'));
    assert.deepEqual(segs, ['journal-000000000001-e1.log', 'journal-000000000003-e2.log']);
    await damageLine(join(dir, segs[0]!), 2);
    const reader = await openReader(dir);
    assert.equal(reader.seq, 3);
    assert.deepEqual([...reader.damage.lost.keys()], [2]);
    assert.deepEqual(Object.keys(reader.state.tasks).sort(), [taskId(1), taskId(3)]);
    await reader.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a journal file missing in the middle: replay stops there; the leader refuses; repair moves the later files aside', async () => {
  const dir = await tempDir();
  try {
    for (let i = 1; i <= 3; i++) {
      const w = await openWriter(dir);
      await w.store.commit([added(i)]);
      await w.store.close();
      await w.lease.release();
    }
    const segs = (await names(dir)).filter((n) => n.startsWith('journal-'));
    assert.equal(segs.length, 3);
    await rename(join(dir, segs[1]!), join(dir, '..', `${segs[1]}.elsewhere`));
    try {
      const reader = await openReader(dir);
      assert.equal(reader.seq, 1);
      assert.match(reader.damage.stop?.what ?? '', /record 2 is missing before the start of this file/);
      assert.ok(reader.warnings.some((w) => w.includes('Replay stopped there')));
      await reader.close();
      const lease = await acquireLease(dir, { leaseMs: 60_000 });
      await assert.rejects(
        StateStore.open({ dir, codec: pipelineCodec, lease }),
        (e: unknown) => isPipelineError(e) && e.code === 'corrupt-journal',
      );
      const report = await StateStore.repair({ dir, codec: pipelineCodec, dryRun: false, lease });
      assert.ok(report.stop);
      assert.ok(report.actions.some((a) => a.includes(segs[2]!) && a.includes('moved aside')));
      const store = await StateStore.open({ dir, codec: pipelineCodec, lease });
      assert.equal(store.seq, 1);
      assert.deepEqual(store.warnings, []);
      await store.close();
      await lease.release();
      assert.ok((await names(dir)).some((n) => n.startsWith(`${segs[2]}.corrupt-`)));
    } finally {
      await rm(join(dir, '..', `${segs[1]}.elsewhere`), { force: true });
    }
  } finally {
    await removeDir(dir);
  }
});

void test('the state directory replaced by a file, or a journal file by a directory: a PipelineError naming the path and the fix', async () => {
  const root = await tempDir();
  try {
    const asFile = join(root, 'state');
    await writeFile(asFile, 'not a directory');
    for (const open of [
      () => StateStore.open({ dir: asFile, codec: pipelineCodec }),
      async () => StateStore.open({ dir: asFile, codec: pipelineCodec, lease: await acquireLease(root) }),
    ]) {
      await assert.rejects(open(), (e: unknown) => {
        assert.ok(isPipelineError(e) && e.code === 'invalid-state', String(e));
        assert.equal(e.details.file, asFile);
        assert.match(e.message, /should be the state directory, but it is a file/);
        assert.match(e.details.fix ?? '', /mv /);
        return true;
      });
    }

    const dir = join(root, 'dir');
    await mkdir(dir);
    const w = await openWriter(dir);
    await w.store.commit([added(1)]);
    await w.store.close();
    await w.lease.release();
    const seg = join(
      dir,
      (await names(dir)).find((n) => n.startsWith('journal-'))!,
    );
    await rm(seg);
    await mkdir(seg);
    await assert.rejects(openReader(dir), (e: unknown) => {
      assert.ok(isPipelineError(e) && e.code === 'invalid-state', String(e));
      assert.equal(e.details.file, seg);
      assert.match(e.message, /should be a journal file, but it is a directory/);
      return true;
    });
  } finally {
    await removeDir(root);
  }
});

void test('the leader directory deleted: the next writer takes the epoch after the highest in the journal, at once', async () => {
  const dir = await tempDir();
  try {
    for (let i = 1; i <= 5; i++) {
      const w = await openWriter(dir);
      await w.store.commit([added(i)]);
      await w.store.close();
      await w.lease.release();
    }
    await rm(join(dir, 'leader'), { recursive: true });
    const w = await openWriter(dir);
    assert.equal(w.lease.epoch, 6);
    await w.store.commit([added(6)]);
    await w.store.close();
    await w.lease.release();
    assert.ok((await names(dir)).includes('journal-000000000006-e6.log'));
    const r = await openReader(dir);
    assert.equal(r.seq, 6);
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('short-lived writers (one change each) do not pile up journal files: a snapshot consolidates them', async () => {
  const dir = await tempDir();
  try {
    for (let i = 1; i <= 40; i++) {
      const w = await openWriter(dir);
      await w.store.commit([added(i)]);
      await w.store.close();
      await w.lease.release();
    }
    const files = await names(dir);
    assert.ok(files.length <= 20, `${files.length} files: ${files.join(', ')}`);
    const r = await openReader(dir);
    assert.equal(r.seq, 40);
    assert.equal(Object.keys(r.state.tasks).length, 40);
    assert.deepEqual(r.warnings, []);
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a reader following a writer goes past a damaged line once the record after it arrives', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir);
    await store.commit([added(1)]);
    const seg = join(
      dir,
      (await names(dir)).find((n) => n.startsWith('journal-'))!,
    );
    const reader = await openReader(dir);
    assert.equal(reader.seq, 1);
    // Stray bytes land in the file under the running leader, which goes on appending after them.
    await appendFile(seg, 'stray bytes\n');
    assert.equal(await reader.refresh(), false);
    assert.ok(
      reader.warnings.some((w) => w.includes('line 2')),
      reader.warnings.join('\n'),
    );
    await store.commit([added(2)]);
    assert.equal(await reader.refresh(), true);
    assert.equal(reader.seq, 2);
    assert.ok(reader.state.tasks[taskId(2)]);
    await reader.close();
    await store.close();
    await lease.release();
  } finally {
    await removeDir(dir);
  }
});
