import type { RetryConfig } from '../model/configSchema';

/**
 * When a failed attempt is tried again: exponential backoff from `baseDelayMs`, capped at
 * `maxDelayMs`, minus a random fraction (`jitter`) so the retries of many tasks do not line up.
 * After `maxAttempts` failed attempts at one stage the task is blocked instead.
 */
export function retryDelayMs(failures: number, cfg: RetryConfig, random: () => number = Math.random): number {
  const exp = cfg.baseDelayMs * 2 ** Math.max(0, failures - 1);
  const capped = Math.min(cfg.maxDelayMs, exp);
  return Math.round(capped * (1 - cfg.jitter * random()));
}

/**
 * Failures that another attempt will not fix: the agent's command cannot be started, its template is
 * wrong, the worktree cannot be prepared. These block the task at once with their reason.
 */
export type FailureClass = 'transient' | 'permanent';

export interface AttemptFailure {
  reason: string;
  class: FailureClass;
  /**
   * The pipeline's own machinery failed (the agent's worktree could not be prepared), not the task:
   * a block it causes is undone once the fault is repaired (infraFaults.ts).
   */
  infrastructure?: boolean;
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: string };

export function decideRetry(
  failuresSoFar: number,
  failure: AttemptFailure,
  cfg: RetryConfig,
  random?: () => number,
): RetryDecision {
  if (failure.class === 'permanent')
    return { retry: false, reason: `${failure.reason} (not retried: another attempt would fail the same way)` };
  const failures = failuresSoFar + 1;
  if (failures >= cfg.maxAttempts)
    return { retry: false, reason: `${failure.reason} (failed ${failures} of ${cfg.maxAttempts} attempts)` };
  return { retry: true, delayMs: retryDelayMs(failures, cfg, random) };
}
