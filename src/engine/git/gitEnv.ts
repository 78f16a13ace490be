/**
 * The environment of every git child process.
 *
 * - `GIT_TERMINAL_PROMPT=0`: git fails instead of waiting for a password nobody will type.
 * - `GIT_OPTIONAL_LOCKS=0` on read-only calls: `git status` otherwise takes `index.lock` to refresh
 *   the index, and a status poller broke 34 of 60 concurrent commits that way (engineering.md).
 * - `GIT_MERGE_AUTOEDIT=no`: a merge never opens an editor.
 * - `GIT_TRACE_PERFORMANCE=1`: git writes one timing line to stderr as it exits. simple-git waits
 *   an extra 50 ms after a process that wrote nothing at all (measured: a silent `update-ref` took
 *   55 ms, the same command with output 5 ms), and many of our commands are silent (`update-ref`,
 *   `switch --quiet`, `merge-base --is-ancestor`, a clean `status`). The lines are removed from
 *   stderr before anyone sees it (`stripTrace`).
 *
 * Every other `GIT_*` variable of our own process is dropped: when the engine runs under a git hook
 * (or a shell that exported them), `GIT_DIR`, `GIT_INDEX_FILE` or `GIT_WORK_TREE` would silently point
 * our commands at another repository or index. Editor and pager variables are dropped for the same
 * reason simple-git guards them: nothing here is interactive.
 */

/** The variables this layer sets; simple-git rejects guarded variables it was not told about. */
export const ALLOWED_GIT_ENV = [
  'GIT_TERMINAL_PROMPT',
  'GIT_OPTIONAL_LOCKS',
  'GIT_MERGE_AUTOEDIT',
  'GIT_TRACE_PERFORMANCE',
] as const;

const DROPPED_PLAIN = new Set(['EDITOR', 'VISUAL', 'PAGER', 'PREFIX', 'SSH_ASKPASS']);

export function gitEnvironment(readOnly: boolean, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    const upper = key.toUpperCase();
    if (value === undefined || upper.startsWith('GIT_') || DROPPED_PLAIN.has(upper)) continue;
    env[key] = value;
  }
  env.GIT_TERMINAL_PROMPT = '0';
  env.GIT_MERGE_AUTOEDIT = 'no';
  env.GIT_TRACE_PERFORMANCE = '1';
  if (readOnly) env.GIT_OPTIONAL_LOCKS = '0';
  return env;
}

/** `12:34:56.123456 trace.c:411    performance: 0.0013 s: git command: …` lines. */
const TRACE_LINE = /^\d{2}:\d{2}:\d{2}\.\d{6} [^ ]+:\d+ +performance: .*(?:\r?\n|$)/gm;

/** git's stderr without the timing lines GIT_TRACE_PERFORMANCE added. */
export function stripTrace(stderr: string): string {
  return stderr.replace(TRACE_LINE, '');
}
