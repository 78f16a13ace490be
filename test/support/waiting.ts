/**
 * Waiting in tests: for a condition or a promise, never for a time. The deadlines here only turn a
 * hang into a failure that names what did not happen; each is stretched by a patience factor so
 * that a busy 2-core machine (CI runs two test files at once) never meets one while things still
 * move. `TEST_PATIENCE=1` gives the deadlines as written, to find a hang quickly.
 */

const factor = Number(process.env.TEST_PATIENCE ?? '') || 5;

/** A deadline of `ms` as written in a test, stretched by the patience factor. */
export function patience(ms: number): number {
  return Math.round(ms * factor);
}

/** Rejects when `p` has not settled by the deadline, naming what did not happen; the timer never keeps the process alive. */
export function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  const limitMs = patience(ms);
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${limitMs} ms`)), limitMs);
    timer.unref();
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/**
 * Polls `check` until it gives a value other than undefined/false; fails at the deadline naming
 * `what`, with `context()` (for example a process's output) when given.
 */
export async function until<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  pollMs = 25,
  context?: () => string,
): Promise<T> {
  const limitMs = patience(ms);
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${limitMs} ms${context ? `\n${context()}` : ''}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
