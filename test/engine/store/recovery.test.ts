import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPipelineError } from '../../../src/engine/errors';
import { stateSchema } from '../../../src/engine/model/schema';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import type { LeaderLease } from '../../../src/engine/store/leaderLease';
import { StateStore } from '../../../src/engine/store/stateStore';
import {
  acquireLease,
  added,
  decision,
  openWriter,
  pipelineCodec,
  removeDir,
  replayReference,
  taskId,
  tempDir,
  transition,
} from './storeTestKit';

/**
 * Recovery from damaged files: the journal cut at every byte offset of its last commits (and at
 * random ones), bytes flipped, snapshots cut or damaged. After each, the state must parse and hold
 * exactly the whole commits the damage did not touch (a cut keeps those before it; a damaged line
 * in the middle costs only its own records, named), and every damaged file must survive, moved or
 * copied aside, named in a warning.
 */

/** A seeded generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Pristine {
  segName: string;
  bytes: Buffer;
  /** Journal size after each commit (boundaries[0] = 0). */
  boundaries: number[];
  /** Records in the journal after each commit. */
  seqAfter: number[];
  records: StateRecord[];
}

async function buildJournal(): Promise<Pristine> {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir);
    const commits: StateRecord[][] = [
      [added(1)],
      [added(2)],
      [added(3), added(4), added(5)],
      [transition(taskId(1), 0)],
      [transition(taskId(1), 1), decision('assigned')],
      [transition(taskId(2), 0)],
      [decision('a'), decision('b'), decision('c')],
      [transition(taskId(1), 2)],
    ];
    const segName = (await readdir(dir)).find((n) => n.startsWith('journal-'))!;
    const boundaries = [0];
    const seqAfter = [0];
    const records: StateRecord[] = [];
    for (const c of commits) {
      await store.commit(c);
      records.push(...c);
      boundaries.push((await stat(join(dir, segName))).size);
      seqAfter.push(store.seq);
    }
    await store.close();
    await lease.release();
    return { segName, bytes: await readFile(join(dir, segName)), boundaries, seqAfter, records };
  } finally {
    await removeDir(dir);
  }
}

/** How many records survive when the journal is damaged at byte `pos` (or cut there). */
function survivingSeq(p: Pristine, pos: number, cut: boolean): number {
  let k = 0;
  // A cut at a boundary keeps that commit; damage at a byte spoils the commit holding it.
  while (k + 1 < p.boundaries.length && (cut ? p.boundaries[k + 1]! <= pos : p.boundaries[k + 1]! <= pos)) k++;
  return p.seqAfter[k]!;
}

async function filesOf(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/**
 * Opens `dir` as a reader (which must change no file) and, when `lease` is given, as the leader,
 * which must repair: copy the damaged file aside, cut it at the last whole commit, warn, go on.
 */
async function checkRecovered(
  dir: string,
  lease: LeaderLease | undefined,
  p: Pristine,
  expectedSeq: number,
  damaged: boolean,
  label: string,
): Promise<void> {
  const before = await filesOf(dir);
  const reader = await StateStore.open({ dir, codec: pipelineCodec });
  assert.equal(reader.seq, expectedSeq, `${label}: reader seq`);
  stateSchema.parse(reader.state);
  assert.deepEqual(reader.state, replayReference(p.records.slice(0, expectedSeq)), `${label}: reader state`);
  await reader.close();
  assert.deepEqual(await filesOf(dir), before, `${label}: the reader changed files`);
  if (!lease) return;

  const store = await StateStore.open({ dir, codec: pipelineCodec, lease });
  assert.equal(store.seq, expectedSeq, `${label}: writer seq`);
  stateSchema.parse(store.state);
  assert.deepEqual(store.state, replayReference(p.records.slice(0, expectedSeq)), `${label}: writer state`);
  const names = await filesOf(dir);
  const aside = names.filter((n) => n.includes('.corrupt-'));
  if (damaged) {
    assert.equal(aside.length, 1, `${label}: one copy aside, got ${names.join(', ')}`);
    assert.ok(
      store.warnings.some((w) => w.includes(p.segName) && w.includes(aside[0]!) && /byte \d+/.test(w)),
      `${label}: warning names the file: ${store.warnings.join(' / ')}`,
    );
    const cutTo = p.boundaries[p.seqAfter.indexOf(expectedSeq)]!;
    assert.equal((await stat(join(dir, p.segName))).size, cutTo, `${label}: cut at the last whole commit`);
  } else {
    assert.deepEqual(aside, [], label);
    assert.deepEqual(store.warnings, [], label);
  }
  // The repaired journal takes new commits and replays cleanly.
  await store.commit([decision('after repair')]);
  await store.close();
  const again = await StateStore.open({ dir, codec: pipelineCodec });
  assert.equal(again.seq, expectedSeq + 1, `${label}: after repair`);
  assert.deepEqual(again.warnings, [], `${label}: no warnings after repair`);
  await again.close();
}

void test('the journal cut at every byte offset of its last three commits, and at random ones', async () => {
  const p = await buildJournal();
  const leaseDir = await tempDir();
  const root = await tempDir();
  try {
    const lease = await acquireLease(leaseDir, { leaseMs: 60_000 });
    const from = p.boundaries[p.boundaries.length - 4]!;
    const random = rng(42);
    const offsets = new Set<number>();
    for (let o = from; o < p.bytes.length; o++) offsets.add(o);
    for (let i = 0; i < 40; i++) offsets.add(Math.floor(random() * p.bytes.length));
    // Every offset is replayed by a reader; the leader's repair (a few fsyncs each) runs at every
    // third offset and on both sides of every commit boundary, which keeps the test quick.
    const nearBoundary = (o: number): boolean => p.boundaries.some((b) => Math.abs(b - o) <= 1);
    let n = 0;
    for (const off of [...offsets].sort((a, b) => a - b)) {
      const dir = join(root, String(n++));
      await mkdir(dir);
      await writeFile(join(dir, p.segName), p.bytes.subarray(0, off));
      const expected = survivingSeq(p, off, true);
      await checkRecovered(
        dir,
        off % 3 === 0 || nearBoundary(off) ? lease : undefined,
        p,
        expected,
        !p.boundaries.includes(off),
        `cut at ${off}`,
      );
      await removeDir(dir);
    }
    assert.ok(n > 500, `${n} offsets tried`);
    await lease.release();
  } finally {
    await removeDir(root);
    await removeDir(leaseDir);
  }
});

void test('a damaged byte anywhere in the journal: every commit it does not touch is recovered, and what it touched is named', async () => {
  const p = await buildJournal();
  const leaseDir = await tempDir();
  const root = await tempDir();
  try {
    const lease = await acquireLease(leaseDir, { leaseMs: 60_000 });
    // Where each line starts, and the commit (index into boundaries) each record belongs to.
    const starts = [0];
    for (let i = 0; i < p.bytes.length; i++) if (p.bytes[i] === 0x0a) starts.push(i + 1);
    const lines = starts.length - 1;
    assert.equal(lines, p.records.length);
    const commitOf = (seq: number): number => p.seqAfter.findIndex((n) => n >= seq);
    const seqsOf = (c: number): number[] => {
      const out: number[] = [];
      for (let s = p.seqAfter[c - 1]! + 1; s <= p.seqAfter[c]!; s++) out.push(s);
      return out;
    };
    const random = rng(7);
    for (let i = 0; i < 80; i++) {
      const pos = Math.floor(random() * p.bytes.length);
      const bytes = Buffer.from(p.bytes);
      bytes[pos] = bytes[pos]! ^ (1 + Math.floor(random() * 255));
      const line = starts.findIndex((st, k) => st <= pos && pos < starts[k + 1]!);
      // A damaged newline joins the line with the next: both are damaged then.
      const damagedLines = pos === starts[line + 1]! - 1 && line + 1 < lines ? [line, line + 1] : [line];
      const label = `byte ${pos} (line ${line + 1}) changed`;
      const dir = join(root, String(i));
      await mkdir(dir);
      await writeFile(join(dir, p.segName), bytes);

      if (damagedLines.includes(lines - 1)) {
        // Nothing intact follows: a torn or damaged tail, cut by the leader as after a crash.
        await checkRecovered(dir, lease, p, p.seqAfter[commitOf(line + 1) - 1]!, true, label);
        await removeDir(dir);
        continue;
      }
      const before = await filesOf(dir);
      const reader = await StateStore.open({ dir, codec: pipelineCodec });
      stateSchema.parse(reader.state);
      const lost = damagedLines.map((l) => l + 1);
      assert.deepEqual(
        [...reader.damage.lost.keys()].sort((a, b) => a - b),
        lost,
        `${label}: lost`,
      );
      assert.equal(reader.seq, p.records.length, `${label}: every record after the damage is placed`);
      const unapplied = new Set(reader.damage.unapplied.keys());
      for (const s of lost) {
        for (const other of seqsOf(commitOf(s)))
          if (!lost.includes(other))
            assert.ok(unapplied.has(other), `${label}: record ${other} shares a commit with lost ${s}`);
      }
      for (const u of reader.damage.unapplied.values()) assert.ok(u.why.length > 0, label);
      // The state is exactly the commits nothing was taken from, applied in order.
      const applied: StateRecord[] = [];
      for (let c = 1; c < p.seqAfter.length; c++) {
        const seqs = seqsOf(c);
        if (seqs.every((s) => !lost.includes(s) && !unapplied.has(s)))
          applied.push(...seqs.map((s) => p.records[s - 1]!));
      }
      assert.deepEqual(reader.state, replayReference(applied), `${label}: state`);
      assert.ok(
        reader.warnings.some((w) => w.includes('pipeline repair')),
        label,
      );
      await reader.close();

      await assert.rejects(
        StateStore.open({ dir, codec: pipelineCodec, lease }),
        (e: unknown) => isPipelineError(e) && e.code === 'corrupt-journal',
        `${label}: a leader refuses`,
      );
      assert.deepEqual(await filesOf(dir), before, `${label}: nothing moved`);
      assert.deepEqual(await readFile(join(dir, p.segName)), bytes, `${label}: nothing cut`);
      const report = await StateStore.repair({ dir, codec: pipelineCodec, dryRun: false, lease });
      assert.deepEqual(
        report.lost.map((l) => l.seq),
        lost,
        label,
      );
      const store = await StateStore.open({ dir, codec: pipelineCodec, lease });
      assert.deepEqual(store.state, replayReference(applied), `${label}: after repair`);
      assert.deepEqual(store.warnings, [], label);
      await store.close();
      await removeDir(dir);
    }
    await lease.release();
  } finally {
    await removeDir(root);
    await removeDir(leaseDir);
  }
});

/** A store with snapshots at 10, 20 and 30 (the last two kept) and records up to 35. */
async function buildWithSnapshots(dir: string, total = 35): Promise<StateRecord[]> {
  const { store, lease } = await openWriter(dir, 10);
  const records: StateRecord[] = [];
  for (let i = 1; i <= total; i++) {
    const r = added(i);
    await store.commit([r]);
    records.push(r);
    // Wait for each snapshot so the layout is exactly the one described.
    if (i % 10 === 0) await store.snapshotNow();
  }
  await store.close();
  await lease.release();
  return records;
}

void test('a damaged newest snapshot is moved aside and the older one plus the journal recover everything', async () => {
  const dir = await tempDir();
  try {
    const records = await buildWithSnapshots(dir);
    const names = await filesOf(dir);
    assert.deepEqual(
      names.filter((n) => n.startsWith('snapshot-')),
      ['snapshot-000000000020-e1.json', 'snapshot-000000000030-e1.json'],
    );
    const snap30 = join(dir, 'snapshot-000000000030-e1.json');
    const original = await readFile(snap30);
    const random = rng(3);
    const damages: [string, Buffer][] = [
      ['cut to 0', original.subarray(0, 0)],
      ['cut in the header', original.subarray(0, 20)],
      ['cut after the header', original.subarray(0, original.indexOf(0x0a) + 1)],
      ['cut by one byte', original.subarray(0, original.length - 1)],
      ['one byte appended', Buffer.concat([original, Buffer.from(' ')])],
    ];
    for (let i = 0; i < 12; i++) {
      const b = Buffer.from(original);
      const pos = Math.floor(random() * b.length);
      b[pos] = b[pos]! ^ 0x55;
      damages.push([`byte ${pos} flipped`, b]);
      damages.push([`cut at ${pos}`, original.subarray(0, pos)]);
    }
    const leaseDir = await tempDir();
    const lease = await acquireLease(leaseDir, { leaseMs: 60_000 });
    for (const [label, bytes] of damages) {
      const trial = await tempDir();
      for (const n of names.filter((x) => x !== 'leader'))
        await writeFile(join(trial, n), await readFile(join(dir, n)));
      await writeFile(join(trial, 'snapshot-000000000030-e1.json'), bytes);

      const reader = await StateStore.open({ dir: trial, codec: pipelineCodec });
      assert.equal(reader.seq, 35, label);
      assert.ok(
        reader.warnings.some((w) => w.includes('snapshot-000000000030-e1.json') && w.includes('left in place')),
        `${label}: ${reader.warnings.join(' / ')}`,
      );
      await reader.close();
      assert.deepEqual(
        await filesOf(trial),
        names.filter((x) => x !== 'leader'),
        `${label}: a reader moves nothing`,
      );

      const store = await StateStore.open({ dir: trial, codec: pipelineCodec, lease });
      assert.equal(store.seq, 35, label);
      assert.deepEqual(store.state, replayReference(records), label);
      const aside = (await filesOf(trial)).filter((n) => n.startsWith('snapshot-000000000030-e1.json.corrupt-'));
      assert.equal(aside.length, 1, label);
      assert.deepEqual(
        await readFile(join(trial, aside[0]!)),
        bytes,
        `${label}: the damaged file is kept byte for byte`,
      );
      assert.ok(
        store.warnings.some(
          (w) =>
            w.includes('snapshot-000000000030-e1.json') &&
            w.includes(aside[0]!) &&
            w.includes('snapshot-000000000020-e1.json'),
        ),
        `${label}: ${store.warnings.join(' / ')}`,
      );
      await store.close();
      await removeDir(trial);
    }
    await lease.release();
    await removeDir(leaseDir);
  } finally {
    await removeDir(dir);
  }
});

void test('with both kept snapshots damaged and the journal no longer covering seq 0, open fails with corrupt-snapshot', async () => {
  const dir = await tempDir();
  try {
    await buildWithSnapshots(dir);
    await writeFile(join(dir, 'snapshot-000000000030-e1.json'), 'garbage');
    const s20 = await readFile(join(dir, 'snapshot-000000000020-e1.json'));
    await writeFile(join(dir, 'snapshot-000000000020-e1.json'), s20.subarray(0, s20.length - 10));
    const leaseDir = await tempDir();
    const lease = await acquireLease(leaseDir);
    await assert.rejects(StateStore.open({ dir, codec: pipelineCodec, lease }), (e: unknown) => {
      assert.ok(isPipelineError(e) && e.code === 'corrupt-snapshot', String(e));
      assert.match(e.details.file ?? '', /snapshot-0000000000[23]0-e1\.json\.corrupt-/);
      assert.match(e.describe(), /fix: .*backup/);
      return true;
    });
    const names = await filesOf(dir);
    assert.equal(names.filter((n) => n.includes('.corrupt-')).length, 2, names.join(', '));
    // Opening again still refuses (no silent fresh start), and names what was moved aside.
    await assert.rejects(
      StateStore.open({ dir, codec: pipelineCodec, lease }),
      (e: unknown) =>
        isPipelineError(e) && e.code === 'corrupt-snapshot' && /moved aside earlier: snapshot-/.test(e.describe()),
    );
    await lease.release();
    await removeDir(leaseDir);
  } finally {
    await removeDir(dir);
  }
});

void test('with the only snapshot damaged, the journal from seq 0 recovers everything', async () => {
  const dir = await tempDir();
  try {
    const records = await buildWithSnapshots(dir, 15);
    assert.deepEqual(
      (await filesOf(dir)).filter((n) => n.startsWith('journal-')),
      ['journal-000000000001-e1.log', 'journal-000000000011-e1.log'],
    );
    await writeFile(join(dir, 'snapshot-000000000010-e1.json'), '{"format":"agent-pipeline-state-snapshot"');
    const { store, lease } = await openWriter(dir);
    assert.equal(store.seq, 15);
    assert.deepEqual(store.state, replayReference(records));
    assert.ok(
      store.warnings.some((w) => w.includes('snapshot-000000000010-e1.json') && w.includes('the start of the journal')),
      store.warnings.join(' / '),
    );
    await store.close();
    await lease.release();
  } finally {
    await removeDir(dir);
  }
});

void test('a torn multi-record commit is dropped whole, and orphaned temp files are swept', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await openWriter(dir);
    await store.commit([added(1)]);
    await store.commit([added(2), added(3), added(4)]);
    await store.close();
    await lease.release();
    const seg = (await filesOf(dir)).find((n) => n.startsWith('journal-'))!;
    const bytes = await readFile(join(dir, seg));
    // Cut right after the second line of the three-record commit: two whole lines, one missing.
    let cut = 0;
    for (let i = 0; i < 3; i++) cut = bytes.indexOf(0x0a, cut) + 1;
    await writeFile(join(dir, seg), bytes.subarray(0, cut));
    await writeFile(join(dir, 'snapshot-000000000001-e1.json.tmp-123-abcdef01'), 'half a snapshot');
    const w = await openWriter(dir);
    assert.equal(w.store.seq, 1);
    assert.ok(w.store.state.tasks[taskId(1)] && !w.store.state.tasks[taskId(2)]);
    assert.ok(
      w.store.warnings.some((x) => x.includes('incomplete')),
      w.store.warnings.join(' / '),
    );
    assert.ok(!(await filesOf(dir)).some((n) => n.includes('.tmp-')));
    await w.store.close();
    await w.lease.release();
  } finally {
    await removeDir(dir);
  }
});
