import { closeSync, openSync, readSync } from 'node:fs';
import { PipelineError } from '../errors';
import { crc32, crc32Hex } from './crc32';
import { parseSnapshotHeader, type SnapshotHeader, type SnapshotLineTable } from './storeFiles';

/**
 * A snapshot in a codec's layout, read without holding its body in memory: the body is lines, of
 * which the layout reads the first few whole at open (its state and index) and the others one at a
 * time when it first needs them. A 6 000-task snapshot is 6.6 MB, 5.5 MB of it task lines that a
 * read-only command mostly never reads; holding them was most of such a command's memory.
 *
 * Opening reads the file once, in chunks, and checks its length and checksum as a whole read does;
 * on the way it records where each line after the head starts. The first line read later reads the
 * body again, which must still have that checksum, and takes each line's own CRC-32 from it; every
 * line read is read again from the file and must have its CRC. So a line is proved by the bytes
 * the whole checksum proved, and a file changed in place meanwhile gives a clear error, never other
 * data. The file stays open while the lines can still be read: a snapshot is only ever replaced by a
 * rename or deleted by the leader, which leaves an open file's bytes as they were (on Windows too:
 * Node opens files with delete sharing). It is closed when nothing refers to the lines any more.
 *
 * Where the header has a line table (storeFiles.ts), the lines' places and checksums come from it:
 * opening checks the body's checksum alone, without looking for every newline in it, and the first
 * line read does not read the body again to take each line's checksum. On a 6 000-task state each
 * of those was a pass over 5.5 MB of task lines (35 M instructions each, against 800 M for all a
 * read-only command does after Node's own start).
 */

const NL = 0x0a;
/** Bytes read at a time while checking, and at least this much around a line read later. */
const CHUNK = 256 * 1024;
const WINDOW = 64 * 1024;

/** The body's lines after its head, read on demand; what a layout's `read` gets. */
export interface SnapshotLines {
  /** The snapshot file, for error messages. */
  readonly file: string;
  /** The first lines of the body (as many as the layout asked for), whole, without their newlines. */
  readonly head: readonly Buffer[];
  /** How many lines follow the head. */
  readonly count: number;
  /** Line `i` after the head (from 0), without its newline, proved by its checksum; throws when it changed. */
  line(i: number): Buffer;
}

const closer = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing to release.
  }
});

/** The typed array's own indexOf: a builtin, without Buffer.indexOf's argument handling, once per line. */
function indexOf(data: Uint8Array, byte: number, from: number): number {
  return Uint8Array.prototype.indexOf.call(data, byte, from);
}

class FileLines implements SnapshotLines {
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;
  /** Each line's CRC-32, taken at the first line read (see `prove`). */
  private crcs: Uint32Array | undefined;

  constructor(
    readonly file: string,
    private readonly fd: number,
    readonly head: readonly Buffer[],
    /** File offsets: line i spans starts[i] to starts[i + 1] - 1, where its newline is. */
    private readonly starts: Float64Array,
    private readonly bodyStart: number,
    private readonly crc: string,
    /** The lines' checksums from the header's line table: each line is proved by its own alone. */
    tableCrcs?: Uint32Array,
  ) {
    this.crcs = tableCrcs;
    closer.register(this, fd);
  }

  get count(): number {
    return this.starts.length - 1;
  }

  line(i: number): Buffer {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`line ${i} of ${this.count}`);
    const crcs = (this.crcs ??= this.prove(i));
    const start = this.starts[i]!;
    const end = this.starts[i + 1]! - 1;
    if (start < this.windowStart || end > this.windowStart + this.window.length) {
      // Sequential reads (the next snapshot's writer) take the lines that follow with this one.
      const w = Buffer.allocUnsafeSlow(Math.max(WINDOW, end - start));
      const n = this.read(i, w, start);
      this.window = w.subarray(0, n);
      this.windowStart = start;
      if (end > start + n) throw this.changed(i, 'the file is shorter than when it was checked');
    }
    const bytes = this.window.subarray(start - this.windowStart, end - this.windowStart);
    if (crc32(bytes) !== crcs[i]) throw this.changed(i, 'its bytes differ from those its checksum proved');
    return bytes;
  }

  /**
   * Each line's checksum, taken from the body as it is now, which must still have the checksum it
   * had at open: so the lines are proved by the same bytes (opening does not take them, since a
   * read-only command rarely reads a line at all). `i` is the line asked for, for the error.
   */
  private prove(i: number): Uint32Array {
    const starts = this.starts;
    const crcs = new Uint32Array(this.count);
    const end = starts[this.count]!;
    const buf = Buffer.allocUnsafeSlow(CHUNK);
    let whole = 0;
    let line = 0;
    let lineCrc = 0;
    for (let off = this.bodyStart; off < end;) {
      const n = this.read(i, buf, off, Math.min(CHUNK, end - off));
      if (n === 0) throw this.changed(i, 'the file is shorter than when it was checked');
      whole = crc32(buf.subarray(0, n), whole);
      const chunkEnd = off + n;
      // The part of each line (without its newline) that lies in this chunk.
      while (line < crcs.length && starts[line]! < chunkEnd) {
        const lineEnd = starts[line + 1]! - 1;
        const a = Math.max(starts[line]!, off);
        const b = Math.min(lineEnd, chunkEnd);
        if (b > a) lineCrc = crc32(buf.subarray(a - off, b - off), lineCrc);
        if (lineEnd >= chunkEnd) break;
        crcs[line++] = lineCrc;
        lineCrc = 0;
      }
      off = chunkEnd;
    }
    if (whole.toString(16).padStart(8, '0') !== this.crc)
      throw this.changed(i, 'is no longer what its checksum proved (the file was changed in place)');
    return crcs;
  }

  private read(i: number, into: Buffer, at: number, length = into.length): number {
    try {
      return readSync(this.fd, into, 0, length, at);
    } catch (e) {
      throw this.changed(i, `could not be read again (${(e as Error).message})`);
    }
  }

  private changed(i: number, what: string): PipelineError {
    const where = `line ${i + this.head.length + 2}`;
    return new PipelineError(
      'corrupt-snapshot',
      `The state snapshot ${this.file} changed after it was checked: ${where} ${what}.`,
      {
        file: this.file,
        where,
        fix: `Run the command again: it reads the state afresh (and a damaged snapshot is passed over for the older one and the journal). If it happens again, move ${this.file} aside (for example to ${this.file}.bad).`,
      },
    );
  }
}

/**
 * Reads the snapshot at `path` in chunks: its header, and, for a body in a layout, the body checked
 * whole against the header's length and checksum, its first `headLines(header)` lines kept and the
 * rest left in the file (see above). A plain json body (no layout) is returned whole. Throws a plain
 * Error saying why when the file is not a whole snapshot (the store then passes it over), and the
 * file system's error when it cannot be read.
 */
export function readSnapshotLines(
  path: string,
  headLines: (header: SnapshotHeader) => number,
): { header: SnapshotHeader; body: Buffer } | { header: SnapshotHeader; lines: SnapshotLines } {
  const fd = openSync(path, 'r');
  let keep = false;
  try {
    let buf = Buffer.allocUnsafeSlow(CHUNK);
    let got = readSync(fd, buf, 0, buf.length, 0);
    let nl = buf.subarray(0, got).indexOf(NL);
    if (nl === -1 && got === buf.length) {
      // A header with a large line table: read on until its end.
      const parts = [buf.subarray(0, got)];
      let at = got;
      for (;;) {
        const more = Buffer.allocUnsafeSlow(CHUNK);
        const n = readSync(fd, more, 0, more.length, at);
        if (n === 0) break;
        parts.push(more.subarray(0, n));
        at += n;
        const e = more.subarray(0, n).indexOf(NL);
        if (e !== -1 || n < more.length) break;
      }
      buf = Buffer.concat(parts);
      got = buf.length;
      nl = buf.indexOf(NL);
    }
    if (nl === -1) throw new Error('no header line (the file is empty or cut short)');
    const header = parseSnapshotHeader(buf.toString('utf8', 0, nl));
    const bodyStart = nl + 1;
    const bodyEnd = bodyStart + header.bytes;
    const cut = (): Error =>
      new Error(`the body has fewer bytes than the header says (${header.bytes}): it was cut short`);

    if (header.layout === undefined) {
      // Plain json: the whole body is parsed anyway.
      const body = Buffer.allocUnsafeSlow(header.bytes);
      const inFirst = Math.min(got - bodyStart, header.bytes);
      buf.copy(body, 0, bodyStart, bodyStart + inFirst);
      for (let at = inFirst; at < header.bytes;) {
        const n = readSync(fd, body, at, header.bytes - at, bodyStart + at);
        if (n === 0) throw cut();
        at += n;
      }
      assertEnds(fd, bodyEnd, got > bodyEnd, header);
      if (crc32(body).toString(16).padStart(8, '0') !== header.crc)
        throw new Error('checksum mismatch (the file is damaged)');
      return { header, body };
    }

    const wantHead = headLines(header);
    if (header.lines && header.lines.head === wantHead) {
      const first = buf.subarray(Math.min(bodyStart, got), got);
      const lines = openByTable(path, fd, header, header.lines, bodyStart, first, wantHead);
      keep = true;
      return { header, lines };
    }
    const head: Buffer[] = [];
    let headParts: Buffer[] = [];
    const starts: number[] = [];
    let whole = 0;
    let lineStart = bodyStart;
    // The chunk in `buf` starts at file offset `off`; its body bytes are [from, to).
    let off = 0;
    let from = bodyStart;
    for (;;) {
      const to = Math.min(got, bodyEnd - off);
      if (to > from) {
        const data = buf.subarray(from, to);
        whole = crc32(data, whole);
        for (let p = 0; p < data.length;) {
          const e = indexOf(data, NL, p);
          if (head.length < wantHead) {
            headParts.push(Buffer.from(data.subarray(p, e === -1 ? data.length : e)));
            if (e === -1) break;
            head.push(headParts.length === 1 ? headParts[0]! : Buffer.concat(headParts));
            headParts = [];
          } else {
            if (e === -1) break;
            starts.push(lineStart);
          }
          lineStart = off + from + e + 1;
          p = e + 1;
        }
      }
      if (off + got >= bodyEnd) break;
      off += got;
      from = 0;
      got = readSync(fd, buf, 0, buf.length, off);
      if (got === 0) throw cut();
    }
    assertEnds(fd, bodyEnd, off + got > bodyEnd, header);
    if (whole.toString(16).padStart(8, '0') !== header.crc) throw new Error('checksum mismatch (the file is damaged)');
    if (lineStart !== bodyEnd) throw new Error('the body does not end with a whole line');
    starts.push(bodyEnd);
    const lines = new FileLines(path, fd, head, Float64Array.from(starts), bodyStart, header.crc);
    keep = true;
    return { header, lines };
  } finally {
    if (!keep) closeSync(fd);
  }
}

/** Refuses a file with bytes after the body the header announced. */
function assertEnds(fd: number, bodyEnd: number, seenMore: boolean, header: SnapshotHeader): void {
  if (seenMore || readSync(fd, Buffer.alloc(1), 0, 1, bodyEnd) > 0)
    throw new Error(`the body has more bytes than the header says (${header.bytes}): it was appended to`);
}

/**
 * A body opened by its header's line table (see above): the body checked whole against the
 * header's length and checksum, the table against its own checksum and the body's length, the head
 * taken from the table's `head_bytes`. `first` holds the body's bytes already read with the header.
 * Throws a plain Error saying why the file is not whole, as the check by newlines does.
 */
function openByTable(
  path: string,
  fd: number,
  header: SnapshotHeader,
  t: SnapshotLineTable,
  bodyStart: number,
  first: Buffer,
  wantHead: number,
): FileLines {
  const table = Buffer.from(t.table, 'base64');
  if (crc32Hex(table) !== t.table_crc || table.length % 8 !== 0) throw new Error("the header's line table is damaged");
  const count = table.length / 8;
  const starts = new Float64Array(count + 1);
  const crcs = new Uint32Array(count);
  let at = bodyStart + t.head_bytes;
  for (let i = 0; i < count; i++) {
    starts[i] = at;
    crcs[i] = table.readUInt32LE(i * 8 + 4);
    at += table.readUInt32LE(i * 8) + 1;
  }
  starts[count] = at;
  const bodyEnd = bodyStart + header.bytes;
  if (at !== bodyEnd) throw new Error("the header's line table does not add up to the body's length");
  const cut = (): Error =>
    new Error(`the body has fewer bytes than the header says (${header.bytes}): it was cut short`);
  // The head is kept; the rest is read once, in chunks, for the checksum.
  const headBytes = Buffer.allocUnsafeSlow(t.head_bytes);
  let whole = 0;
  let off = bodyStart;
  let chunk = first.subarray(0, Math.min(first.length, header.bytes));
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  for (;;) {
    whole = crc32(chunk, whole);
    const inHead = Math.min(chunk.length, t.head_bytes - (off - bodyStart));
    if (inHead > 0) chunk.copy(headBytes, off - bodyStart, 0, inHead);
    off += chunk.length;
    if (off >= bodyEnd) break;
    const n = readSync(fd, buf, 0, Math.min(buf.length, bodyEnd - off), off);
    if (n === 0) throw cut();
    chunk = buf.subarray(0, n);
  }
  if (first.length > header.bytes || readSync(fd, Buffer.alloc(1), 0, 1, bodyEnd) > 0)
    throw new Error(`the body has more bytes than the header says (${header.bytes}): it was appended to`);
  if (whole.toString(16).padStart(8, '0') !== header.crc) throw new Error('checksum mismatch (the file is damaged)');
  if (crc32Hex(headBytes) !== t.head_crc) throw new Error("the header's line table does not match the body's head");
  const head: Buffer[] = [];
  for (let p = 0; head.length < wantHead;) {
    const e = indexOf(headBytes, NL, p);
    if (e === -1) throw new Error("the header's line table does not match the body's head");
    head.push(headBytes.subarray(p, e));
    p = e + 1;
    if (head.length === wantHead && p !== headBytes.length)
      throw new Error("the header's line table does not match the body's head");
  }
  return new FileLines(path, fd, head, starts, bodyStart, header.crc, crcs);
}
