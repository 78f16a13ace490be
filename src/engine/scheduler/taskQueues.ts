import { PRIORITY_RANK, type Task } from '../model/schema';
import { IndexedHeap } from './indexedHeap';

/**
 * The queued tasks of every stage, kept ordered as they change so that choosing the next task never
 * rescans the task list.
 *
 * Each stage has two heaps: `ready` (may start now, best first: priority, then the oldest by `seq`,
 * then the id so the order is total) and `waiting` (backing off after a failure until `not_before`,
 * earliest first). `taskChanged` has no clock, so a task with a `not_before` always enters `waiting`;
 * `promote(now)`, called at the start of every plan, moves the tasks whose time has come. A task
 * whose `not_before` is already past therefore waits at most until the next plan, which is when it
 * would have been looked at anyway.
 *
 * A ready task found in conflict with a claim another task holds is `park`ed under that holder, out
 * of the heap, until the holder's claim ends (`unpark`). Without this every plan would walk again
 * the tasks stuck behind a claim (one task claiming a wide glob can hold back most of the test
 * queue), which is the rescan this index exists to avoid. Parking is an internal shortcut only: a
 * parked task is still queued for `contents`, `countAhead` and everything a caller can observe.
 */

export interface QueueEntry {
  readonly key: string;
  /** PRIORITY_RANK of the task's priority: higher first. */
  readonly rank: number;
  /** Creation order: older first among equal priorities. */
  readonly seq: number;
}

interface WaitEntry {
  readonly key: string;
  /** Epoch ms of `not_before`. */
  readonly at: number;
  readonly entry: QueueEntry;
}

export function readyBefore(a: QueueEntry, b: QueueEntry): boolean {
  if (a.rank !== b.rank) return a.rank > b.rank;
  if (a.seq !== b.seq) return a.seq < b.seq;
  return a.key < b.key;
}

function waitBefore(a: WaitEntry, b: WaitEntry): boolean {
  if (a.at !== b.at) return a.at < b.at;
  return a.key < b.key;
}

/** Epoch ms of a task's `not_before`, or null when it may start at once (unset or unreadable). */
export function backoffUntil(task: Pick<Task, 'not_before'>): number | null {
  if (task.not_before === null) return null;
  const at = Date.parse(task.not_before);
  return Number.isNaN(at) ? null : at;
}

export function queueEntry(task: Task): QueueEntry {
  return { key: task.id, rank: PRIORITY_RANK[task.priority], seq: task.seq };
}

interface StageQueue {
  readonly ready: IndexedHeap<QueueEntry>;
  readonly waiting: IndexedHeap<WaitEntry>;
}

interface Parked {
  readonly stage: string;
  readonly entry: QueueEntry;
}

export class TaskQueues {
  private readonly stages = new Map<string, StageQueue>();
  /** holder task id → the tasks parked behind its claim. */
  private readonly parked = new Map<string, Map<string, Parked>>();
  /** parked task id → its holder. */
  private readonly parkedOn = new Map<string, string>();

  private stage(name: string): StageQueue {
    let q = this.stages.get(name);
    if (!q) {
      q = { ready: new IndexedHeap(readyBefore), waiting: new IndexedHeap(waitBefore) };
      this.stages.set(name, q);
    }
    return q;
  }

  /** Adds a queued task to its stage. */
  add(task: Task): void {
    const q = this.stage(task.stage);
    const entry = queueEntry(task);
    const at = backoffUntil(task);
    if (at === null) q.ready.push(entry);
    else q.waiting.push({ key: task.id, at, entry });
  }

  /** Removes a task from the queues of `stage`, wherever it is. */
  remove(taskId: string, stage: string): void {
    const holder = this.parkedOn.get(taskId);
    if (holder !== undefined) {
      this.parkedOn.delete(taskId);
      const behind = this.parked.get(holder);
      behind?.delete(taskId);
      if (behind?.size === 0) this.parked.delete(holder);
      return;
    }
    const q = this.stages.get(stage);
    if (!q) return;
    if (!q.ready.remove(taskId)) q.waiting.remove(taskId);
  }

  /** Takes a ready task out of its heap until `holder`'s claim ends. */
  park(taskId: string, stage: string, holder: string): void {
    const q = this.stages.get(stage);
    const entry = q?.ready.get(taskId);
    if (!q || !entry || !q.ready.remove(taskId)) return;
    let behind = this.parked.get(holder);
    if (!behind) this.parked.set(holder, (behind = new Map<string, Parked>()));
    behind.set(taskId, { stage, entry });
    this.parkedOn.set(taskId, holder);
  }

  /** `holder`'s claim ended: the tasks parked behind it are ready again. */
  unpark(holder: string): void {
    const behind = this.parked.get(holder);
    if (!behind) return;
    this.parked.delete(holder);
    for (const [taskId, p] of behind) {
      this.parkedOn.delete(taskId);
      this.stage(p.stage).ready.push(p.entry);
    }
  }

  /** Moves every task whose back-off has ended to its stage's ready heap. */
  promote(now: number): void {
    for (const q of this.stages.values()) {
      for (let w = q.waiting.peek(); w && w.at <= now; w = q.waiting.peek()) {
        q.waiting.pop();
        q.ready.push(w.entry);
      }
    }
  }

  /** Ready tasks of a stage, best first, lazily. */
  ordered(stage: string): Iterable<QueueEntry> {
    return this.stages.get(stage)?.ready.ordered() ?? [];
  }

  /** The earliest back-off end after `now` at `stage` (all stages when omitted), or null. */
  nextWake(now: number, stage?: string): number | null {
    let best: number | null = null;
    const queues = stage === undefined ? [...this.stages.values()] : [this.stages.get(stage)];
    for (const q of queues) {
      const at = q?.waiting.peek()?.at;
      if (at !== undefined && at > now && (best === null || at < best)) best = at;
    }
    return best;
  }

  /** The tasks backing off at `stage`, in no particular order. */
  waiting(stage: string): string[] {
    return (this.stages.get(stage)?.waiting.values() ?? []).map((w) => w.key);
  }

  /** How many ready tasks of `stage` come before `entry`: for `explain`, so O(n) is fine. */
  countAhead(stage: string, entry: QueueEntry): number {
    let n = 0;
    for (const e of this.stages.get(stage)?.ready.values() ?? []) if (e.key !== entry.key && readyBefore(e, entry)) n++;
    for (const behind of this.parked.values())
      for (const p of behind.values())
        if (p.stage === stage && p.entry.key !== entry.key && readyBefore(p.entry, entry)) n++;
    return n;
  }

  /** Every queued task id of every stage (ready and waiting), best first per stage: for snapshots. */
  contents(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    const byStage = new Map<string, QueueEntry[]>();
    for (const [name, q] of this.stages)
      byStage.set(name, [...q.ready.values(), ...q.waiting.values().map((w) => w.entry)]);
    for (const behind of this.parked.values()) for (const p of behind.values()) byStage.get(p.stage)?.push(p.entry);
    for (const [name, entries] of [...byStage].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (entries.length > 0) out[name] = entries.sort((a, b) => (readyBefore(a, b) ? -1 : 1)).map((e) => e.key);
    }
    return out;
  }
}
