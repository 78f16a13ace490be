import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PipelineError } from '../errors';
import { fsyncDir, writeAll } from './fsUtil';
import type { StoreCodec } from './storeCodec';
import { fsProblem } from './storeErrors';
import { encodeLine, readLayout, segmentName } from './storeFiles';

/**
 * The leader's side of the journal: the segment it appends commits to, a commit's lines, and after
 * a lost lease whether the new leader kept what was written. When to commit and what to do when it
 * fails is the store's (stateStore.ts); the line format is in storeFiles.ts.
 */

/** The journal segment this leader appends to: one file, opened for appending, and its size. */
export class JournalWriter {
  private fh: FileHandle | undefined;
  /** The file's name; kept after close, so that cleanup and the fence check still know it. */
  name = '';
  /** The seq of the segment's first record. */
  start = 0;
  private size = 0;

  constructor(private readonly dir: string) {}

  /** Opens (creating if needed) the segment of `epoch` that starts at record `start`. */
  async roll(start: number, epoch: number): Promise<void> {
    const name = segmentName(start, epoch);
    if (this.fh && this.name === name) {
      // Still the right file (a failed commit was undone in it): only its size may have changed.
      this.size = (await this.fh.stat()).size;
      return;
    }
    const old = this.fh;
    this.fh = undefined;
    await old?.close();
    let fh: FileHandle;
    try {
      fh = await open(join(this.dir, name), 'a');
    } catch (e) {
      throw fsProblem(e, join(this.dir, name), 'a journal file');
    }
    this.fh = fh;
    this.name = name;
    this.start = start;
    this.size = (await fh.stat()).size;
    await fsyncDir(this.dir);
  }

  /** Appends `buf` in one write and one fdatasync; resolves once it is durable. */
  async append(buf: Buffer): Promise<void> {
    const fh = this.fh!;
    const sizeBefore = this.size;
    try {
      await writeAll(fh, buf);
      await fh.datasync();
    } catch (e) {
      // Take back whatever part of the write landed, so the journal does not end in a torn commit
      // that the next append would bury; if even that fails, recovery cuts it off.
      await fh.truncate(sizeBefore).catch(() => undefined);
      throw e;
    }
    this.size += buf.length;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

/**
 * The records of a commit as they will read back from the journal, and the commit's lines, numbered
 * from `first`. Validates what will be replayed: a record that applied in memory but failed to
 * parse at replay would stop every later recovery there.
 */
export function encodeCommit<S, R>(
  codec: StoreCodec<S, R>,
  records: readonly R[],
  first: number,
  epoch: number,
): { parsed: R[]; buf: Buffer } {
  const ts = new Date().toISOString();
  const last = first + records.length - 1;
  const parsed: R[] = [];
  const lines: Buffer[] = [];
  for (let i = 0; i < records.length; i++) {
    const json = JSON.stringify(records[i]);
    if (json === undefined)
      throw new PipelineError('invalid-state', `Record ${i} of the commit cannot be serialised.`, {
        where: `records[${i}]`,
      });
    parsed.push(codec.parseRecord(JSON.parse(json)));
    lines.push(encodeLine(first + i, epoch, ts, last, json));
  }
  return { parsed, buf: lines.length === 1 ? lines[0]! : Buffer.concat(lines) };
}

/**
 * After losing the lease during a commit: did the new leader's takeover include our records (up to
 * `last`, in segment `segName`)? Its first segment starts after the last record its recovery saw,
 * so records below that start are kept and records at or past it are fenced. Before that segment
 * exists, nobody can tell yet.
 */
export async function fenceVerdict(dir: string, segName: string, last: number): Promise<'kept' | 'fenced' | 'unknown'> {
  try {
    const layout = await readLayout(dir);
    const ours = layout.segments.find((seg) => seg.name === segName);
    if (!ours || ours.fence === Infinity) return 'unknown';
    return last < ours.fence ? 'kept' : 'fenced';
  } catch {
    return 'unknown';
  }
}
