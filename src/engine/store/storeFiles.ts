import { readdir } from 'node:fs/promises';
import { crc32, crc32Hex } from './crc32';
import { isTempName } from './fsUtil';

/**
 * The state directory's files and their formats.
 *
 * - `journal-<start>-e<epoch>.log`: a segment of the journal, written only by the leader of that
 *   epoch, starting at record `start`. Each line is `<crc32 hex> <json>\n` with json
 *   `{"seq","epoch","ts","last"?,"rec"}`; the checksum covers the json bytes, so a torn or damaged
 *   line is recognised and replay stops there. A commit of several records is one write whose
 *   lines all carry `last`, the seq of the commit's last record: replay applies the commit only
 *   when every line through `last` is whole, so a crash never leaves half a commit applied.
 * - `snapshot-<seq>-e<epoch>.json`: the whole state after record `seq`, written by the leader of
 *   that epoch: one header line `{"format","version","layout"?,"seq","epoch","ts","bytes","crc",
 *   "lines"?}`, then the body: the state's json (version 1), or the state in a layout of the codec's
 *   own that it can read part by part (version 2, `layout` names it; see model/lazySnapshot.ts;
 *   `lines`, its line table, says where each line is and its checksum: SnapshotLineTable below).
 * - `*.tmp-<pid>-<hex>`: a write in progress (or orphaned by a crash: the leader sweeps them).
 * - `*.corrupt-<time>`, `*.stale-<time>`: files moved aside by recovery; never read, never deleted.
 *
 * Fencing lives in the names. A new leader of epoch E replays to record K and then creates
 * `journal-<K+1>-eE`. From then on, a commit of a lower epoch reaching seq K+1 or beyond (or a
 * snapshot of a lower epoch covering seq ≥ K+1) is a stale leader's late write: replay ignores it.
 * Because the rule needs only the directory listing, every reader and every later leader agrees on
 * which records count, whatever order the files were written in.
 */

export const SEGMENT_RE = /^journal-(\d{12})-e(\d{1,12})\.log$/;
export const SNAPSHOT_RE = /^snapshot-(\d{12})-e(\d{1,12})\.json$/;

export function segmentName(start: number, epoch: number): string {
  return `journal-${String(start).padStart(12, '0')}-e${epoch}.log`;
}

export function snapshotName(seq: number, epoch: number): string {
  return `snapshot-${String(seq).padStart(12, '0')}-e${epoch}.json`;
}

export interface SegmentFile {
  readonly name: string;
  /** The seq of the segment's first record. */
  readonly start: number;
  /** The epoch of the leader that writes it. */
  readonly epoch: number;
  /** Records of this segment with seq ≥ fence are stale (a higher epoch took over at `fence`). */
  readonly fence: number;
  /**
   * No valid record of this segment has a seq above this: the segment's writer rolled to a later
   * segment, or a higher epoch took over. Infinity while the segment may still grow.
   */
  readonly lastValidBound: number;
}

export interface SnapshotFile {
  readonly name: string;
  readonly seq: number;
  readonly epoch: number;
  /** Written by a leader that had already been replaced when it covered `seq` (see the header). */
  readonly stale: boolean;
}

export interface Layout {
  /** In replay order: by start, then epoch. */
  readonly segments: readonly SegmentFile[];
  /** Newest first: by seq, then epoch. */
  readonly snapshots: readonly SnapshotFile[];
  readonly temps: readonly string[];
  /** The highest epoch any segment or snapshot carries (0 when there is none). */
  readonly maxEpoch: number;
}

/** What a state directory that does not exist yet holds. */
export const EMPTY_LAYOUT: Layout = { segments: [], snapshots: [], temps: [], maxEpoch: 0 };

export async function readLayout(dir: string): Promise<Layout> {
  const names = await readdir(dir);
  const raw: { name: string; start: number; epoch: number }[] = [];
  const snaps: { name: string; seq: number; epoch: number }[] = [];
  const temps: string[] = [];
  for (const name of names) {
    let m = SEGMENT_RE.exec(name);
    if (m) {
      raw.push({ name, start: Number(m[1]), epoch: Number(m[2]) });
      continue;
    }
    m = SNAPSHOT_RE.exec(name);
    if (m) {
      snaps.push({ name, seq: Number(m[1]), epoch: Number(m[2]) });
      continue;
    }
    if (isTempName(name)) temps.push(name);
  }
  raw.sort((a, b) => a.start - b.start || a.epoch - b.epoch);

  // The first seq each epoch's takeover claimed; fences and bounds follow from it.
  const fenceFor = (epoch: number): number => {
    let f = Infinity;
    for (const s of raw) if (s.epoch > epoch && s.start < f) f = s.start;
    return f;
  };
  const segments: SegmentFile[] = raw.map((s, i) => {
    const fence = fenceFor(s.epoch);
    let bound = fence - 1;
    for (let j = i + 1; j < raw.length; j++) {
      const next = raw[j]!;
      if (next.epoch >= s.epoch) {
        bound = Math.min(bound, next.start - 1);
        break;
      }
    }
    return { ...s, fence, lastValidBound: bound };
  });

  const snapshots: SnapshotFile[] = snaps
    .map((s) => ({ ...s, stale: fenceFor(s.epoch) <= s.seq }))
    .sort((a, b) => b.seq - a.seq || b.epoch - a.epoch);

  let maxEpoch = 0;
  for (const s of raw) maxEpoch = Math.max(maxEpoch, s.epoch);
  for (const s of snaps) maxEpoch = Math.max(maxEpoch, s.epoch);
  return { segments, snapshots, temps, maxEpoch };
}

// ---------------------------------------------------------------------------------------------
// Journal lines.

export interface JournalEntry {
  readonly seq: number;
  readonly epoch: number;
  readonly ts: string;
  /** The seq of the last record of the commit this record belongs to (itself for a single record). */
  readonly last: number;
  readonly rec: unknown;
}

const NL = 0x0a;
const SPACE = 0x20;

/**
 * One journal line, ready to append: `<crc32 hex> {"seq":…,"epoch":…,"ts":…,"last":…,"rec":…}\n`;
 * `last` is left out for a commit of one record.
 */
export function encodeLine(seq: number, epoch: number, ts: string, last: number, recJson: string): Buffer {
  const lastPart = last === seq ? '' : `"last":${last},`;
  const json = Buffer.from(
    `{"seq":${seq},"epoch":${epoch},"ts":${JSON.stringify(ts)},${lastPart}"rec":${recJson}}`,
    'utf8',
  );
  const out = Buffer.allocUnsafe(9 + json.length + 1);
  out.write(crc32Hex(json), 0, 'latin1');
  out[8] = SPACE;
  json.copy(out, 9);
  out[out.length - 1] = NL;
  return out;
}

export type ScannedLine =
  /** A whole line whose checksum and shape are right. */
  | { kind: 'entry'; entry: JournalEntry; offset: number; end: number; line: number }
  /** A whole line that is damaged: a bad checksum, bad json or a wrong shape. */
  | { kind: 'bad'; offset: number; end: number; line: number; reason: string }
  /** Bytes after the last newline: a torn write, or one still in progress. */
  | { kind: 'partial'; offset: number; end: number; line: number };

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}

/**
 * Splits a chunk of a segment into lines and checks each one. `baseOffset` and `baseLine` are the
 * chunk's position in its file, so what is reported points at the file.
 */
export function* scanLines(buf: Buffer, baseOffset: number, baseLine: number): Generator<ScannedLine> {
  let pos = 0;
  let line = baseLine;
  while (pos < buf.length) {
    const nl = buf.indexOf(NL, pos);
    const offset = baseOffset + pos;
    if (nl === -1) {
      yield { kind: 'partial', offset, end: baseOffset + buf.length, line };
      return;
    }
    const end = baseOffset + nl + 1;
    const reason = checkLine(buf, pos, nl);
    if (typeof reason === 'string') yield { kind: 'bad', offset, end, line, reason };
    else yield { kind: 'entry', entry: reason, offset, end, line };
    pos = nl + 1;
    line++;
  }
}

/** Returns the entry, or why the line is bad. */
function checkLine(buf: Buffer, start: number, nl: number): JournalEntry | string {
  if (nl - start < 11 || buf[start + 8] !== SPACE) return 'not a journal line (expected "<crc32> <json>")';
  const hex = buf.toString('latin1', start, start + 8);
  if (!/^[0-9a-f]{8}$/.test(hex)) return 'not a journal line (expected "<crc32> <json>")';
  const json = buf.subarray(start + 9, nl);
  if (crc32(json) !== parseInt(hex, 16)) return 'checksum mismatch (the line is damaged or was torn by a crash)';
  let v: unknown;
  try {
    v = JSON.parse(json.toString('utf8'));
  } catch {
    return 'checksum matches but the json does not parse';
  }
  if (typeof v !== 'object' || v === null) return 'not a journal entry object';
  const o = v as Record<string, unknown>;
  if (!isSeq(o.seq) || !isSeq(o.epoch) || typeof o.ts !== 'string' || !('rec' in o))
    return 'journal entry without seq, epoch, ts and rec';
  const last = o.last === undefined ? o.seq : o.last;
  if (!isSeq(last) || last < o.seq) return 'journal entry with a bad "last"';
  return { seq: o.seq, epoch: o.epoch, ts: o.ts, last, rec: o.rec };
}

// ---------------------------------------------------------------------------------------------
// Snapshots.

const SNAPSHOT_FORMAT = 'agent-pipeline-state-snapshot';

export interface SnapshotHeader {
  readonly format: typeof SNAPSHOT_FORMAT;
  /** 1: the body is the state's json; 2: the body is in the codec's `layout`. */
  readonly version: 1 | 2;
  readonly layout?: string;
  readonly seq: number;
  readonly epoch: number;
  readonly ts: string;
  readonly bytes: number;
  readonly crc: string;
  /** In a layout: where the body's lines are and their checksums (see SnapshotLineTable). */
  readonly lines?: SnapshotLineTable;
}

/**
 * A layout body's lines, for a reader that proves only what it reads: the head (the `head` lines a
 * layout reads whole at open) by its length and checksum, and every line after it by its own, kept
 * here so that nothing has to read the whole body to find or prove one line. Without it (files
 * written before it existed) a reader checks the body whole, as a leader always does.
 */
export interface SnapshotLineTable {
  /** How many lines the head has. */
  readonly head: number;
  readonly head_bytes: number;
  readonly head_crc: string;
  /** Base64 of a little-endian uint32 pair per line after the head: its length (without the newline) and CRC-32. */
  readonly table: string;
  /** CRC-32 of the table's decoded bytes. */
  readonly table_crc: string;
}

/**
 * The line table of a body whose first `headLines` lines are its head, or undefined for a body that
 * is not all lines (then readers check it whole).
 */
function lineTable(body: Buffer, headLines: number): SnapshotLineTable | undefined {
  let at = 0;
  for (let i = 0; i < headLines; i++) {
    const nl = body.indexOf(NL, at);
    if (nl === -1) return undefined;
    at = nl + 1;
  }
  const headBytes = at;
  const pairs: number[] = [];
  while (at < body.length) {
    const nl = body.indexOf(NL, at);
    if (nl === -1) return undefined;
    pairs.push(nl - at, crc32(body.subarray(at, nl)));
    at = nl + 1;
  }
  const table = Buffer.allocUnsafe(pairs.length * 4);
  for (let i = 0; i < pairs.length; i++) table.writeUInt32LE(pairs[i]!, i * 4);
  return {
    head: headLines,
    head_bytes: headBytes,
    head_crc: crc32Hex(body.subarray(0, headBytes)),
    table: table.toString('base64'),
    table_crc: crc32Hex(table),
  };
}

/**
 * The snapshot file's bytes: a header line with the body's length and checksum, then the body. Two
 * buffers, written one after the other, so a 5 MB body is not copied once more to join them. The
 * body is the state's json, or (with `layout`) bytes in a layout the codec defines.
 */
export function encodeSnapshot(
  seq: number,
  epoch: number,
  state: string | Buffer,
  layout?: string,
  /** The lines of a layout body that a reader reads whole: with it, the header carries a line table. */
  headLines?: number,
): [Buffer, Buffer] {
  const body = typeof state === 'string' ? Buffer.from(state, 'utf8') : state;
  const lines = layout !== undefined && headLines !== undefined ? lineTable(body, headLines) : undefined;
  const header: SnapshotHeader = {
    format: SNAPSHOT_FORMAT,
    version: layout === undefined ? 1 : 2,
    ...(layout === undefined ? {} : { layout }),
    seq,
    epoch,
    ts: new Date().toISOString(),
    bytes: body.length,
    crc: crc32Hex(body),
    ...(lines ? { lines } : {}),
  };
  return [Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), body];
}

/**
 * Checks a snapshot file's bytes: its header, length and checksum. Returns the header and the body's
 * bytes (parsed by the store, in the layout the header names), or throws why the file is bad.
 */
export function decodeSnapshot(buf: Buffer): { header: SnapshotHeader; body: Buffer } {
  const nl = buf.indexOf(NL);
  if (nl === -1) throw new Error('no header line (the file is empty or cut short)');
  const header = parseSnapshotHeader(buf.toString('utf8', 0, nl));
  const body = buf.subarray(nl + 1);
  if (body.length !== header.bytes)
    throw new Error(`the body has ${body.length} bytes, the header says ${header.bytes} (cut short or appended to)`);
  if (crc32Hex(body) !== header.crc) throw new Error('checksum mismatch (the file is damaged)');
  return { header, body };
}

/** A snapshot's header line (without its newline), checked; throws why it is not one. */
export function parseSnapshotHeader(line: string): SnapshotHeader {
  let h: unknown;
  try {
    h = JSON.parse(line);
  } catch {
    throw new Error('the header line is not json');
  }
  const o = (typeof h === 'object' && h !== null ? h : {}) as Record<string, unknown>;
  if (
    o.format !== SNAPSHOT_FORMAT ||
    !(o.version === 1 ? o.layout === undefined : o.version === 2 && typeof o.layout === 'string')
  )
    throw new Error('not a state snapshot (unknown header)');
  if (
    !Number.isSafeInteger(o.seq) ||
    !Number.isSafeInteger(o.epoch) ||
    !Number.isSafeInteger(o.bytes) ||
    typeof o.crc !== 'string' ||
    typeof o.ts !== 'string'
  ) {
    throw new Error('the header misses seq, epoch, bytes or crc');
  }
  if (o.lines !== undefined && !isLineTable(o.lines, o.version))
    throw new Error("the header's line table is malformed");
  return o as unknown as SnapshotHeader;
}

function isLineTable(v: unknown, version: unknown): v is SnapshotLineTable {
  if (version !== 2 || typeof v !== 'object' || v === null) return false;
  const t = v as Record<string, unknown>;
  return (
    Number.isSafeInteger(t.head) &&
    (t.head as number) >= 0 &&
    Number.isSafeInteger(t.head_bytes) &&
    (t.head_bytes as number) >= 0 &&
    typeof t.head_crc === 'string' &&
    typeof t.table === 'string' &&
    typeof t.table_crc === 'string'
  );
}
