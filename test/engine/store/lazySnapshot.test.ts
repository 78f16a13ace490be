import { isAscii } from 'node:buffer';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPipelineError } from '../../../src/engine/errors';
import { LAZY_LAYOUT, LINE_FIELDS, ROW_FIELDS, rowProblem, taskWith } from '../../../src/engine/model/lazySnapshot';
import { emptyState, taskSchema, type PipelineState, type Task } from '../../../src/engine/model/schema';
import { pipelineStateCodec } from '../../../src/engine/model/stateCodec';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import type { LeaderLease } from '../../../src/engine/store/leaderLease';
import { StateStore } from '../../../src/engine/store/stateStore';
import { decodeSnapshot, encodeSnapshot } from '../../../src/engine/store/storeFiles';
import { newTask } from '../../support/taskFixtures';
import { acquireLease, removeDir, replayReference, tempDir, transition } from './storeTestKit';

/**
 * The pipeline's snapshot layout (model/lazySnapshot.ts), through the store with the real codec: a
 * reader gets the same state as the writer had, reads task details only when asked, still refuses
 * what does not validate (naming the file and the place), and a snapshot reuses unchanged lines.
 */

type Store = StateStore<PipelineState, StateRecord>;

function richTask(n: number): Task {
  const id = `TASK-${String(n).padStart(3, '0')}`;
  return newTask(id, n, {
    title: `Task ${n} "quoted" ✓`,
    description: `Line one of ${id}\nline two, with a tab\tand unicode — ✓`,
    prerequisites: n > 1 ? [`TASK-${String(n - 1).padStart(3, '0')}`] : [],
    priority: (['critical', 'high', 'medium', 'low'] as const)[n % 4]!,
    paths: n % 2 ? [`src/f${n}/**`] : [],
    labels: n % 3 ? [] : ['pilot'],
    history: [{ at: '2026-01-01T00:00:00.000Z', event: 'import', from: 'pending', to: 'pending', stage: 'architect' }],
  });
}

async function writer(dir: string): Promise<{ store: Store; lease: LeaderLease }> {
  const lease = await acquireLease(dir, { leaseMs: 30_000 });
  return { store: await StateStore.open({ dir, codec: pipelineStateCodec, lease }), lease };
}

function reader(dir: string): Promise<Store> {
  return StateStore.open({ dir, codec: pipelineStateCodec });
}

async function snapshots(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => /^snapshot-\d+-e\d+\.json$/.test(n)).sort();
}

/** Five tasks (one moved along), a snapshot, and the records that made them. */
async function seeded(dir: string): Promise<StateRecord[]> {
  const records: StateRecord[] = [
    ...[1, 2, 3, 4, 5].map((n): StateRecord => ({ type: 'task.added', task: richTask(n) })),
    transition('TASK-001', 0),
    transition('TASK-001', 1),
    { type: 'decision', text: 'hello', at: '2026-01-01T00:00:00.000Z' },
  ];
  const { store, lease } = await writer(dir);
  await store.commit(records);
  await store.snapshotNow();
  await store.close();
  await lease.release();
  return records;
}

/** Rewrites a snapshot's body with `edit`, with a fresh header and checksum (as a buggy writer would). */
async function rewriteBody(path: string, edit: (lines: string[]) => void): Promise<void> {
  const { header, body } = decodeSnapshot(await readFile(path));
  const lines = body.toString('utf8').split('\n');
  edit(lines);
  await writeFile(path, Buffer.concat(encodeSnapshot(header.seq, header.epoch, lines.join('\n'), header.layout)));
}

void test('a reader of a snapshot in the task-lines layout gets the state the writer had, details read on first use', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [name] = await snapshots(dir);
    const { header } = decodeSnapshot(await readFile(join(dir, name!)));
    assert.equal(header.layout, LAZY_LAYOUT);
    assert.equal(header.version, 2);
    // The header's line table: the state and index lines as the head, then one entry per task line.
    assert.equal(header.lines?.head, 2);
    assert.equal(Buffer.from(header.lines.table, 'base64').length, 5 * 8);

    const r = await reader(dir);
    const expected = replayReference(records);
    const t = r.state.tasks['TASK-003']!;
    // Row fields are plain values; the others are getters until first read.
    assert.equal(typeof Object.getOwnPropertyDescriptor(t, 'status')?.value, 'string');
    assert.equal(typeof Object.getOwnPropertyDescriptor(t, 'description')?.get, 'function');
    assert.equal(t.description, expected.tasks['TASK-003']!.description);
    assert.equal(Object.getOwnPropertyDescriptor(t, 'description')?.value, t.description);
    // The keys come in the schema's order (an optional field the task does not have is absent, as
    // in a plain task), so the json is the same as a plain task's.
    assert.deepEqual(Object.keys(r.state.tasks['TASK-004']!), Object.keys(expected.tasks['TASK-004']!));
    assert.equal(JSON.stringify(r.state), JSON.stringify(expected));
    assert.deepEqual(r.state, expected);
    assert.equal(r.seq, records.length);
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('an index of plain ASCII and one with other characters read the same (latin1 and UTF-8 paths)', async () => {
  // 1 200 tasks make an index line of over 1 MB, which Node hands to V8 as an external string when
  // read as latin1; the second state has one title with characters beyond ASCII, so its index is
  // read as UTF-8. Both must come back exactly as written.
  for (const odd of [undefined, 'Café ✓ — naïve 日本']) {
    const dir = await tempDir();
    try {
      const tasks = Array.from({ length: 1_200 }, (_, i) =>
        newTask(`TASK-${String(i + 1).padStart(4, '0')}`, i + 1, {
          title: i === 600 && odd ? odd : `Plain title number ${i + 1} ${'x'.repeat(800)}`,
        }),
      );
      const records: StateRecord[] = tasks.map((task) => ({ type: 'task.added', task }));
      const { store, lease } = await writer(dir);
      await store.commit(records);
      await store.snapshotNow();
      await store.close();
      await lease.release();
      const [name] = await snapshots(dir);
      const { body } = decodeSnapshot(await readFile(join(dir, name!)));
      const indexLine = body.toString('utf8').split('\n')[1]!;
      assert.ok(Buffer.byteLength(indexLine) > 1_000_000, 'the index line is large enough for an external string');
      assert.equal(!isAscii(Buffer.from(indexLine)), odd !== undefined);

      const r = await reader(dir);
      assert.equal(r.state.tasks['TASK-0601']!.title, tasks[600]!.title);
      assert.deepEqual(r.state, replayReference(records));
      await r.close();
    } finally {
      await removeDir(dir);
    }
  }
});

void test('every task field is either in the index row or read from the task line', () => {
  assert.deepEqual([...ROW_FIELDS, ...LINE_FIELDS].sort(), Object.keys(taskSchema.shape).sort());
});

void test('the row check gives the task schema verdict on each row field', () => {
  const good = richTask(7);
  const row = (t: Record<string, unknown>): unknown[] => ROW_FIELDS.map((k) => t[k]);
  assert.equal(rowProblem(row(good)), undefined);
  const bad: Record<string, unknown[]> = {
    id: ['task-1', 7, '', 'TASK-1.2.3.4.5.6', null],
    title: [null, 3, undefined],
    prerequisites: ['TASK-001', ['nope'], [1], null],
    priority: ['urgent', null, 1],
    paths: ['src', [1], null],
    labels: ['pilot', [null], null],
    status: ['finished', null],
    stage: ['Architect', '', null, 'a'.repeat(40)],
    assigned_to: ['Bob', 1, ''],
    attempt: [-1, 1.5, '1', null],
    failures: [-1, 0.5, null],
    not_before: ['', 5],
    blocked_reason: [5, undefined],
    seq: [-1, 2.5, null],
    merged_commit: [5, undefined],
  };
  const ok: Record<string, unknown[]> = {
    assigned_to: [null, 'implementer-2'],
    not_before: [null, '2026-01-01T00:00:00.000Z'],
    blocked_reason: [null, ''],
    merged_commit: [null, 'abc123'],
    title: [''],
    prerequisites: [[], ['TM-12.3']],
  };
  for (const k of ROW_FIELDS) {
    for (const [verdictWanted, values] of [
      [false, bad[k] ?? []],
      [true, ok[k] ?? []],
    ] as const) {
      for (const v of values) {
        const t = { ...good, [k]: v };
        const schemaOk = taskSchema.safeParse(t).success;
        assert.equal(schemaOk, verdictWanted, `the schema on ${k} = ${JSON.stringify(v)}`);
        assert.equal(rowProblem(row(t)) === undefined, schemaOk, `the row check on ${k} = ${JSON.stringify(v)}`);
      }
    }
  }
  assert.match(rowProblem(['TASK-001']) ?? '', /not a row/);
});

void test('a snapshot reuses the lines of unchanged tasks and writes changed ones afresh', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [first] = await snapshots(dir);
    const before = decodeSnapshot(await readFile(join(dir, first!)))
      .body.toString('utf8')
      .split('\n');

    const { store, lease } = await writer(dir);
    const more: StateRecord[] = [transition('TASK-002', 0)];
    await store.commit(more);
    await store.snapshotNow();
    const names = await snapshots(dir);
    const after = decodeSnapshot(await readFile(join(dir, names[names.length - 1]!)))
      .body.toString('utf8')
      .split('\n');
    // Lines: the state, the index, then TASK-001 … TASK-005.
    assert.equal(after.length, before.length);
    for (const i of [2, 4, 5, 6]) assert.equal(after[i], before[i], `line ${i + 1} is reused`);
    assert.notEqual(after[3], before[3]);
    assert.equal((JSON.parse(after[3]!) as Task).status, 'queued');

    // A snapshot taken after reading nothing but rows still holds every detail.
    await store.close();
    await lease.release();
    const r = await reader(dir);
    assert.deepEqual(r.state, replayReference([...records, ...more]));
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a checksummed snapshot whose index row is invalid is refused at open, naming the file and the row', async () => {
  const dir = await tempDir();
  try {
    await seeded(dir);
    const [name] = await snapshots(dir);
    const path = join(dir, name!);
    await rewriteBody(path, (lines) => {
      const rows = JSON.parse(lines[1]!) as unknown[][];
      rows[2]![6] = 'finished';
      lines[1] = JSON.stringify(rows);
    });
    await assert.rejects(reader(dir), (e: unknown) => {
      assert.ok(isPipelineError(e) && e.code === 'invalid-state', String(e));
      assert.equal(e.details.file, path);
      assert.match(e.details.where ?? '', /row 3/);
      assert.match(e.message, /status/);
      return true;
    });
  } finally {
    await removeDir(dir);
  }
});

void test('a task line that is invalid or disagrees with its row fails when it is read, naming the file and the line', async () => {
  const dir = await tempDir();
  try {
    await seeded(dir);
    const [name] = await snapshots(dir);
    const path = join(dir, name!);
    await rewriteBody(path, (lines) => {
      const t3 = JSON.parse(lines[4]!) as Record<string, unknown>;
      lines[4] = JSON.stringify({ ...t3, priority: 'low', created_at: '' });
      const t4 = JSON.parse(lines[5]!) as Record<string, unknown>;
      lines[5] = JSON.stringify({ ...t4, history: 'none' });
    });
    const r = await reader(dir);
    // Rows are fine, so the scheduling fields are there at once.
    assert.equal(r.state.tasks['TASK-003']!.status, 'pending');
    assert.throws(
      () => r.state.tasks['TASK-004']!.history,
      (e: unknown) => {
        assert.ok(isPipelineError(e) && e.code === 'invalid-state', String(e));
        assert.equal(e.details.file, path);
        assert.match(e.details.where ?? '', /line 7 \(task TASK-004\)/);
        assert.match(e.message, /history/);
        return true;
      },
    );
    assert.throws(
      () => JSON.stringify(r.state.tasks['TASK-003']),
      (e: unknown) =>
        isPipelineError(e) && /created_at|priority/.test(e.message) && /line 6/.test(e.details.where ?? ''),
    );
    // The other tasks read as usual.
    assert.equal(r.state.tasks['TASK-005']!.history.length, 1);
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a snapshot written as plain json (the earlier layout) still reads', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const expected = replayReference(records);
    const [name] = await snapshots(dir);
    const { header } = decodeSnapshot(await readFile(join(dir, name!)));
    await writeFile(
      join(dir, name!),
      Buffer.concat(encodeSnapshot(header.seq, header.epoch, JSON.stringify(expected))),
    );
    const r = await reader(dir);
    assert.deepEqual(r.state, expected);
    assert.equal(typeof Object.getOwnPropertyDescriptor(r.state.tasks['TASK-003']!, 'description')?.value, 'string');
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('an empty state round-trips through the layout', async () => {
  const dir = await tempDir();
  try {
    const { store, lease } = await writer(dir);
    await store.commit([{ type: 'decision', text: 'only this', at: '2026-01-01T00:00:00.000Z' }]);
    await store.snapshotNow();
    await store.close();
    await lease.release();
    const r = await reader(dir);
    assert.deepEqual(r.state, { ...emptyState(), decisions: [{ at: '2026-01-01T00:00:00.000Z', text: 'only this' }] });
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a state whose newest snapshot is plain json opens, and its leader writes the next one in the task-lines layout', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [old] = await snapshots(dir);
    const { header } = decodeSnapshot(await readFile(join(dir, old!)));
    await writeFile(
      join(dir, old!),
      Buffer.concat(encodeSnapshot(header.seq, header.epoch, JSON.stringify(replayReference(records)))),
    );
    assert.equal(decodeSnapshot(await readFile(join(dir, old!))).header.version, 1);

    // The upgrade: a leader opens the old snapshot, changes a task and snapshots.
    const { store, lease } = await writer(dir);
    assert.deepEqual(store.state, replayReference(records));
    assert.deepEqual(store.warnings, []);
    const more: StateRecord[] = [
      transition('TASK-003', 0),
      { type: 'decision', text: 'after', at: '2026-01-02T00:00:00.000Z' },
    ];
    await store.commit(more);
    await store.snapshotNow();
    await store.close();
    await lease.release();

    const names = await snapshots(dir);
    const newest = names[names.length - 1]!;
    assert.notEqual(newest, old);
    const h = decodeSnapshot(await readFile(join(dir, newest))).header;
    assert.equal(h.version, 2);
    assert.equal(h.layout, LAZY_LAYOUT);
    const r = await reader(dir);
    assert.equal(r.seq, records.length + more.length);
    assert.equal(typeof Object.getOwnPropertyDescriptor(r.state.tasks['TASK-005']!, 'history')?.get, 'function');
    assert.deepEqual(r.state, replayReference([...records, ...more]));
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a plain json snapshot that does not validate is refused, naming the file, the place and the fix', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [name] = await snapshots(dir);
    const path = join(dir, name!);
    const { header } = decodeSnapshot(await readFile(path));
    const state = replayReference(records) as unknown as { tasks: Record<string, Record<string, unknown>> };
    state.tasks['TASK-002']!.status = 'finished';
    await writeFile(path, Buffer.concat(encodeSnapshot(header.seq, header.epoch, JSON.stringify(state))));
    await assert.rejects(reader(dir), (e: unknown) => {
      assert.ok(isPipelineError(e) && e.code === 'invalid-state', String(e));
      assert.equal(e.details.file, path);
      assert.match(e.details.where ?? '', /tasks\.TASK-002\.status/);
      assert.match(e.details.fix ?? '', /Move .* aside/);
      return true;
    });
  } finally {
    await removeDir(dir);
  }
});

void test('a snapshot in the task-lines layout from a newer schema version is refused, naming the file', async () => {
  const dir = await tempDir();
  try {
    await seeded(dir);
    const [name] = await snapshots(dir);
    const path = join(dir, name!);
    await rewriteBody(path, (lines) => {
      lines[0] = JSON.stringify({ ...(JSON.parse(lines[0]!) as object), schema_version: 99 });
    });
    await assert.rejects(reader(dir), (e: unknown) => {
      assert.ok(isPipelineError(e) && e.code === 'invalid-state', String(e));
      assert.equal(e.details.file, path);
      assert.match(e.message, /schema version 99/);
      return true;
    });
  } finally {
    await removeDir(dir);
  }
});

void test('a snapshot whose task lines do not match its index is damaged: the journal recovers the state and the file is named', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [name] = await snapshots(dir);
    const path = join(dir, name!);
    // A task line dropped (the checksum is made afresh, as a buggy writer would).
    await rewriteBody(path, (lines) => lines.splice(3, 1));
    const r = await reader(dir);
    assert.deepEqual(r.state, replayReference(records));
    assert.ok(
      r.warnings.some((w) => w.includes(name!) && /index lists 5 tasks but the body has 4 task lines/.test(w)),
      r.warnings.join(' / '),
    );
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('taskWith changes row fields of a task whose details are unread and leaves them unread (and right)', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const expected = replayReference(records);
    const r = await reader(dir);
    const lazy = r.state.tasks['TASK-004']!;
    const queued = taskWith(lazy, { status: 'queued' });
    assert.equal(queued.status, 'queued');
    assert.equal(lazy.status, 'pending');
    assert.equal(typeof Object.getOwnPropertyDescriptor(queued, 'description')?.get, 'function');
    assert.equal(typeof Object.getOwnPropertyDescriptor(lazy, 'description')?.get, 'function');
    assert.deepEqual(queued, { ...expected.tasks['TASK-004']!, status: 'queued' });
    // Reading the copy's details does not read the original's.
    assert.equal(typeof Object.getOwnPropertyDescriptor(lazy, 'description')?.get, 'function');
    assert.deepEqual(lazy, expected.tasks['TASK-004']);
    // A task already read is copied plainly.
    const plain = taskWith(lazy, { priority: 'low' });
    assert.equal(typeof Object.getOwnPropertyDescriptor(plain, 'description')?.value, 'string');
    assert.deepEqual(plain, { ...expected.tasks['TASK-004']!, priority: 'low' });
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test("a task's usage survives a snapshot: read lazily only where it exists, and kept when a later record changes the task", async () => {
  const dir = await tempDir();
  const usage = (attempt: number): StateRecord => ({
    type: 'attempt.usage',
    id: 'TASK-002',
    usage: {
      attempt,
      stage: 'architect',
      agent: 'architect',
      at: '2026-01-01T00:00:00.000Z',
      models: [
        {
          model: 'claude-test',
          input: 1000,
          output: 50,
          cacheRead: 10,
          cacheWrite: 0,
          costUsd: 0.01,
          costSource: 'cli',
        },
      ],
      session: 'session-1',
    },
  });
  try {
    const records = [...(await seeded(dir)), usage(1)];
    let w = await writer(dir);
    await w.store.commit([usage(1)]);
    await w.store.snapshotNow();
    await w.store.close();
    await w.lease.release();

    // A reader: the task with usage has the field (a getter until read), the others do not have it.
    const r = await reader(dir);
    assert.equal(Object.prototype.hasOwnProperty.call(r.state.tasks['TASK-001']!, 'usage'), false);
    assert.equal(typeof Object.getOwnPropertyDescriptor(r.state.tasks['TASK-002']!, 'usage')?.get, 'function');
    assert.deepEqual(r.state, replayReference(records));
    assert.equal(r.state.tasks['TASK-002']!.usage?.attempts.length, 1);
    await r.close();

    // A writer that opens on that snapshot and records another attempt's usage keeps the first one.
    w = await writer(dir);
    await w.store.commit([usage(2)]);
    await w.store.snapshotNow();
    await w.store.close();
    await w.lease.release();
    const again = await reader(dir);
    assert.deepEqual(
      again.state.tasks['TASK-002']!.usage?.attempts.map((a) => a.attempt),
      [1, 2],
    );
    assert.deepEqual(again.state, replayReference([...records, usage(2)]));
    await again.close();
  } finally {
    await removeDir(dir);
  }
});

/** Changes one byte of `task`'s line in the snapshot at `path` in place (same length, same file), as damage would. */
async function damageInPlace(path: string, task: string): Promise<void> {
  const bytes = await readFile(path);
  const at = bytes.indexOf(Buffer.from(`Line one of ${task}`));
  assert.ok(at > 0, `the line of ${task} is in ${path}`);
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from('X'), 0, 1, at);
  await fh.close();
}

void test('a task line damaged in the file after the reader checked it gives a clear error when it is read, never other data', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [name] = await snapshots(dir);
    const path = join(dir, name!);
    const r = await reader(dir);
    await damageInPlace(path, 'TASK-003');
    // The row fields were read at open; the details are read now, and their bytes no longer match.
    assert.equal(r.state.tasks['TASK-003']!.status, 'pending');
    assert.throws(
      () => r.state.tasks['TASK-003']!.description,
      (e: unknown) => {
        assert.ok(isPipelineError(e) && e.code === 'corrupt-snapshot', String(e));
        assert.equal(e.details.file, path);
        assert.equal(e.details.where, 'line 6');
        assert.match(e.message, /changed after it was checked/);
        return true;
      },
    );
    // Another task's line, not damaged, still has the checksum the header's line table gives it:
    // it reads as written.
    assert.equal(r.state.tasks['TASK-004']!.description, replayReference(records).tasks['TASK-004']!.description);
    await r.close();

    // Opened afresh, the damaged snapshot is passed over and the journal gives the state.
    const again = await reader(dir);
    assert.deepEqual(again.state, replayReference(records));
    assert.ok(
      again.warnings.some((w) => w.includes(name!) && /checksum mismatch/.test(w)),
      again.warnings.join(' / '),
    );
    await again.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a leader that read a snapshot lazily writes the next one from the file it read, byte for byte, even once that file is gone', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [first] = await snapshots(dir);
    const before = decodeSnapshot(await readFile(join(dir, first!)))
      .body.toString('utf8')
      .split('\n');

    const { store, lease } = await writer(dir);
    assert.equal(typeof Object.getOwnPropertyDescriptor(store.state.tasks['TASK-004']!, 'history')?.get, 'function');
    // Another process moved the file away: the open file still holds the lines that were checked.
    await rename(join(dir, first!), join(dir, `${first!}.moved`));
    const more: StateRecord[] = [transition('TASK-002', 0)];
    await store.commit(more);
    await store.snapshotNow();
    const names = await snapshots(dir);
    assert.equal(names.length, 1);
    const after = decodeSnapshot(await readFile(join(dir, names[0]!)))
      .body.toString('utf8')
      .split('\n');
    for (const i of [2, 4, 5, 6]) assert.equal(after[i], before[i], `line ${i + 1} is reused`);
    await store.close();
    await lease.release();
    const r = await reader(dir);
    assert.deepEqual(r.state, replayReference([...records, ...more]));
    await r.close();
  } finally {
    await removeDir(dir);
  }
});

void test('a leader whose snapshot was damaged in place after it read it refuses to copy the damage into the next snapshot', async () => {
  const dir = await tempDir();
  try {
    const records = await seeded(dir);
    const [first] = await snapshots(dir);
    const path = join(dir, first!);
    const { store, lease } = await writer(dir);
    await store.commit([transition('TASK-002', 0)]);
    await damageInPlace(path, 'TASK-005');
    await assert.rejects(
      store.snapshotNow(),
      (e: unknown) => isPipelineError(e) && e.code === 'corrupt-snapshot' && e.details.file === path,
    );
    // No snapshot was written from the damaged bytes.
    assert.deepEqual(await snapshots(dir), [first]);
    await store.close();
    await lease.release();
    const r = await reader(dir);
    assert.deepEqual(r.state, replayReference([...records, transition('TASK-002', 0)]));
    await r.close();
  } finally {
    await removeDir(dir);
  }
});
