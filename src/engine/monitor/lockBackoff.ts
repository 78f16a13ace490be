import { isPipelineError } from '../errors';
import type { RetryConfig } from '../model/configSchema';
import { retryDelayMs } from './retryPolicy';

/**
 * Git lock contention is transient. A workspace call that finds one of git's lock files held by
 * another process (an editor's git integration, a person's `git` in the repository, a command that
 * crashed) fails with code `git-lock` after the git layer's own short retries, and changes nothing
 * (see WorkspacePort). Another attempt fixes it: the holder lets go, or the lock, once old enough
 * with no git process alive, is removed as stale by the git layer. So the monitor never blocks a task
 * or counts a failed attempt for it: a merge is tried again, a launch is requeued, a completion
 * commit is repeated, setting aside what a failed attempt left is repeated, each after a back-off
 * that grows while the lock stays held.
 */

/** True when a workspace call failed because another process holds a git lock (code `git-lock`). */
export function isLockHeld(e: unknown): boolean {
  return isPipelineError(e) && e.code === 'git-lock';
}

/**
 * Consecutive lock failures per key (a task's merge, a task's launch, an agent's completion commit),
 * for the back-off: the retry policy's delays (`retry.baseDelayMs` doubling up to `maxDelayMs`),
 * with no limit on their number. Memory only: a restarted monitor starts again from the base delay.
 */
export class LockBackoff {
  private readonly failures = new Map<string, number>();

  /** Counts one more lock failure for `key`; the delay before trying again. */
  next(key: string, cfg: RetryConfig): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    return retryDelayMs(n, cfg);
  }

  /** The lock failures of `key` in a row so far. */
  count(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The call succeeded (or no longer matters): the next lock failure starts from the base delay. */
  clear(key: string): void {
    this.failures.delete(key);
  }
}

/** `1.5 s`, `250 ms`: a delay for a message. */
export function formatDelay(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
