import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPipelineError } from '../../../src/engine/errors';
import { readSnapshotLines, type SnapshotLines } from '../../../src/engine/store/snapshotLines';
import { decodeSnapshot, encodeSnapshot } from '../../../src/engine/store/storeFiles';
import { removeDir, tempDir } from './storeTestKit';

/**
 * Reading a snapshot in a layout line by line (store/snapshotLines.ts): the file is checked whole at
 * open, in chunks, whatever the lines' sizes against the chunks'; a line read later is the line that
 * was checked, or a clear error when the file changed in place; a rename over it or its deletion
 * does not change what is read.
 */

/** Lines of many sizes: short ones, ones around the 256 KB read chunk, and a head line larger than it. */
function bodyLines(): string[] {
  const lines = [`{"head":"${'h'.repeat(300_000)}"}`, '[1,2,3]'];
  const sizes = [1, 0, 17, 65_535, 65_536, 200_000, 262_143, 262_144, 3, 70_000, 1_000, 5];
  sizes.forEach((n, i) => lines.push(`${i}:${'abcdefghijklmnopqrstuvwxyz✓'.repeat(Math.ceil(n / 27)).slice(0, n)}`));
  return lines;
}

/** Written with the header's line table (as the store writes them now) unless `table` is false. */
async function writeSnapshot(path: string, lines: string[], table = true): Promise<void> {
  await writeFile(
    path,
    Buffer.concat(encodeSnapshot(7, 1, `${lines.join('\n')}\n`, 'test-lines', table ? 2 : undefined)),
  );
}

function readLines(path: string, head = 2): SnapshotLines {
  const r = readSnapshotLines(path, () => head);
  assert.ok('lines' in r, 'a layout body is read by lines');
  return r.lines;
}

for (const table of [true, false]) {
  void test(`a layout body is checked whole and its lines read back exactly, across read chunks (${table ? 'with' : 'without'} a line table)`, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir, 'snapshot-000000000007-e1.json');
      const lines = bodyLines();
      await writeSnapshot(path, lines, table);
      assert.equal(decodeSnapshot(await readFile(path)).header.lines !== undefined, table);
      const r = readLines(path);
      assert.deepEqual(
        r.head.map((b) => b.toString('utf8')),
        lines.slice(0, 2),
      );
      assert.equal(r.count, lines.length - 2);
      // Out of order, then in order, so that both a fresh read and the read-ahead window are used.
      for (const i of [5, 0, 9, 3]) assert.equal(r.line(i).toString('utf8'), lines[i + 2], `line ${i}`);
      for (let i = 0; i < r.count; i++) assert.equal(r.line(i).toString('utf8'), lines[i + 2], `line ${i}`);
      assert.throws(() => r.line(r.count), RangeError);
    } finally {
      await removeDir(dir);
    }
  });
}

for (const table of [true, false]) {
  void test(`a damaged, cut short or lengthened file is refused at open with why (${table ? 'with' : 'without'} a line table)`, async () => {
    const dir = await tempDir();
    try {
      const path = join(dir, 'snapshot-000000000007-e1.json');
      const lines = bodyLines();
      await writeSnapshot(path, lines, table);
      const good = await readFile(path);

      const flipped = Buffer.from(good);
      flipped[flipped.length - 40_000] = flipped[flipped.length - 40_000]! ^ 1;
      await writeFile(path, flipped);
      assert.throws(() => readLines(path), /checksum mismatch/);

      await writeFile(path, good.subarray(0, good.length - 10));
      assert.throws(() => readLines(path), /fewer bytes than the header says .*cut short/);

      await writeFile(path, Buffer.concat([good, Buffer.from('x')]));
      assert.throws(() => readLines(path), /more bytes than the header says .*appended to/);

      if (table) {
        // A line table that does not fit the body, or whose own checksum fails, is refused.
        const { header, body } = decodeSnapshot(good);
        const t = header.lines!;
        const otherHead = { ...header, lines: { ...t, head_bytes: t.head_bytes + 1 } };
        await writeFile(path, Buffer.concat([Buffer.from(`${JSON.stringify(otherHead)}\n`), body]));
        assert.throws(() => readLines(path), /line table does not add up to the body's length/);
        const bytes = Buffer.from(t.table, 'base64');
        bytes[0] = bytes[0]! ^ 1;
        const damagedTable = { ...header, lines: { ...t, table: bytes.toString('base64') } };
        await writeFile(path, Buffer.concat([Buffer.from(`${JSON.stringify(damagedTable)}\n`), body]));
        assert.throws(() => readLines(path), /line table is damaged/);
      }

      // A body that does not end with a newline is not lines.
      const { header, body } = decodeSnapshot(good);
      await writeFile(
        path,
        Buffer.concat(encodeSnapshot(header.seq, header.epoch, body.subarray(0, -1), header.layout)),
      );
      assert.throws(() => readLines(path), /does not end with a whole line/);

      // A plain json body comes back whole.
      await writeFile(path, Buffer.concat(encodeSnapshot(7, 1, '{"a":1}')));
      const plain = readSnapshotLines(path, () => 2);
      assert.ok('body' in plain);
      assert.equal(plain.body.toString('utf8'), '{"a":1}');
    } finally {
      await removeDir(dir);
    }
  });
}

/** Changes one byte of `line` (a line of the body) in the file at `path`, in place, as damage would. */
async function damageInPlace(path: string, line: string): Promise<number> {
  const text = await readFile(path);
  const at = text.indexOf(Buffer.from(line)) + 2;
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from('Z'), 0, 1, at);
  await fh.close();
  return text.length;
}

function changedError(path: string, where: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isPipelineError(e) && e.code === 'corrupt-snapshot', String(e));
    assert.equal(e.details.file, path);
    assert.equal(e.details.where, where);
    assert.match(e.message, /changed after it was checked/);
    assert.match(e.details.fix ?? '', /Run the command again/);
    return true;
  };
}

void test('a line changed in the file after it was read once gives a clear error naming the file and the line', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'snapshot-000000000007-e1.json');
    const lines = bodyLines();
    await writeSnapshot(path, lines);
    const r = readLines(path);
    assert.equal(r.line(0).toString('utf8'), lines[2]);
    // Line 3 after the head is line 7 of the file (after the header, the two head lines and lines 0 to 2).
    const size = await damageInPlace(path, lines[5]!);
    assert.throws(() => r.line(3), changedError(path, 'line 7'));
    // The lines the change did not touch still read.
    assert.equal(r.line(4).toString('utf8'), lines[6]);

    // Cut short in place: the lines past the cut cannot be proved.
    const fh = await open(path, 'r+');
    await fh.truncate(size - 100);
    await fh.close();
    assert.throws(
      () => r.line(r.count - 1),
      (e: unknown) => isPipelineError(e) && /shorter than when it was checked/.test(e.message),
    );
  } finally {
    await removeDir(dir);
  }
});

void test('a file changed in place between the check and the first line read gives the clear error for any line', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'snapshot-000000000007-e1.json');
    const lines = bodyLines();
    await writeSnapshot(path, lines, false);
    const r = readLines(path);
    await damageInPlace(path, lines[9]!);
    // The first read takes the lines' checksums from the body, which no longer has its own.
    assert.throws(() => r.line(0), changedError(path, 'line 4'));
    assert.throws(() => r.line(7), changedError(path, 'line 11'));
  } finally {
    await removeDir(dir);
  }
});

void test('with a line table, a line changed in place after the check gives the clear error, and the others still read', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'snapshot-000000000007-e1.json');
    const lines = bodyLines();
    await writeSnapshot(path, lines);
    const r = readLines(path);
    await damageInPlace(path, lines[9]!);
    // Each line is proved by its own checksum from the table: the one changed is refused, not the others.
    assert.equal(r.line(0).toString('utf8'), lines[2]);
    assert.throws(() => r.line(7), changedError(path, 'line 11'));
    assert.equal(r.line(8).toString('utf8'), lines[10]);
  } finally {
    await removeDir(dir);
  }
});

void test('a file replaced by a rename or deleted after the check still gives the lines that were checked', async () => {
  const dir = await tempDir();
  try {
    const path = join(dir, 'snapshot-000000000007-e1.json');
    const lines = bodyLines();
    await writeSnapshot(path, lines);
    const r = readLines(path);
    const other = join(dir, 'other.json');
    await writeSnapshot(
      other,
      lines.map((l) => l.toUpperCase()),
    );
    await rename(other, path);
    assert.equal(r.line(2).toString('utf8'), lines[4]);
    await unlink(path);
    assert.equal(r.line(7).toString('utf8'), lines[9]);
  } finally {
    await removeDir(dir);
  }
});
