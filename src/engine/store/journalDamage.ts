import type { SegmentFile } from './storeFiles';

/**
 * What replay found wrong in a journal, and what it could still recover around it.
 *
 * Each journal line carries its own checksum and sequence number, so one damaged line does not hide
 * the lines after it. A record after damage is *ordered* (placed in the sequence and applied) when
 * its own line is intact and every sequence number between the last record placed and it is
 * accounted for: either the numbers follow on without a gap (the damaged bytes held no record the
 * sequence needs: a torn write that was never acknowledged, or stray bytes), or the gap is exactly
 * the damaged lines between the two (see `capacity`). A gap that the damaged bytes cannot explain
 * (a file deleted, lines removed) stops replay there: nothing after it is applied, because nobody
 * can say what is missing.
 *
 * Records are applied a whole commit at a time. A commit that lost one of its records is not applied
 * at all; its intact records are reported as not applied, with the reason. A later record that no
 * longer applies because of the loss (a change to a task whose creation was lost) is not applied
 * either, and reported. Everything lost is named by sequence number, with what the damaged bytes
 * still say about it.
 */

/** One damaged stretch of a journal file: a line whose checksum or shape is wrong, or a torn tail. */
export interface DamagedPiece {
  readonly seg: SegmentFile;
  readonly offset: number;
  readonly end: number;
  readonly line: number;
  readonly reason: string;
  /** What the damaged bytes still say (they cannot be trusted, only shown). */
  readonly guess: LineGuess | undefined;
  /** The piece begins like a journal line (`<crc32> {`). */
  readonly startsLine: boolean;
  /** Further line starts inside it (a newline that was destroyed joins two lines into one). */
  readonly embeddedStarts: number;
  /** It follows an intact line or the start of its file, so it begins a line of its own. */
  readonly afterIntact: boolean;
}

export interface LineGuess {
  readonly seq?: number;
  readonly last?: number;
  readonly summary?: string;
}

/** An acknowledged record whose line is damaged: it is not in the recovered state. */
export interface LostRecord {
  readonly seq: number;
  readonly file: string;
  readonly line: number;
  readonly offset: number;
  /** What it held, as far as the damaged bytes tell. */
  readonly guess: string | undefined;
}

/** An intact record that was not applied, and why. */
export interface UnappliedRecord {
  readonly seq: number;
  readonly file: string;
  readonly line: number;
  readonly what: string;
  readonly why: string;
}

/** Damage that cost no acknowledged record. `midFile`: intact records of the state follow it in its file. */
export interface HarmlessDamage {
  readonly seg: SegmentFile;
  readonly offset: number;
  readonly line: number;
  readonly what: string;
  readonly midFile: boolean;
}

/** Where replay could not go on: every record from here on is left out of the state. */
export interface StopPoint {
  readonly seg: SegmentFile;
  readonly offset: number;
  readonly line: number;
  readonly what: string;
  /** A record is missing before this point (as opposed to records that contradict each other). */
  readonly gap: boolean;
}

/** The damage one load found; collected by seq so that a reader re-reading a stretch counts it once. */
export class JournalDamage {
  readonly lost = new Map<number, LostRecord>();
  readonly unapplied = new Map<number, UnappliedRecord>();
  /** By file and byte offset, as are `tails`. */
  readonly harmless = new Map<string, HarmlessDamage>();
  /** Damaged or torn bytes at the end of a file that nothing intact follows: cut by the next leader. */
  readonly tails = new Map<string, DamagedPiece>();
  stop: StopPoint | undefined;

  /** Acknowledged records are missing from the state: only an explicit repair may make that permanent. */
  get hasLoss(): boolean {
    return this.lost.size > 0 || this.unapplied.size > 0 || this.stop !== undefined;
  }

  get isEmpty(): boolean {
    return !this.hasLoss && this.harmless.size === 0 && this.tails.size === 0;
  }

  /** "13, 15–17": seq numbers as short ranges. */
  static ranges(seqs: Iterable<number>): string {
    const sorted = [...seqs].sort((a, b) => a - b);
    const out: string[] = [];
    for (let i = 0; i < sorted.length;) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
      out.push(i === j ? String(sorted[i]) : `${sorted[i]}–${sorted[j]}`);
      i = j + 1;
    }
    return out.join(', ');
  }

  /** One sentence: what is lost and what is not applied. */
  lossSummary(): string {
    const parts: string[] = [];
    if (this.lost.size > 0)
      parts.push(
        `${this.lost.size} acknowledged record(s) are lost in damaged lines (${JournalDamage.ranges(this.lost.keys())})`,
      );
    if (this.unapplied.size > 0)
      parts.push(
        `${this.unapplied.size} intact record(s) could not be applied without them (${JournalDamage.ranges(this.unapplied.keys())})`,
      );
    if (this.stop) parts.push(`replay stopped at ${this.stop.seg.name}, line ${this.stop.line}: ${this.stop.what}`);
    return parts.join('; ');
  }
}

/** How many records a run of damaged pieces can have held: a range, since a stray newline splits a line in two. */
export function capacity(run: readonly DamagedPiece[]): { lo: number; hi: number } {
  let lo = 0;
  let hi = 0;
  for (const p of run) {
    // A piece right after an intact line begins a line; one after another damaged piece may be the
    // rest of that line (a newline byte appeared in it) unless it begins like a line itself.
    const own = p.afterIntact || p.startsLine ? 1 : 0;
    lo += own + p.embeddedStarts;
    hi += 1 + p.embeddedStarts;
  }
  return { lo, hi };
}

const LINE_START = /^[0-9a-f]{8} \{/;
const EMBEDDED_START = /[0-9a-f]{8} \{"seq":/g;

export function startsLikeLine(bytes: Buffer): boolean {
  return LINE_START.test(bytes.toString('latin1', 0, Math.min(bytes.length, 10)));
}

export function embeddedLineStarts(bytes: Buffer): number {
  const text = bytes.toString('latin1');
  let n = 0;
  for (const m of text.matchAll(EMBEDDED_START)) if (m.index > 0) n++;
  return n;
}

/** What a damaged line still says: its seq, its commit's last seq, and a summary of its record. */
export function guessLine(bytes: Buffer): LineGuess | undefined {
  const text = bytes.toString('utf8').replace(/\n$/, '');
  const json = text.length > 9 && text[8] === ' ' ? text.slice(9) : text;
  try {
    const v = JSON.parse(json) as Record<string, unknown>;
    if (typeof v === 'object' && v !== null) {
      const seq = typeof v.seq === 'number' ? v.seq : undefined;
      const last = typeof v.last === 'number' ? v.last : seq;
      const summary = v.rec === undefined ? undefined : describeRecord(v.rec);
      return {
        ...(seq !== undefined ? { seq } : {}),
        ...(last !== undefined ? { last } : {}),
        ...(summary ? { summary } : {}),
      };
    }
  } catch {
    // Not parseable any more: pick out what can still be read.
  }
  const seq = /"seq":(\d+)/.exec(json)?.[1];
  const last = /"last":(\d+)/.exec(json)?.[1];
  const type = /"type":"([^"]{1,40})"/.exec(json)?.[1];
  const id = /"id":"([^"]{1,80})"/.exec(json)?.[1];
  const title = /"title":"((?:[^"\\]|\\.){0,80})"/.exec(json)?.[1];
  if (seq === undefined && type === undefined) return undefined;
  const summary = [type, id, title === undefined ? undefined : `"${title}"`].filter(Boolean).join(' ');
  return {
    ...(seq !== undefined ? { seq: Number(seq) } : {}),
    ...(last !== undefined ? { last: Number(last) } : seq !== undefined ? { last: Number(seq) } : {}),
    ...(summary ? { summary } : {}),
  };
}

/** A short description of a record for people: its type, what it is about, and a title if it has one. */
export function describeRecord(rec: unknown): string {
  if (typeof rec !== 'object' || rec === null) return JSON.stringify(rec)?.slice(0, 80) ?? String(rec);
  const o = rec as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof o.type === 'string') parts.push(o.type);
  const inner = [o.task, o.agent].find((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
  const id = typeof o.id === 'string' ? o.id : typeof inner?.id === 'string' ? inner.id : undefined;
  if (id) parts.push(id);
  if (typeof inner?.title === 'string') parts.push(JSON.stringify(inner.title.slice(0, 80)));
  const event = o.event as Record<string, unknown> | undefined;
  if (typeof event?.type === 'string') parts.push(event.type);
  if (typeof o.mode === 'string') parts.push(o.mode);
  return parts.length > 0 ? parts.join(' ') : JSON.stringify(rec).slice(0, 80);
}
