import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  cli,
  FIXTURES,
  fails,
  json,
  mentions,
  ok,
  requireCli,
  shown,
  status,
  withRepo,
  type StatusJson,
} from './cliKit';

/**
 * Bad files under `.pipeline/`: a malformed config, a damaged journal, a damaged snapshot. Each
 * gets an error or a warning that names the file, the place and the fix; nothing is overwritten
 * (a damaged file is moved or copied aside, never deleted); commands go on working where they can.
 */

requireCli();

type TaskJson = StatusJson['tasks'][string];

const configOf = (dir: string) => join(dir, '.pipeline', 'config.json');
const stateDirOf = (dir: string) => join(dir, '.pipeline', 'state');

async function journals(dir: string): Promise<string[]> {
  return (await readdir(stateDirOf(dir))).filter((n) => /^journal-\d+-e\d+\.log$/.test(n)).sort();
}

/** The newest non-empty journal segment: where the last commit went. */
async function lastSegment(dir: string): Promise<string> {
  const names = await journals(dir);
  for (const n of names.reverse()) {
    if ((await readFile(join(stateDirOf(dir), n))).length > 0) return join(stateDirOf(dir), n);
  }
  assert.fail('no journal segment with records');
}

async function asideFiles(dir: string, kind: 'corrupt' | 'stale' = 'corrupt'): Promise<string[]> {
  return (await readdir(stateDirOf(dir))).filter((n) => n.includes(`.${kind}-`)).sort();
}

test('a config.json with a syntax error names the file, line and column; a wrong value names its JSON path; the file is not rewritten', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Before');
    const file = configOf(dir);
    const good = await readFile(file, 'utf8');

    const cases: Array<[string, string[]]> = [
      // A trailing comma (V8's message has no position for some of these; the place must still be there).
      ['{\n  "targetBranch": "main",\n  "stages": [],\n}\n', ['line 4, column 1']],
      ['{\n  "targetBranch": "main"\n  "pilotLabel": "pilot"\n}\n', ['line 3, column 3']],
      ['{\n  "targetBranch": "main",\n  "stages": [\n', ['line 4, column 1']],
      ['{\n  "retry": { "maxAttempts": tru }\n}\n', ['line 2, column 29']],
    ];
    for (const [text, where] of cases) {
      await writeFile(file, text);
      for (const args of [['status'], ['task', 'add', 'x'], ['run', '--dry']]) {
        const err = await fails(dir, 1, ...args);
        mentions(err, file, 'not valid JSON', ...where, 'fix:');
      }
      assert.equal(await readFile(file, 'utf8'), text, 'the bad file is left as the person wrote it');
    }

    const values: Array<[unknown, string]> = [
      [{ retry: { maxAttempts: 0 } }, 'retry.maxAttempts'],
      [{ stages: [{ name: 'Build', role: 'builder' }] }, 'stages[0].name'],
      [{ targetBrnach: 'dev' }, 'targetBrnach'],
      [{ reworkStage: 'coding' }, 'reworkStage'],
    ];
    for (const [value, path] of values) {
      const text = JSON.stringify(value, null, 2);
      await writeFile(file, text);
      const err = await fails(dir, 1, 'status');
      mentions(err, file, 'not a valid pipeline configuration', `(${path})`, 'fix:');
      assert.equal(await readFile(file, 'utf8'), text);
    }

    await writeFile(file, good);
    assert.deepEqual(
      Object.keys((await status(dir)).tasks),
      ['TASK-001'],
      'with the config corrected, everything is as before',
    );
  });
});

test('a config.json that begins with a byte-order mark (as some Windows editors write it) is read; a wrong value in it is still placed by line and column', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const file = configOf(dir);
    await writeFile(file, `\uFEFF${await readFile(file, 'utf8')}`);
    await ok(dir, 'task', 'add', 'With a mark');
    assert.deepEqual(Object.keys((await status(dir)).tasks), ['TASK-001']);
    assert.deepEqual(
      (await readFile(file)).subarray(0, 3),
      Buffer.from([0xef, 0xbb, 0xbf]),
      'the file is not rewritten',
    );

    await writeFile(file, '\uFEFF{\n  "retry": { "maxAttempts": 0 }\n}\n');
    const err = await fails(dir, 1, 'status');
    mentions(err, file, '(retry.maxAttempts', 'line 2', 'fix:');
    assert.doesNotMatch(err, /line 1, column 1/);
  });
});

test('a config without a test stage is accepted: the default conflict stages are those of test and implementation that exist', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const file = configOf(dir);
    const config = JSON.parse(await readFile(file, 'utf8')) as { stages: Array<{ name: string }> };
    config.stages = config.stages.filter((st) => st.name !== 'test');
    await writeFile(file, JSON.stringify(config, null, 2));
    await ok(dir, 'task', 'add', 'Three stages');
    const s = await status(dir);
    assert.deepEqual(Object.keys(s.queues).slice(0, 4), ['unassigned', 'architect', 'implementation', 'supervisor']);

    // An explicit conflict stage that is not a stage is refused, naming the value and the stages.
    await writeFile(file, JSON.stringify({ ...config, conflictStages: ['test'] }, null, 2));
    const err = await fails(dir, 1, 'status');
    mentions(
      err,
      file,
      '(conflictStages[0])',
      '"test" is not one of the stages (architect, implementation, supervisor)',
    );
    mentions(err, 'fix: List only stages in "conflictStages"', 'the default (implementation)');
  });
});

test('a damaged line at the end of the journal: status warns naming the file and line; the next leader cuts it, keeps a copy aside, and carries on', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'One');
    await ok(dir, 'task', 'add', 'Two');
    const seg = await lastSegment(dir);
    const good = await readFile(seg);
    // A whole line with a wrong checksum (a damaged disk block, or an editor's save).
    await appendFile(seg, '0badc0de {"seq":3,"epoch":2,"ts":"2025-01-01T00:00:00Z","rec":{}}\n');
    const damaged = await readFile(seg);

    const st = await cli(dir, ['status']);
    assert.equal(st.code, 0, shown(st));
    assert.match(st.stdout, /^warning: Journal .*line 2/m);
    mentions(st.stdout, seg, 'checksum mismatch');
    assert.equal(
      (await json<TaskJson[]>(dir, 'task', 'list', '--json')).length,
      2,
      'readers still see every acknowledged task',
    );
    assert.deepEqual(await readFile(seg), damaged, 'a reader changes nothing');

    // A command that writes leads for a moment: it repairs, then commits after the good records.
    assert.equal((await ok(dir, 'task', 'add', 'Three')).trim(), 'Added TASK-003: Three');
    const aside = await asideFiles(dir);
    assert.equal(aside.length, 1, `one copy kept aside: ${aside.join(', ')}`);
    assert.ok(aside[0]!.startsWith(seg.split('/').pop()!));
    assert.deepEqual(await readFile(join(stateDirOf(dir), aside[0]!)), damaged, 'the copy aside is the whole original');
    assert.deepEqual(await readFile(seg), good, 'the segment was cut back to its last whole commit');

    const after = await cli(dir, ['status']);
    assert.doesNotMatch(after.stdout, /warning:/, 'once repaired, status is clean');
    assert.deepEqual(Object.keys((await status(dir)).tasks), ['TASK-001', 'TASK-002', 'TASK-003']);
  });
});

test('a torn last line (a crash in mid-write) is cut by the next leader, with the original copied aside; no acknowledged task is lost', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'One');
    const seg = await lastSegment(dir);
    const good = await readFile(seg);
    await appendFile(seg, '1234abcd {"seq":2,"epoch":1,"ts":"2025-');
    assert.deepEqual(Object.keys((await status(dir)).tasks), ['TASK-001']);
    await ok(dir, 'task', 'add', 'Two');
    assert.deepEqual(await readFile(seg), good);
    assert.equal((await asideFiles(dir)).length, 1);
    assert.deepEqual(Object.keys((await status(dir)).tasks), ['TASK-001', 'TASK-002']);
  });
});

/** Flips one bit of the file's body (its checksum no longer matches); returns the damaged bytes. */
async function damage(file: string): Promise<Buffer> {
  const buf = await readFile(file);
  buf.writeUInt8(buf.readUInt8(buf.length - 10) ^ 0x20, buf.length - 10);
  await writeFile(file, buf);
  return buf;
}

/** A pipeline whose state has a snapshot: snapshots every 2 records, then an import of 6 tasks. */
async function withSnapshot(dir: string): Promise<string> {
  const config = JSON.parse(await readFile(configOf(dir), 'utf8')) as Record<string, unknown>;
  await writeFile(configOf(dir), JSON.stringify({ ...config, snapshotEvery: 2 }, null, 2));
  await ok(dir, 'task', 'add', 'First');
  await cli(dir, ['task', 'import', join(FIXTURES, 'taskmaster-tagged.json')]);
  const snaps = (await readdir(stateDirOf(dir))).filter((n) => /^snapshot-\d+-e\d+\.json$/.test(n));
  assert.equal(snaps.length, 1, `a snapshot was written: ${(await readdir(stateDirOf(dir))).join(', ')}`);
  return join(stateDirOf(dir), snaps[0]!);
}

test('a damaged snapshot: status warns and recovers from the journal; the next leader moves it aside (not deleted); nothing is lost', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const snap = await withSnapshot(dir);
    const ids = Object.keys((await status(dir)).tasks);
    assert.equal(ids.length, 7);
    const buf = await damage(snap);

    const st = await cli(dir, ['status']);
    assert.equal(st.code, 0, shown(st));
    mentions(st.stdout, `warning: Snapshot ${snap} is damaged`, 'checksum mismatch', 'recovered from');
    assert.deepEqual(Object.keys((await status(dir)).tasks), ids);

    const added = /^Added (\S+):/.exec(await ok(dir, 'task', 'add', 'After'))?.[1];
    const aside = await asideFiles(dir);
    assert.equal(aside.length, 1, aside.join(', '));
    assert.ok(aside[0]!.startsWith(snap.split('/').pop()!), aside[0]);
    assert.deepEqual(await readFile(join(stateDirOf(dir), aside[0]!)), buf, 'moved aside as it was');
    assert.deepEqual(Object.keys((await status(dir)).tasks), [...ids, added]);
  });
});

test('a damaged snapshot whose journal is gone: every command fails clearly, naming the file and what to do; the snapshot is kept', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const snap = await withSnapshot(dir);
    // The records the snapshot covers are no longer in the journal (as after snapshots roll it).
    const snapSeq = Number(/snapshot-(\d+)-/.exec(snap)![1]);
    for (const n of await journals(dir))
      if (Number(/journal-(\d+)-/.exec(n)![1]) <= snapSeq) await rm(join(stateDirOf(dir), n));
    const buf = await damage(snap);

    const st = await fails(dir, 1, 'status');
    mentions(st, snap, 'damaged', 'fix:', 'backup');
    const add = await fails(dir, 1, 'task', 'add', 'More');
    mentions(add, 'snapshot', 'fix:');
    // Whoever found it damaged while leading moved it aside, whole; it is never deleted.
    const aside = await asideFiles(dir);
    assert.equal(aside.length, 1, aside.join(', '));
    assert.deepEqual(await readFile(join(stateDirOf(dir), aside[0]!)), buf);
    // Later commands keep failing clearly rather than starting again from an empty state (which
    // would drop every task without a word), readers and writers alike.
    for (const args of [['task', 'list'], ['task', 'add', 'More'], ['status']]) {
      mentions(await fails(dir, 1, ...args), 'no usable snapshot', 'does not start at record 1', aside[0]!, 'fix:');
    }
  });
});
