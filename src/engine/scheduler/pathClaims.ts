import type { Task, TaskStatus } from '../model/schema';
import { globBucket, globsOverlap } from './globOverlap';

/**
 * Conflict avoidance: claims on paths.
 *
 * A task takes a claim on its `paths` when it is assigned in a conflict stage (by default test and
 * implementation) and holds it until it leaves the conflict stages: it moves on to a stage that is
 * not one, or becomes pending, blocked, done or cancelled. A task whose paths overlap a claim held by
 * another task is not assigned in a conflict stage, so two overlapping tasks are never there at the
 * same time. The claim outlives the assignment on purpose: a task that finished `test` and waits in
 * the `implementation` queue still has its tests on its branch, and another task on the same files
 * must not start its own tests in between.
 *
 * Whether a task holds a claim is a function of the task alone (`holdsClaim`), read from its status
 * and the tail of its history, so the claims rebuilt from a state after a crash are exactly the ones
 * the running scheduler had.
 */

const RELEASING: ReadonlySet<TaskStatus> = new Set(['pending', 'blocked', 'done', 'cancelled']);

export function holdsClaim(task: Task, conflictStages: ReadonlySet<string>): boolean {
  if (!conflictStages.has(task.stage)) return false;
  if (task.status === 'working' || task.status === 'merging') return true;
  if (task.status !== 'queued') return false;
  // Queued in a conflict stage: it holds a claim only if it was assigned in a conflict stage since
  // it last entered them. Walk back until the entry that decides; usually one or two steps.
  for (let i = task.history.length - 1; i >= 0; i--) {
    const e = task.history[i];
    if (!e || !conflictStages.has(e.stage) || RELEASING.has(e.to)) return false;
    if (e.event === 'assign') return true;
  }
  return false;
}

export interface ClaimConflict {
  /** The task holding the claim. */
  readonly holder: string;
  /** The holder's glob and the candidate's glob that overlap. */
  readonly theirs: string;
  readonly ours: string;
}

/**
 * The claims currently held, indexed by the first literal segment of each glob so a candidate is
 * compared only with claims that could overlap it (plus those whose globs start with a wildcard).
 */
export class PathClaims {
  private readonly holders = new Map<string, readonly string[]>();
  private readonly buckets = new Map<string, Set<string>>();
  /** Holders with at least one glob that starts with a wildcard: they may overlap anything. */
  private readonly anywhere = new Set<string>();

  holds(taskId: string): boolean {
    return this.holders.has(taskId);
  }

  /** Every holder, sorted: for snapshots and status. */
  holderIds(): string[] {
    return [...this.holders.keys()].sort();
  }

  take(taskId: string, paths: readonly string[]): void {
    this.release(taskId);
    this.holders.set(taskId, [...paths]);
    for (const p of paths) {
      const b = globBucket(p);
      if (b === '') this.anywhere.add(taskId);
      else {
        let set = this.buckets.get(b);
        if (!set) this.buckets.set(b, (set = new Set()));
        set.add(taskId);
      }
    }
  }

  release(taskId: string): void {
    const paths = this.holders.get(taskId);
    if (!paths) return;
    this.holders.delete(taskId);
    this.anywhere.delete(taskId);
    for (const p of paths) {
      const b = globBucket(p);
      const set = this.buckets.get(b);
      set?.delete(taskId);
      if (set?.size === 0) this.buckets.delete(b);
    }
  }

  /** Claims of other tasks that overlap `paths`; stops after `limit` conflicts. */
  conflicts(taskId: string, paths: readonly string[], limit = Infinity): ClaimConflict[] {
    const found: ClaimConflict[] = [];
    const seen = new Set<string>();
    for (const ours of paths) {
      const b = globBucket(ours);
      const candidates = b === '' ? this.holders.keys() : [...(this.buckets.get(b) ?? []), ...this.anywhere];
      for (const holder of candidates) {
        if (holder === taskId || seen.has(holder)) continue;
        const theirs = (this.holders.get(holder) ?? []).find((g) => globsOverlap(g, ours));
        if (theirs === undefined) continue;
        seen.add(holder);
        found.push({ holder, theirs, ours });
        if (found.length >= limit) return found;
      }
    }
    return found;
  }
}
