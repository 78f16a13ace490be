import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isEnoent } from './fsUtil';
import type { ReplayPosition } from './replayPosition';
import { fsProblem } from './storeErrors';
import { readLayout, type Layout } from './storeFiles';

/**
 * How a reader follows the leader: from the directory listing and its position, whether there is
 * nothing new (idle costs a readdir and a stat), new records to read from where it stopped, or a
 * change that only a full reload can take in (a takeover fenced what it applied, or the file it was
 * reading was deleted or cut).
 */

export type FollowStep =
  { readonly kind: 'idle' } | { readonly kind: 'reload' } | { readonly kind: 'read'; readonly layout: Layout };

const IDLE: FollowStep = { kind: 'idle' };
const RELOAD: FollowStep = { kind: 'reload' };

export async function followStep<S>(dir: string, pos: ReplayPosition<S>): Promise<FollowStep> {
  let layout: Layout;
  try {
    layout = await readLayout(dir);
  } catch (e) {
    if (isEnoent(e)) return IDLE;
    throw fsProblem(e, dir, 'the state directory');
  }
  if (needsReload(layout, pos.appliedEpochs)) return RELOAD;
  const idx = pos.cursor ? layout.segments.findIndex((s) => s.name === pos.cursor!.seg) : -1;
  // Our segment was deleted after a snapshot covered it: we fell far behind.
  if (pos.cursor && idx === -1) return RELOAD;
  if (pos.cursor && idx === layout.segments.length - 1) {
    let size: number;
    try {
      size = (await stat(join(dir, pos.cursor.seg))).size;
    } catch (e) {
      if (!isEnoent(e)) throw e;
      return RELOAD;
    }
    if (size === pos.cursorSeenSize) return IDLE;
    if (size < pos.cursor.offset) return RELOAD;
  }
  if (!pos.cursor && !layout.segments.some((s) => s.lastValidBound > pos.seq)) return IDLE;
  return { kind: 'read', layout };
}

/** A higher epoch took over below records we applied: they were a stale leader's, start over. */
function needsReload(layout: Layout, appliedEpochs: ReadonlyMap<number, number>): boolean {
  for (const seg of layout.segments) {
    for (const [epoch, maxSeq] of appliedEpochs) if (seg.epoch > epoch && seg.start <= maxSeq) return true;
  }
  return false;
}
