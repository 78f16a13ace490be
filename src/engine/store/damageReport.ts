import { join } from 'node:path';
import { PipelineError } from '../errors';
import type { JournalDamage } from './journalDamage';

/**
 * What the store tells people about damage recovery found: warnings when this process changes
 * nothing (a reader, or a dry run), and the error with which a leader refuses to open when
 * acknowledged records were lost (only `pipeline repair` makes a loss permanent).
 */

/** Lost and not-applied records listed one warning each, before the summary says how many in all. */
const LISTED_PER_KIND = 50;

/** Warnings for what replay found, for a process that changes nothing (a reader, or a dry run). */
export function reportDamage(dmg: JournalDamage, dir: string, warn: (text: string) => void): void {
  let n = 0;
  for (const l of dmg.lost.values()) {
    if (n++ >= LISTED_PER_KIND) break;
    warn(
      `Journal ${l.file}, line ${l.line} (byte ${l.offset}) is damaged; it held record ${l.seq}${l.guess ? ` (the damaged bytes read: ${l.guess})` : ''}, which is lost: it is not in the state.`,
    );
  }
  n = 0;
  for (const u of dmg.unapplied.values()) {
    if (n++ >= LISTED_PER_KIND) break;
    warn(`Record ${u.seq} (${u.what}; ${u.file}, line ${u.line}) is intact but was not applied: ${u.why}.`);
  }
  if (dmg.stop) {
    const s = dmg.stop;
    warn(
      `Journal ${join(dir, s.seg.name)}, line ${s.line} (byte ${s.offset}): ${s.what}. Replay stopped there: no record from there on is in the state.`,
    );
  }
  for (const h of dmg.harmless.values()) {
    warn(
      `Journal ${join(dir, h.seg.name)}, line ${h.line} (byte ${h.offset}): ${h.what}. Nothing acknowledged was lost there; the leader moves the damage aside when it opens the state.`,
    );
  }
  for (const t of dmg.tails.values()) {
    warn(
      `Journal ${join(dir, t.seg.name)}, line ${t.line} (byte ${t.offset}): ${t.reason}. Replay stopped there for this file. This process only reads; the leader cuts the file there when it opens the state, keeping a copy of it.`,
    );
  }
  if (dmg.hasLoss) {
    warn(
      `The journal in ${dir} is damaged: ${dmg.lossSummary()}. The state shown holds every record that could be recovered. No process leads this pipeline until the damage is repaired: run \`pipeline repair --dry-run\` to see what a repair would do, then \`pipeline repair\`.`,
    );
  }
}

/** Why a leader refuses to open a journal that lost acknowledged records, and what a person can do. */
export function lossError(dmg: JournalDamage, dir: string): PipelineError {
  const first = [...dmg.lost.values()].sort((a, b) => a.seq - b.seq)[0];
  const firstUnapplied = [...dmg.unapplied.values()].sort((a, b) => a.seq - b.seq)[0];
  const file = first?.file ?? (dmg.stop ? join(dir, dmg.stop.seg.name) : firstUnapplied?.file);
  const where = first
    ? `line ${first.line} (byte ${first.offset})`
    : dmg.stop
      ? `line ${dmg.stop.line} (byte ${dmg.stop.offset})`
      : firstUnapplied
        ? `line ${firstUnapplied.line}`
        : undefined;
  return new PipelineError(
    'corrupt-journal',
    `The journal in ${dir} is damaged: ${dmg.lossSummary()}. This process will not lead the pipeline until the damage is repaired, so that the loss is not made permanent without a person deciding.`,
    {
      ...(file ? { file } : {}),
      ...(where ? { where } : {}),
      fix: 'Run `pipeline repair --dry-run` to see what is damaged and what a repair would do, then `pipeline repair` (it keeps every damaged file, moved aside), or restore the state directory from a backup. `pipeline status` shows what could be recovered.',
    },
  );
}
