import {
  tailMessages,
  type AgentCliAdapter,
  type AgentInvocation,
  type AgentInvocationContext,
  type CliFailure,
} from './agentCli';
import { claudeStreamParser } from './claudeStream';

/**
 * Claude Code (`claude`, checked with 2.1.332) as a pipeline agent.
 *
 * One stage is one `claude -p` run in the agent's worktree, printing one JSON event per line
 * (`--output-format stream-json --verbose`: the final `result` event carries the answer, the true
 * token counts, the cost and the session id). Permissions without skipping them:
 * - `--permission-mode acceptEdits` lets the file tools create, edit and append inside the working
 *   directory (the worktree) and nowhere else;
 * - a `--settings` JSON with `permissions.allow` lets Bash run exactly the commands a stage needs
 *   (git add/commit and friends, the usual test commands); read-only commands such as `ls`, `cat`,
 *   `git status` and `git diff` are already allowed inside the worktree;
 * - `--permission-prompts none` turns anything else into an immediate refusal the model is told
 *   about ("nobody can answer a permission prompt here"), so a run never waits for a person.
 * The settings travel as a JSON argument, not a file, so nothing is written into the worktree.
 */

/** Bash patterns every role may run: stage, commit and inspect its branch; run the project's tests. */
export const CLAUDE_DEFAULT_ALLOW: readonly string[] = [
  'Bash(git add:*)',
  'Bash(git commit:*)',
  'Bash(git rm:*)',
  'Bash(git mv:*)',
  'Bash(git status:*)',
  'Bash(git diff:*)',
  'Bash(git log:*)',
  'Bash(git show:*)',
  'Bash(npm test:*)',
  'Bash(npm run test:*)',
  'Bash(yarn test:*)',
  'Bash(pnpm test:*)',
  'Bash(make test:*)',
  'Bash(pytest:*)',
  'Bash(python -m pytest:*)',
  'Bash(go test:*)',
  'Bash(cargo test:*)',
];

/** Refused even where a pattern would allow it: the pipeline merges; agents never push. */
export const CLAUDE_DEFAULT_DENY: readonly string[] = ['Bash(git push:*)'];

function permissionSettings(ctx: AgentInvocationContext): string {
  const { allow, deny } = ctx.permissions;
  // The user's word wins over a default in both directions: a denied default is no longer allowed,
  // an allowed default is no longer denied.
  const permissions = {
    allow: unique([...CLAUDE_DEFAULT_ALLOW.filter((p) => !deny.includes(p)), ...allow]),
    deny: unique([...CLAUDE_DEFAULT_DENY.filter((p) => !allow.includes(p)), ...deny]),
  };
  return JSON.stringify({ permissions });
}

/** `claude -p` for one stage; `resume` continues an earlier session (`--resume <id>`). */
function invocation(ctx: AgentInvocationContext, resume?: string): AgentInvocation {
  return {
    argv: [
      'claude',
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--permission-mode',
      'acceptEdits',
      '--permission-prompts',
      'none',
      '--settings',
      permissionSettings(ctx),
      ...(resume ? ['--resume', resume] : []),
      ...ctx.permissions.extraArgs,
      // Options such as --add-dir take several values: `--` ends them before the prompt.
      '--',
      ctx.prompt,
    ],
    // The user's environment (keys, base URL, proxy) reaches the CLI through the runner as it is.
    env: {},
  };
}

/**
 * Claude Code's own interface, for a person to watch and type to: the prompt as the first message,
 * the same permissions (a tool they do not allow asks the person, who is there to answer).
 */
function interactiveInvocation(ctx: AgentInvocationContext): AgentInvocation {
  return {
    argv: [
      'claude',
      '--permission-mode',
      'acceptEdits',
      '--settings',
      permissionSettings(ctx),
      ...ctx.permissions.extraArgs,
      '--',
      ctx.prompt,
    ],
    env: {},
  };
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

// ------------------------------------------------------------------------------------------------
// Reading a failed run.

/**
 * The CLI's own words in an output tail. With stream-json they are inside JSON events: the
 * `result` event's `result`, and the message of an assistant event the CLI made up for an API error
 * (`is_api_error_message`); the model's own text and tool output are not the CLI speaking. A tail
 * may start in the middle of a line: such a line still gives up its `result` string.
 */
export function claudeMessages(outputTail: string): string[] {
  const fromEvent = (event: unknown): string[] => {
    const ev = event as {
      type?: string;
      result?: unknown;
      is_api_error_message?: boolean;
      message?: { content?: unknown };
    };
    if (ev.type === 'result' && typeof ev.result === 'string') return [ev.result];
    if (ev.type === 'assistant' && ev.is_api_error_message === true && Array.isArray(ev.message?.content))
      return (ev.message.content as { type?: string; text?: unknown }[]).flatMap((c) =>
        c.type === 'text' && typeof c.text === 'string' ? [c.text] : [],
      );
    return [];
  };
  return tailMessages(outputTail, 'result', fromEvent)
    .flatMap((m) => m.split('\n'))
    .map((m) => m.trim())
    .filter((m) => m.length > 0);
}

const LIMIT = [
  /You've hit your .*limit/i,
  /usage limit reached/i,
  /Request rejected \(429\)/,
  /API Error: 429\b/,
  /rate[_ ]limit(?:ed|_error)?\b.*(?:exceed|reached|reject)/i,
];
const PERMANENT = [
  /Not logged in/,
  /Invalid API key/i,
  /OAuth token (?:has )?(?:expired|been revoked)/i,
  /Please run \/login/,
  /Credit balance is too low/i,
  /API Error: 40[13]\b/,
  /issue with the selected model/i,
  /^error: (?:unknown option|unknown command|option '|required option|missing required argument|too many arguments)/,
  /^Error: When using --print\b/,
  /--\S+ requires --\S+/,
];
const TRANSIENT = [
  /API Error: 5\d\d\b/,
  /API Error: (?:Connection|Request timed out|Overloaded)/i,
  /^Request timed out\b/,
  /\boverloaded\b/i,
  /\b(?:ECONNREFUSED|ECONNRESET|ETIMEDOUT|EAI_AGAIN|socket hang up|fetch failed)\b/,
];

function firstMatch(lines: string[], patterns: RegExp[]): string | null {
  // The last words count most: a later error explains an earlier one.
  for (let i = lines.length - 1; i >= 0; i--) if (patterns.some((p) => p.test(lines[i]!))) return lines[i]!;
  return null;
}

function short(s: string): string {
  return s.length > 300 ? `${s.slice(0, 297)}...` : s;
}

function classify(exit: { code: number | null; signal: string | null }, outputTail: string): CliFailure | null {
  // A run that exited 0 finished its conversation: whatever its text says, the CLI did not fail.
  if (exit.code === 0) return null;
  const lines = claudeMessages(outputTail);
  const limit = firstMatch(lines, LIMIT);
  if (limit) {
    const resetAt = parseResetTime(limit, Date.now());
    return resetAt === undefined
      ? { kind: 'limit', summary: short(limit) }
      : { kind: 'limit', summary: short(limit), resetAt };
  }
  const permanent = firstMatch(lines, PERMANENT);
  if (permanent) return { kind: 'permanent', summary: short(permanent) };
  const transient = firstMatch(lines, TRANSIENT);
  if (transient) return { kind: 'transient', summary: short(transient) };
  // Words not recognised: the HTTP status the result event names still says which kind it is.
  const status = [...outputTail.matchAll(/"api_error_status":(\d{3})/g)].at(-1)?.[1];
  const said = short(lines.at(-1) ?? `API error ${status}`);
  if (status === '429') return { kind: 'limit', summary: said };
  if (status === '401' || status === '403') return { kind: 'permanent', summary: said };
  if (status !== undefined && Number(status) >= 500) return { kind: 'transient', summary: said };
  return null;
}

// ------------------------------------------------------------------------------------------------
// When a usage limit resets, in the forms Claude Code prints it.

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * The reset time a limit message names, in ms since the epoch, or undefined.
 * - A subscription's limit: "You've hit your 5-hour limit · resets 3:33pm (UTC)", or with a date,
 *   "resets Dec 4, 2pm (Europe/Berlin)": a wall-clock time in the named zone, the next one to come.
 * - An ISO time after "reset" ("Limit resets at 2026-12-01T15:00:00Z").
 * - Older CLIs' "Claude AI usage limit reached|<epoch seconds>".
 */
export function parseResetTime(text: string, now: number): number | undefined {
  const epoch = /usage limit reached\|(\d{9,11})\b/i.exec(text);
  if (epoch) return Number(epoch[1]) * 1000;
  const iso =
    /resets?\b[^0-9]{0,20}(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)/i.exec(text);
  if (iso) {
    const t = Date.parse(iso[1]!.replace(' ', 'T'));
    return Number.isNaN(t) ? undefined : t;
  }
  const wall =
    /resets?\s+(?:at\s+)?(?:([A-Za-z]{3})[a-z]*\s+(\d{1,2}),?\s+(?:at\s+)?)?(\d{1,2})(?::(\d{2}))?\s*([ap]m)\b(?:\s*\(([^)]+)\))?/i.exec(
      text,
    );
  if (!wall) return undefined;
  const [, mon, day, hour, minute, ampm, zone] = wall;
  const h = (Number(hour) % 12) + (ampm!.toLowerCase() === 'pm' ? 12 : 0);
  const mi = Number(minute ?? 0);
  const tz = zone?.trim() || 'UTC';
  try {
    const today = zonedParts(now, tz);
    if (mon !== undefined && day !== undefined) {
      const m = MONTHS.indexOf(mon.toLowerCase());
      if (m < 0) return undefined;
      let t = zonedTime(today.year, m, Number(day), h, mi, tz);
      // A date without a year that lies well behind us is next year's (a reset near New Year).
      if (t < now - 86_400_000) t = zonedTime(today.year + 1, m, Number(day), h, mi, tz);
      return t;
    }
    let t = zonedTime(today.year, today.month, today.day, h, mi, tz);
    if (t <= now - 60_000) t = zonedTime(today.year, today.month, today.day + 1, h, mi, tz);
    return t;
  } catch {
    // An unknown time zone name: the time cannot be placed.
    return undefined;
  }
}

function zonedParts(t: number, tz: string): { year: number; month: number; day: number; offset: number } {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(t);
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return { year: get('year'), month: get('month') - 1, day: get('day'), offset: asUtc - Math.floor(t / 1000) * 1000 };
}

/** The instant a wall-clock time in a zone names (Date.UTC normalises a day past the month's end). */
function zonedTime(year: number, month: number, day: number, hour: number, minute: number, tz: string): number {
  const wall = Date.UTC(year, month, day, hour, minute);
  const first = wall - zonedParts(wall, tz).offset;
  // Near a daylight-saving change the offset at the guess and at the answer differ: take the latter.
  return wall - zonedParts(first, tz).offset;
}

export const claudeAdapter: AgentCliAdapter = {
  name: 'claude',
  binary: 'claude',
  description: 'Claude Code, non-interactive (`claude -p`): edits in its worktree, runs tests, commits',
  permissionsSummary:
    'Creates and edits files in its worktree only (acceptEdits); runs git add/commit/rm/mv/status/diff/log/show ' +
    'and the usual test commands (npm/yarn/pnpm test, make test, pytest, go test, cargo test); never git push; ' +
    'anything else is refused without asking. Widen with agentCli.claude.allow (e.g. "Bash(make lint:*)").',
  invocation: (ctx) => invocation(ctx),
  classify,
  streamParser: claudeStreamParser,
  resumeInvocation: (ctx, session) => invocation(ctx, session),
  interactiveInvocation,
  versionArgs: ['--version'],
  credentialEnv: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN'],
};
