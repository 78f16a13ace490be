import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isPipelineError, PipelineError } from '../errors';
import { isEnoent, moveAside } from './fsUtil';
import type { JournalDamage } from './journalDamage';
import type { StoreCodec } from './storeCodec';
import { fsProblem, message } from './storeErrors';
import { readSnapshotLines } from './snapshotLines';
import type { Layout } from './storeFiles';

/**
 * Recovery's start: the newest good snapshot (stale and damaged ones set aside), and the checks
 * after the journal was replayed from it that the snapshots' records were not lost with them.
 * Replay itself is in journalReplay.ts.
 */

/** The snapshot recovery starts from. */
export interface BaseSnapshot<S> {
  state: S;
  seq: number;
  epoch: number;
  name: string;
}

/** A snapshot that could not be read, and where it went (nowhere when this process only reads). */
export interface DamagedSnapshot {
  path: string;
  name: string;
  movedTo: string | undefined;
  seq: number;
  why: string;
}

export interface SnapshotFindings<S> {
  /** Undefined: no usable snapshot, the state starts empty at record 0. */
  base: BaseSnapshot<S> | undefined;
  damaged: DamagedSnapshot[];
  /** Snapshots written by a replaced leader (moved aside when `moveFiles`). */
  stale: string[];
}

export interface SnapshotLoadContext<S, R> {
  readonly dir: string;
  readonly codec: StoreCodec<S, R>;
  /** A leader moves stale and damaged snapshots aside; a reader (or a repair's first look) leaves them. */
  readonly moveFiles: boolean;
  readonly warn: (text: string) => void;
}

/**
 * The newest good snapshot in `layout`, the state recovery starts from. A stale snapshot (a replaced
 * leader's) is ignored, a damaged one is passed over for an older one; a leader (`moveFiles`) moves
 * both aside. A snapshot in a layout this version cannot read is an error, not damage.
 */
export async function loadBaseSnapshot<S, R>(
  layout: Layout,
  ctx: SnapshotLoadContext<S, R>,
): Promise<SnapshotFindings<S>> {
  const { dir, codec, moveFiles, warn } = ctx;
  const damaged: DamagedSnapshot[] = [];
  const stale: string[] = [];
  let base: BaseSnapshot<S> | undefined;
  for (const snap of layout.snapshots) {
    const path = join(dir, snap.name);
    if (snap.stale) {
      stale.push(snap.name);
      if (moveFiles) {
        const to = await moveAside(path, 'stale');
        warn(
          `Snapshot ${path} was written by a replaced leader (epoch ${snap.epoch}) after a newer one took over; it was ignored and moved aside to ${to}.`,
        );
      } else {
        warn(
          `Snapshot ${path} was written by a replaced leader (epoch ${snap.epoch}) after a newer one took over; it was ignored.`,
        );
      }
      continue;
    }
    try {
      const read = readSnapshot(path, codec);
      const header = read.header;
      if (header.seq !== snap.seq || header.epoch !== snap.epoch) {
        throw new Error(
          `its header says record ${header.seq} and epoch ${header.epoch}, its name says record ${snap.seq} and epoch ${snap.epoch}`,
        );
      }
      base = { state: parseSnapshotBody(codec, read, path), seq: snap.seq, epoch: snap.epoch, name: snap.name };
      break;
    } catch (e) {
      if (isEnoent(e) || isPipelineError(e)) throw e;
      const movedTo = moveFiles ? await moveAside(path) : undefined;
      damaged.push({ path, name: snap.name, movedTo, seq: snap.seq, why: message(e) });
    }
  }
  return { base, damaged, stale };
}

/**
 * Refuses a recovery that could not reach what the snapshots promised: a damaged snapshot whose
 * records neither an older one nor the journal holds, or no usable snapshot and a journal that does
 * not start at record 1. Otherwise warns of each damaged snapshot. `seq` is where replay got to.
 */
export async function assertRecovered<S>(
  dir: string,
  layout: Layout,
  found: SnapshotFindings<S>,
  seq: number,
  dmg: JournalDamage,
  warn: (text: string) => void,
): Promise<void> {
  const { base, damaged } = found;
  const unrecovered = damaged.find((d) => d.seq > seq);
  if (unrecovered) {
    throw new PipelineError(
      'corrupt-snapshot',
      `The state snapshot ${unrecovered.path} is damaged (${unrecovered.why}), and neither an older snapshot nor the journal holds the records up to ${unrecovered.seq}: recovery reached record ${seq} only.`,
      {
        file: unrecovered.movedTo ?? unrecovered.path,
        where: `record ${unrecovered.seq}`,
        fix: `${unrecovered.movedTo ? `The damaged file was moved aside to ${unrecovered.movedTo}. ` : ''}Restore ${dir} from a backup, or move the directory away to start with an empty state.`,
      },
    );
  }
  // Without a usable snapshot, the state must come from record 1 on. A journal that starts later
  // lost its head (snapshots roll and prune it): say so, even when its files hold no record yet
  // (a snapshot moved aside earlier, then nothing committed), rather than start from an empty state.
  const startGap = dmg.stop?.gap ? dmg.stop : undefined;
  const firstSeg = layout.segments[0];
  const headless = !startGap && firstSeg && firstSeg.start > 1 ? firstSeg : undefined;
  if (!base && seq === 0 && (startGap || headless)) {
    const aside = (await readdir(dir)).filter((n) => n.startsWith('snapshot-') && /\.(corrupt|stale)-/.test(n));
    const what = startGap ? startGap.what : `its first file starts at record ${headless!.start}`;
    throw new PipelineError(
      'corrupt-snapshot',
      `There is no usable snapshot in ${dir}, and the journal does not start at record 1 (${what}).`,
      {
        file: join(dir, startGap ? startGap.seg.name : headless!.name),
        where: startGap ? `line ${startGap.line}` : 'its first record',
        fix: `${aside.length ? `Snapshots moved aside earlier: ${aside.join(', ')}. ` : ''}Restore ${dir} from a backup, or move the directory away to start with an empty state.`,
      },
    );
  }
  for (const d of damaged) {
    warn(
      `Snapshot ${d.path} is damaged (${d.why}); ${d.movedTo ? `it was moved aside to ${d.movedTo}` : 'it was left in place (this process only reads)'}, and the state was recovered from ${base ? `snapshot ${base.name}` : 'the start of the journal'} and the journal instead.`,
    );
  }
}

/**
 * The snapshot at `path`, checked (see snapshotLines.ts): a body in the codec's layout is read line
 * by line as the layout needs it, a plain json one whole. An unreadable path (a directory, no
 * permission) becomes a PipelineError naming it.
 */
function readSnapshot<S, R>(path: string, codec: StoreCodec<S, R>): ReturnType<typeof readSnapshotLines> {
  try {
    const layout = codec.layout;
    return readSnapshotLines(path, (h) => (layout && h.layout === layout.name ? layout.headLines : 0));
  } catch (e) {
    if (isEnoent(e)) throw e;
    throw fsProblem(e, path, 'a state snapshot');
  }
}

/** The state in a snapshot's verified body, in the layout its header names. */
function parseSnapshotBody<S, R>(codec: StoreCodec<S, R>, read: ReturnType<typeof readSnapshotLines>, path: string): S {
  const header = read.header;
  if ('body' in read) {
    let json: unknown;
    try {
      json = JSON.parse(read.body.toString('utf8'));
    } catch {
      throw new Error('checksum matches but the body does not parse as json');
    }
    return codec.parseSnapshot(json, path);
  }
  const layout = codec.layout;
  if (!layout || layout.name !== header.layout) {
    throw new PipelineError(
      'invalid-state',
      `${path} is written in the snapshot layout "${header.layout}", which this version of Agent Pipeline does not read.`,
      { file: path, fix: 'Use the version of Agent Pipeline that wrote it, or a newer one.' },
    );
  }
  return layout.read(read.lines);
}
