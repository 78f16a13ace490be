import { basename, join } from 'node:path';
import { copyAside, moveAside, truncateFile } from './fsUtil';
import { JournalDamage, type LostRecord, type UnappliedRecord } from './journalDamage';
import type { SegmentFile } from './storeFiles';

/**
 * Repairs of a damaged state directory. The leader makes the ones that cost nothing when it opens
 * (`autoRepair`); `StateStore.repair` (`pipeline repair`), run by a person, makes a loss permanent
 * (`repairNow`). Nothing is deleted or overwritten: damaged files are copied or moved aside.
 */

/** What `StateStore.repair` found and did (or, in a dry run, would do). */
export interface RepairReport {
  readonly dir: string;
  /** The last record the recovered state reaches. */
  readonly seq: number;
  readonly lost: readonly LostRecord[];
  readonly unapplied: readonly UnappliedRecord[];
  /** Where replay stopped, and why, when records could not be placed from some point on. */
  readonly stop: string | undefined;
  /** What is damaged, one sentence each. */
  readonly damaged: readonly string[];
  /** What the repair does (a dry run) or did. */
  readonly actions: readonly string[];
  readonly performed: boolean;
  /** Nothing needed repairing. */
  readonly clean: boolean;
}

/** What repairs work on: the damage the last load found, and how to write the recovered state. */
export interface RepairContext {
  readonly dir: string;
  readonly damage: JournalDamage;
  /** Writes the recovered state as a snapshot at the current seq (synced); returns its file name. */
  readonly writeSnapshot: () => Promise<string>;
  readonly warn: (text: string) => void;
}

/** What else the last load found, for `repairNow`. */
export interface RepairFindings {
  /** The seq the recovered state reaches. */
  readonly seq: number;
  readonly segments: readonly SegmentFile[];
  /** Snapshots found damaged and left in place. */
  readonly damagedSnapshots: readonly string[];
  /** Snapshots written by a replaced leader. */
  readonly staleSnapshots: readonly string[];
}

/**
 * The leader's repairs when nothing acknowledged was lost. A file that ends in damaged or torn
 * bytes (a crash in mid-write) is copied aside whole, then cut after its last whole commit. A file
 * with damage between intact records cannot be cut without losing them: a snapshot of the state
 * is written first, so that the file's records are no longer needed, and then it is moved aside.
 */
export async function autoRepair(ctx: RepairContext): Promise<void> {
  const { dir, warn } = ctx;
  const dmg = ctx.damage;
  const moved = new Set<string>();
  const mid = [...dmg.harmless.values()].filter((h) => h.midFile);
  if (mid.length > 0) {
    const snap = await ctx.writeSnapshot();
    for (const h of mid) {
      const path = join(dir, h.seg.name);
      if (!moved.has(h.seg.name)) {
        moved.add(h.seg.name);
        const to = await moveAside(path);
        warn(
          `Journal ${path}, line ${h.line} (byte ${h.offset}): ${h.what}. Nothing acknowledged was lost; the state was written to snapshot ${snap} and the file was moved aside to ${to}.`,
        );
      }
    }
  }
  const cuts = new Map<string, { seg: SegmentFile; offset: number; line: number; what: string }>();
  const tailOf = (seg: SegmentFile, offset: number, line: number, what: string) => {
    const c = cuts.get(seg.name);
    if (!c || offset < c.offset) cuts.set(seg.name, { seg, offset, line, what });
  };
  for (const t of dmg.tails.values()) tailOf(t.seg, t.offset, t.line, t.reason);
  for (const h of dmg.harmless.values()) if (!h.midFile) tailOf(h.seg, h.offset, h.line, h.what);
  for (const c of cuts.values()) {
    if (moved.has(c.seg.name)) continue;
    const path = join(dir, c.seg.name);
    const copy = await copyAside(path);
    await truncateFile(path, c.offset);
    warn(
      `Journal ${path}, line ${c.line} (byte ${c.offset}): ${c.what}. Replay stopped there for this file; the file was cut at byte ${c.offset} and the whole original kept as ${copy}. Inspect the copy if records after that point matter.`,
    );
  }
}

/** The plan for `StateStore.repair`, from what the load in `found` found, carried out when `perform`. */
export async function repairNow(ctx: RepairContext, found: RepairFindings, perform: boolean): Promise<RepairReport> {
  const dir = ctx.dir;
  const dmg = ctx.damage;
  const segs = found.segments;
  const why = new Map<string, string[]>();
  const note = (name: string, text: string): void => {
    const list = why.get(name) ?? [];
    list.push(text);
    why.set(name, list);
  };
  for (const l of dmg.lost.values())
    note(basename(l.file), `line ${l.line} (byte ${l.offset}) is damaged and held record ${l.seq}, now lost`);
  for (const u of dmg.unapplied.values())
    note(basename(u.file), `record ${u.seq} on line ${u.line} is intact but not applied: ${u.why}`);
  for (const h of dmg.harmless.values())
    note(h.seg.name, `line ${h.line} (byte ${h.offset}): ${h.what} (nothing lost)`);
  for (const t of dmg.tails.values())
    note(t.seg.name, `line ${t.line} (byte ${t.offset}): ${t.reason} (never acknowledged)`);
  if (dmg.stop) {
    const at = segs.findIndex((s) => s.name === dmg.stop!.seg.name);
    note(dmg.stop.seg.name, `line ${dmg.stop.line} (byte ${dmg.stop.offset}): ${dmg.stop.what}; replay stops there`);
    for (const later of segs.slice(at + 1))
      note(later.name, `comes after the point where replay stopped: its records are not in the state`);
  }
  for (const name of found.damagedSnapshots) note(name, 'the snapshot is damaged');
  const damaged = [...why].map(([name, texts]) => `${join(dir, name)}: ${texts.join('; ')}`);
  const stale = found.staleSnapshots;
  const clean = why.size === 0 && stale.length === 0;
  const lost = [...dmg.lost.values()].sort((a, b) => a.seq - b.seq);
  const unapplied = [...dmg.unapplied.values()].sort((a, b) => a.seq - b.seq);
  const stop = dmg.stop ? `${join(dir, dmg.stop.seg.name)}, line ${dmg.stop.line}: ${dmg.stop.what}` : undefined;
  const actions: string[] = [];
  const base = { dir: dir, seq: found.seq, lost, unapplied, stop, damaged, clean };
  if (clean) return { ...base, actions, performed: false };

  const left = [...dmg.lost.keys(), ...dmg.unapplied.keys()];
  const snapNote = `the state as recovered up to record ${found.seq}${left.length ? ` (without records ${JournalDamage.ranges(left)})` : ''}${dmg.stop ? ' (nothing from where replay stopped on)' : ''} is written as a new snapshot`;
  if (!perform) {
    actions.push(`${snapNote} (snapshot-${String(found.seq).padStart(12, '0')}-e<next epoch>.json)`);
    for (const name of why.keys()) actions.push(`${join(dir, name)} is moved aside to ${name}.corrupt-<time>`);
    for (const name of stale)
      actions.push(`${join(dir, name)} (a replaced leader's) is moved aside to ${name}.stale-<time>`);
    return { ...base, actions, performed: false };
  }
  const snap = await ctx.writeSnapshot();
  actions.push(`${snapNote}: ${join(dir, snap)}`);
  for (const name of why.keys()) {
    const to = await moveAside(join(dir, name));
    actions.push(`${join(dir, name)} was moved aside to ${to}`);
  }
  for (const name of stale) {
    const to = await moveAside(join(dir, name), 'stale');
    actions.push(`${join(dir, name)} (a replaced leader's) was moved aside to ${to}`);
  }
  return { ...base, actions, performed: true };
}
