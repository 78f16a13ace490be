/**
 * What an agent CLI's structured output says while it works, in the engine's words: each adapter
 * reads its own CLI's stream (`--output-format stream-json`, `exec --json`) a line at a time and
 * turns it into these events. The raw stream stays in the agent's log; the monitor follows the log
 * and feeds each new line to the adapter's parser (monitor/agentStream.ts).
 */

/** Token counts; `input` never includes the cached input (each CLI's own convention is undone). */
export interface TokenCounts {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

/** Tokens spent on one model, with the cost when the CLI reported it. */
export interface ModelUsage extends TokenCounts {
  model: string;
  /** US dollars, as the CLI computed them (Claude Code's `total_cost_usd`); absent otherwise. */
  costUsd?: number;
}

export type AgentActivity =
  /** A tool call, one line: `Bash: npm test`, `Edit src/parser.ts`, `Read README.md`. */
  | { kind: 'step'; text: string }
  /** The last line of what the model said so far. */
  | { kind: 'message'; text: string }
  /**
   * Tokens spent. `scope` says how to add them up:
   * - `request`: one model request's counts; a later `request` for the same `key` replaces it
   *   (Claude Code repeats a message's usage for each of its content blocks).
   * - `run`: the totals of the whole run, which replace whatever was added up before.
   * - `thread`: the totals of a conversation that may span runs (Codex after `exec resume`): the
   *   run's own share is these minus what the thread held when the run began.
   */
  | { kind: 'usage'; scope: 'request' | 'run' | 'thread'; usage: ModelUsage[]; key?: string }
  /** The id the CLI's own resume takes (Claude `--resume`, Codex `exec resume`, Gemini `--resume`). */
  | { kind: 'session'; id: string };

/** What a parser may know of the run it reads. */
export interface StreamParserContext {
  /** The agent's worktree: paths under it are shown relative to it. */
  worktree: string;
  /** The run's argv (a `--model` given there names the model when the stream does not). */
  argv: readonly string[];
  /** The model the CLI's own configuration names, when the stream does not (Codex). */
  model?: string;
}

/** A parser for one run: fed the run's output line by line, in order. */
export type StreamParser = (line: string) => AgentActivity[];

export function zeroCounts(): TokenCounts {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
}

/** A number field of a JSON object, 0 when absent or not a number. */
export function num(o: unknown, key: string): number {
  if (typeof o !== 'object' || o === null) return 0;
  const v = (o as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Parses one line as a JSON object, or null (a plain line, a line cut short). */
export function jsonLine(line: string): Record<string, unknown> | null {
  const t = line.trim();
  if (!t.startsWith('{')) return null;
  try {
    const v = JSON.parse(t) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The last non-empty line of a text, shortened for one line of a tree or a table. */
export function lastLine(text: string, max = 160): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return clip(lines.at(-1) ?? '', max);
}

export function clip(s: string, max = 160): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** A path as a person reads it in a step: relative to the worktree when it lies inside. */
export function shownPath(path: string, worktree: string): string {
  const root = worktree.endsWith('/') ? worktree : `${worktree}/`;
  return path.startsWith(root) ? path.slice(root.length) : path;
}

/** The value of `--model <m>` / `-m <m>` / `--model=<m>` in an argv, if any. */
export function modelFlag(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if ((a === '--model' || a === '-m') && argv[i + 1] !== undefined) return argv[i + 1];
    if (a.startsWith('--model=')) return a.slice('--model='.length);
  }
  return undefined;
}

/**
 * One line for a shell command: its first line, without a `bash -lc '…'` wrapper, and with paths
 * inside the worktree (when given) shown relative to it, so the part that says what it does fits.
 */
export function shownCommand(command: string, worktree?: string): string {
  let c = command.trim();
  const wrapped = /^(?:\/bin\/)?(?:ba|z)?sh -l?c (['"])([\s\S]*)\1$/.exec(c);
  if (wrapped) c = wrapped[2]!.replace(/\\(["\\$`])/g, '$1');
  if (worktree) c = c.split(worktree.endsWith('/') ? worktree : `${worktree}/`).join('');
  return clip(c.split('\n')[0] ?? c, 120);
}
