import { join } from 'node:path';
import { isEnoent, readFrom } from './fsUtil';
import {
  capacity,
  describeRecord,
  embeddedLineStarts,
  guessLine,
  JournalDamage,
  startsLikeLine,
  type DamagedPiece,
  type LineGuess,
} from './journalDamage';
import { ReplayRestart, type Cursor, type ReplayContext, type ReplayPosition, type StoreMode } from './replayPosition';
import { fsProblem, message } from './storeErrors';
import { scanLines, type JournalEntry, type Layout, type SegmentFile } from './storeFiles';

/**
 * Replay of the journal into the state: recovery reads it from the snapshot on, and a reader
 * follows it from where it stopped. Which records can be placed after damaged lines is decided in
 * journalDamage.ts; the file formats are in storeFiles.ts; the position replay moves on is in
 * replayPosition.ts.
 */

interface Group {
  seg: SegmentFile;
  first: number;
  last: number;
  offset: number;
  line: number;
  entries: { entry: JournalEntry; line: number }[];
  end: Cursor;
  /** Why the commit cannot be applied: it lost a record. */
  broken?: string;
}

/**
 * Reads forward from the cursor (or from the first segment the state does not cover) and places
 * every record it can in the sequence (the rule is in journalDamage.ts), applying whole commits;
 * what it cannot place or apply goes to `ctx.damage`. A reader waits at an incomplete tail of
 * the last segment: the leader may be writing it. The cursor moves only past what is settled, so
 * a reader that stops inside damaged or incomplete lines reads them again next time.
 */
export async function replayJournal<S, R>(
  pos: ReplayPosition<S>,
  ctx: ReplayContext<S, R>,
  layout: Layout,
  mode: StoreMode,
): Promise<boolean> {
  const { dir, codec } = ctx;
  const segs = layout.segments;
  const dmg = ctx.damage;
  let changed = false;
  let run: DamagedPiece[] = [];
  let group: Group | undefined;
  let next = pos.seq + 1;
  let waiting = false;
  /** What damaged lines said about the records they held, by the seq they were placed at. */
  const guesses = new Map<number, LineGuess>();
  const path = (seg: SegmentFile): string => join(dir, seg.name);
  let i = pos.cursor
    ? segs.findIndex((s) => s.name === pos.cursor!.seg)
    : segs.findIndex((s) => s.lastValidBound > pos.seq);
  if (i === -1) i = segs.length;

  const stopAt = (seg: SegmentFile, offset: number, line: number, what: string, gap = false): void => {
    dmg.stop = { seg, offset, line, what, gap };
  };

  /**
   * Settles the stretch since the last record placed, at a record (or the start of a file) that
   * is numbered `seq`: the records in between are lost when the damaged lines there account for
   * them exactly; the damaged lines held nothing needed when no number is missing. False: it
   * cannot be placed, and replay stops.
   */
  const place = (seq: number, seg: SegmentFile, offset: number, line: number): boolean => {
    const gap = seq - next;
    if (gap < 0) {
      stopAt(seg, offset, line, `record ${seq} comes after records already placed up to ${next - 1}`);
      return false;
    }
    if (gap > 0) {
      const { lo, hi } = capacity(run);
      if (gap < lo || gap > hi) {
        const at = line > 0 ? `line ${line} (record ${seq})` : `the start of this file (record ${seq})`;
        stopAt(
          seg,
          offset,
          line,
          run.length === 0
            ? `record${gap > 1 ? `s ${next}–${seq - 1} are` : ` ${next} is`} missing before ${at}, and no damaged line is there to have held ${gap > 1 ? 'them' : 'it'}`
            : `record${gap > 1 ? `s ${next}–${seq - 1} are` : ` ${next} is`} missing before ${at}, and the ${run.length} damaged line(s) before it cannot have held exactly ${gap}`,
          true,
        );
        return false;
      }
      const exact = run.length === gap && run.every((p) => p.embeddedStarts === 0);
      const all = run
        .map((p) => p.guess?.summary)
        .filter(Boolean)
        .join('; ');
      for (let s = next; s < seq; s++) {
        const p = exact ? run[s - next]! : run[0]!;
        if (exact && p.guess) guesses.set(s, p.guess);
        const guess = exact ? p.guess?.summary : all || undefined;
        dmg.lost.set(s, { seq: s, file: path(p.seg), line: p.line, offset: p.offset, guess });
      }
    } else if (run.length > 0) {
      for (const p of run) {
        dmg.harmless.set(`${p.seg.name}:${p.offset}`, {
          seg: p.seg,
          offset: p.offset,
          line: p.line,
          what: `${p.reason}; it held no record the state needs (record ${seq} follows record ${seq - 1} without a gap)`,
          midFile: p.seg === seg && line > 0,
        });
      }
    }
    run = [];
    return true;
  };

  /** A lost record known (from its damaged bytes) to be the last of its commit. */
  const endsCommit = (seq: number): boolean => {
    const g = guesses.get(seq);
    return g?.seq === seq && g.last === seq;
  };

  const finish = (g: Group): void => {
    let why = g.broken ?? ctx.replaySkip.get(g.first);
    let recs: R[] | undefined;
    if (!why) {
      try {
        recs = g.entries.map((x) => codec.parseRecord(x.entry.rec));
      } catch (err) {
        why = `it is not a valid record for this version of Agent Pipeline (${message(err)}); if a newer version wrote this journal, use that version`;
      }
    }
    if (recs) {
      let applied = 0;
      try {
        for (const r of recs) {
          codec.apply(pos.state, r);
          applied++;
        }
      } catch (err) {
        // Part of the commit is applied and cannot be taken back here: load again, leaving it out.
        if (applied > 0)
          throw new ReplayRestart(g.first, `its record ${g.first + applied} does not apply: ${message(err)}`);
        why = `${dmg.lost.size > 0 ? 'it does not apply without the lost records' : 'it does not apply to the state'} (${message(err).replace(/\.$/, '')})`;
      }
    }
    if (why) {
      for (const x of g.entries) {
        dmg.unapplied.set(x.entry.seq, {
          seq: x.entry.seq,
          file: path(g.seg),
          line: x.line,
          what: describeRecord(x.entry.rec),
          why,
        });
      }
    }
    pos.seq = g.last;
    pos.appliedEpochs.set(g.seg.epoch, Math.max(pos.appliedEpochs.get(g.seg.epoch) ?? 0, g.last));
    pos.cursor = g.end;
    changed = true;
  };

  outer: for (; i < segs.length; i++) {
    const seg = segs[i]!;
    const isLast = i === segs.length - 1;
    const resumed = pos.cursor?.seg === seg.name;
    const from: Cursor = resumed ? pos.cursor! : { seg: seg.name, offset: 0, line: 1 };
    const settled = run.length === 0 && !group;
    if (settled) pos.cursor = from;
    if (seg.lastValidBound <= pos.seq && !isLast && settled) continue;

    // A file's start is a fact too: its writer had every record before it.
    if (!resumed && seg.start < seg.fence && seg.start > pos.seq) {
      if (group) {
        if (seg.start === group.first) {
          // The open commit at the end of the previous file was never acknowledged (torn).
          dmg.tails.set(`${group.seg.name}:${group.offset}`, incompleteCommit(group));
          for (const p of run) dmg.tails.set(`${p.seg.name}:${p.offset}`, p);
          run = [];
          group = undefined;
          next = seg.start;
          pos.cursor = from;
        } else if (seg.start > group.first) {
          const lastSeen = group.entries[group.entries.length - 1]!.entry.seq;
          if (!place(seg.start, seg, 0, 0)) break;
          group.broken ??= `its commit (records ${group.first}–${group.last}) lost record(s) ${JournalDamage.ranges(range(lastSeen + 1, Math.min(group.last, seg.start - 1)))}`;
          finish(group);
          group = undefined;
          next = seg.start;
          if (pos.seq < seg.start - 1) pos.seq = seg.start - 1;
          pos.cursor = from;
        }
      } else if (seg.start >= next) {
        const gap = seg.start - next;
        if (!place(seg.start, seg, 0, 0)) break;
        next = seg.start;
        if (gap > 0) {
          pos.seq = seg.start - 1;
          changed = true;
        }
        pos.cursor = from;
      }
    }

    const buf = await readSegment(dir, seg, from.offset);
    pos.cursorSeenSize = from.offset + buf.length;
    let stale = 0;
    let prevIntact = true;
    for (const l of scanLines(buf, from.offset, from.line)) {
      if (l.kind === 'partial' && isLast && mode === 'reader') {
        waiting = true;
        break;
      }
      if (l.kind !== 'entry' || l.entry.epoch !== seg.epoch) {
        const bytes = buf.subarray(l.offset - from.offset, l.end - from.offset);
        const reason =
          l.kind === 'partial'
            ? `the file ends with ${l.end - l.offset} bytes of a line that was never completed (a crash during a write)`
            : l.kind === 'bad'
              ? `line ${l.line} is damaged: ${l.reason}`
              : `line ${l.line} carries epoch ${l.entry.epoch} in a file of epoch ${seg.epoch}`;
        run.push({
          seg,
          offset: l.offset,
          end: l.end,
          line: l.line,
          reason,
          guess: guessLine(bytes),
          startsLine: startsLikeLine(bytes),
          embeddedStarts: embeddedLineStarts(bytes),
          afterIntact: prevIntact,
        });
        prevIntact = false;
        continue;
      }
      prevIntact = true;
      const e = l.entry;
      const after: Cursor = { seg: seg.name, offset: l.end, line: l.line + 1 };
      if (e.last >= seg.fence) {
        stale++;
        if (run.length === 0 && !group) pos.cursor = after;
        continue;
      }
      if (!group && e.last <= pos.seq) {
        // Already in the state (the snapshot covers it): damage before it cost nothing.
        for (const p of run) {
          dmg.harmless.set(`${p.seg.name}:${p.offset}`, {
            seg: p.seg,
            offset: p.offset,
            line: p.line,
            what: `${p.reason}; the snapshot covers it`,
            midFile: p.seg === seg,
          });
        }
        run = [];
        pos.cursor = after;
        continue;
      }
      if (group && e.seq <= group.last) {
        const prev = group.entries[group.entries.length - 1]!.entry.seq;
        if (e.last !== group.last || e.seq <= prev) {
          stopAt(
            seg,
            l.offset,
            l.line,
            `line ${l.line} (record ${e.seq}, commit ending at ${e.last}) does not continue the commit of records ${group.first}–${group.last}`,
          );
          break outer;
        }
        const gap = e.seq - next;
        if (!place(e.seq, seg, l.offset, l.line)) break outer;
        if (gap > 0)
          group.broken ??= `its commit (records ${group.first}–${group.last}) lost record(s) ${JournalDamage.ranges(range(next, e.seq - 1))}`;
        group.entries.push({ entry: e, line: l.line });
        group.end = after;
      } else {
        if (e.seq < next) {
          stopAt(
            seg,
            l.offset,
            l.line,
            `line ${l.line} holds records ${e.seq}–${e.last}, overlapping records already placed up to ${next - 1}`,
          );
          break outer;
        }
        const gap = e.seq - next;
        const open = group;
        if (!place(e.seq, seg, l.offset, l.line)) break outer;
        let headless = gap > 0 && !endsCommit(e.seq - 1);
        if (open) {
          const lastSeen = open.entries[open.entries.length - 1]!.entry.seq;
          open.broken ??= `its commit (records ${open.first}–${open.last}) lost record(s) ${JournalDamage.ranges(range(lastSeen + 1, open.last))}`;
          finish(open);
          group = undefined;
          headless = open.last !== e.seq - 1 && !endsCommit(e.seq - 1);
        }
        if (gap > 0 && pos.seq < e.seq - 1) {
          pos.seq = e.seq - 1;
          pos.cursor = { seg: seg.name, offset: l.offset, line: l.line };
          changed = true;
        }
        group = {
          seg,
          first: e.seq,
          last: e.last,
          offset: l.offset,
          line: l.line,
          entries: [{ entry: e, line: l.line }],
          end: after,
          ...(headless ? { broken: `it follows lost record ${e.seq - 1}, which may have begun its commit` } : {}),
        };
      }
      next = e.seq + 1;
      if (e.seq === e.last) {
        finish(group);
        group = undefined;
      }
    }
    if (stale > 0) {
      ctx.warn(
        `Journal ${path(seg)}: ignored ${stale} record(s) of epoch ${seg.epoch} from record ${seg.fence} on, written after a newer leader took over there (a replaced leader's late writes).`,
      );
    }
    if (waiting) break;
  }

  if (!dmg.stop) {
    if (group) {
      const last = segs[segs.length - 1];
      if (mode === 'reader' && group.seg === last) waiting = true;
      else dmg.tails.set(`${group.seg.name}:${group.offset}`, incompleteCommit(group));
    }
    for (const p of run) dmg.tails.set(`${p.seg.name}:${p.offset}`, p);
  }
  return changed;
}

/** A commit whose last line was never written: a crash during a write, so it was never acknowledged. */
function incompleteCommit(g: Group): DamagedPiece {
  return {
    seg: g.seg,
    offset: g.offset,
    end: g.end.offset,
    line: g.line,
    reason: `the commit starting at line ${g.line} is incomplete (a crash during a write; it was never acknowledged)`,
    guess: undefined,
    startsLine: true,
    embeddedStarts: 0,
    afterIntact: true,
  };
}

async function readSegment(dir: string, seg: SegmentFile, offset: number): Promise<Buffer> {
  try {
    return await readFrom(join(dir, seg.name), offset);
  } catch (e) {
    if (isEnoent(e)) throw e;
    throw fsProblem(e, join(dir, seg.name), 'a journal file');
  }
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
}
