import { isAbsolute } from 'node:path';
import { PipelineError } from '../../errors';
import {
  tailMessages,
  type AgentCliAdapter,
  type AgentInvocation,
  type AgentInvocationContext,
  type CliFailure,
} from './agentCli';
import { codexConfiguredModel, codexStreamParser } from './codexStream';

/**
 * Codex CLI (`codex`, checked with 0.171.0) as a pipeline agent.
 *
 * One stage is one `codex exec --json` run in the agent's worktree, printing one JSON event per line
 * (`thread.started` with the id `codex exec resume` takes, `item.completed` for each command and
 * message, `turn.completed` with the token usage, `turn.failed` and `error` with Codex's own words).
 *
 * Permissions come from Codex's own sandbox, not from skipping it:
 * - `--sandbox workspace-write` lets commands write in the worktree (and Codex's temporary
 *   directories) and nowhere else, with no network. `--full-auto` is gone in 0.171.0 (exit 2).
 * - Codex keeps every `.git` under a writable root read-only, and a worktree's git dir is outside
 *   the worktree anyway, so `git commit` fails with "Read-only file system" unless the directories a
 *   commit writes (the worktree's own git dir and the common dir's `objects`, `refs`, `logs`) are
 *   added with `--add-dir`. Adding `<repo>/.git` itself does not help: it stays read-only.
 *   The adapter adds what the engine gives (`ctx.gitWritableDirs`). The whole `refs/` lets an agent
 *   move any branch, the target's too (`git update-ref refs/heads/main …`); `refs/heads/pipeline`
 *   and `logs/refs/heads/pipeline` in their place commit just as well and keep the target out of
 *   reach (codex.test.ts shows both).
 * - `codex exec` never asks for approval: a command the sandbox refuses simply fails, and the
 *   model is told so.
 *
 * What the user may change (`agentCli.codex` in `.pipeline/config.json`):
 * - allow `network`: commands may use the network (`sandbox_workspace_write.network_access`);
 * - allow `danger-full-access`: no sandbox at all (only where something else isolates the agent);
 * - allow an absolute path: one more writable directory (`--add-dir`);
 * - deny `commit`: the git dirs are not added, so the agent edits but cannot commit;
 * - deny `write`: `--sandbox read-only` (a reviewer that must not change the worktree);
 * - deny `tmp`: `/tmp` and `$TMPDIR` are no longer writable (they are by default, so an agent whose
 *   worktree is under `/tmp` can write its neighbours' worktrees there).
 * `extraArgs` go in as they are, before the prompt.
 *
 * What a runner must know:
 * - stdin must be closed (`/dev/null`) or a terminal: with an open pipe, `codex exec` waits for its
 *   end before it starts (it appends piped input to the prompt).
 * - Codex retries failed requests itself (provider settings `request_max_retries`, 4 by default,
 *   and `stream_max_retries`, 5): 500s end the run after about 30 requests and 25 s, a 401 after 6.
 *   A refused connection and a model that never answers are retried without end ("Reconnecting...
 *   waiting for network"): only the stage's timeout ends such a run.
 */

type Sandbox = 'read-only' | 'workspace-write' | 'danger-full-access';

const CONFIG = '.pipeline/config.json';

function badEntry(list: 'allow' | 'deny', entry: string, i: number, known: string): PipelineError {
  return new PipelineError('invalid-config', `Codex does not know the permission "${entry}".`, {
    file: CONFIG,
    where: `agentCli.codex.${list}[${i}]`,
    fix: `Use ${known}.`,
  });
}

/** The options of `codex exec` for one stage: the sandbox, the writable git dirs, the user's extras. */
function execOptions(ctx: AgentInvocationContext): string[] {
  const { allow, deny, extraArgs } = ctx.permissions;
  let sandbox: Sandbox = 'workspace-write';
  let network = false;
  const extraDirs: string[] = [];
  allow.forEach((entry, i) => {
    if (entry === 'network') network = true;
    else if (entry === 'danger-full-access') sandbox = 'danger-full-access';
    else if (isAbsolute(entry)) extraDirs.push(entry);
    else throw badEntry('allow', entry, i, '"network", "danger-full-access" or an absolute directory');
  });
  let commit = true;
  let excludeTmp = false;
  deny.forEach((entry, i) => {
    if (entry === 'commit') commit = false;
    else if (entry === 'write') sandbox = 'read-only';
    else if (entry === 'tmp') excludeTmp = true;
    else throw badEntry('deny', entry, i, '"commit", "write" or "tmp"');
  });
  const options = ['--json', '--sandbox', sandbox, '--cd', ctx.worktree];
  if (sandbox === 'workspace-write') {
    const dirs = [...(commit ? ctx.gitWritableDirs : []), ...extraDirs];
    for (const dir of [...new Set(dirs)]) options.push('--add-dir', dir);
    if (network) options.push('-c', 'sandbox_workspace_write.network_access=true');
    if (excludeTmp)
      options.push(
        '-c',
        'sandbox_workspace_write.exclude_slash_tmp=true',
        '-c',
        'sandbox_workspace_write.exclude_tmpdir_env_var=true',
      );
  }
  return [...options, ...extraArgs];
}

function invocation(ctx: AgentInvocationContext): AgentInvocation {
  // A prompt that began with "-" would be read as an option: `--` ends the options.
  // The user's environment (keys, CODEX_HOME, proxy) reaches the CLI through the runner as it is.
  return { argv: ['codex', 'exec', ...execOptions(ctx), '--', ctx.prompt], env: {} };
}

/**
 * Continues an earlier run's conversation (its `thread.started` id) with a new prompt, in the same
 * sandbox. `codex exec resume` takes no sandbox options of its own: they go before `resume`, where
 * `codex exec` reads them for the resumed thread too.
 */
export function codexResumeInvocation(ctx: AgentInvocationContext, threadId: string): AgentInvocation {
  return { argv: ['codex', 'exec', ...execOptions(ctx), 'resume', '--', threadId, ctx.prompt], env: {} };
}

// ------------------------------------------------------------------------------------------------
// Reading a run's JSON stream.

export interface CodexUsage {
  /** Input tokens, cached ones included (OpenAI's convention). */
  input: number;
  cachedInput: number;
  output: number;
  reasoningOutput: number;
}

export interface CodexStreamFacts {
  /** The id `codex exec resume` takes (`thread.started`). */
  threadId: string | null;
  /**
   * The last `turn.completed` usage: the sum over the turn's requests. A resumed thread reports
   * the sum over the whole thread, its earlier runs included.
   */
  usage: CodexUsage | null;
  /** The agent's last message (`item.completed` of type `agent_message`). */
  lastMessage: string | null;
}

interface StreamEvent {
  type?: string;
  thread_id?: string;
  usage?: Record<string, unknown>;
  item?: { type?: string; text?: unknown };
}

function count(u: Record<string, unknown>, key: string): number {
  const v = u[key];
  return typeof v === 'number' ? v : 0;
}

/** What a `codex exec --json` output says about the run; lines that are not events are skipped. */
export function readCodexStream(output: string): CodexStreamFacts {
  const facts: CodexStreamFacts = { threadId: null, usage: null, lastMessage: null };
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let ev: StreamEvent;
    try {
      ev = JSON.parse(line) as StreamEvent;
    } catch {
      continue;
    }
    if (ev.type === 'thread.started' && typeof ev.thread_id === 'string') facts.threadId = ev.thread_id;
    else if (ev.type === 'turn.completed' && ev.usage)
      facts.usage = {
        input: count(ev.usage, 'input_tokens'),
        cachedInput: count(ev.usage, 'cached_input_tokens'),
        output: count(ev.usage, 'output_tokens'),
        reasoningOutput: count(ev.usage, 'reasoning_output_tokens'),
      };
    else if (ev.type === 'item.completed' && ev.item?.type === 'agent_message' && typeof ev.item.text === 'string')
      facts.lastMessage = ev.item.text;
  }
  return facts;
}

// ------------------------------------------------------------------------------------------------
// Reading a failed run.

/**
 * Codex's own words in an output tail: the `message` of `error` and `turn.failed` events on stdout,
 * and stderr's plain lines (argument errors, a bad config). A tail may start in the middle of a
 * line, so a line that does not parse still gives up its `"message"` strings.
 */
export function codexMessages(outputTail: string): string[] {
  const fromEvent = (event: unknown): string[] => {
    const ev = event as { type?: string; message?: unknown; error?: { message?: unknown } };
    if (ev.type === 'error' && typeof ev.message === 'string') return [ev.message];
    if (ev.type === 'turn.failed' && typeof ev.error?.message === 'string') return [ev.error.message];
    return [];
  };
  return tailMessages(outputTail, 'message', fromEvent)
    .map((m) => m.trim())
    .filter((m) => m.length > 0);
}

// Codex writes a typographic apostrophe ("You’ve"); older versions and other tools a plain one.
const LIMIT = [
  /You['’]ve hit your usage limit/i,
  /You['’]ve reached your workspace credit limit/i,
  /Quota exceeded\. Check your plan and billing details/i,
  /exceeded retry limit, last status: 429\b/,
  /unexpected status 429\b/,
];
const PERMANENT = [
  /unexpected status 40[134]\b/,
  /Missing environment variable: `[^`]+`/,
  /To use Codex with your ChatGPT plan, upgrade/i,
  /Not logged in|Please run `?codex login/i,
  /^Error loading config\.toml/,
  /^error: (?:unexpected argument|invalid value|unrecognized subcommand|the argument '|a value is required|unexpected value)/,
];
const TRANSIENT = [
  /We['’]re currently experiencing high demand/i,
  /unexpected status 5\d\d\b/,
  /exceeded retry limit, last status: 5\d\d\b/,
  /stream disconnected before completion/i,
  /Connection failed|error sending request|waiting for network|Connection refused/i,
  /Error while reading the server response/i,
];

function short(s: string): string {
  return s.length > 300 ? `${s.slice(0, 297)}...` : s;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

function hours24(h: number, ampm: string): number {
  const pm = ampm.toUpperCase() === 'PM';
  return (h % 12) + (pm ? 12 : 0);
}

/**
 * When a usage limit resets, from Codex's message. Codex prints the reset in the local time zone,
 * to the minute: "try again at 4:32 PM." on the same day, "Try again at Dec 4th, 2026 1:32 PM."
 * otherwise; the ChatGPT apps say "try again in 3 days 6 hours 57 minutes". Codex drops the
 * seconds, so a minute is added: resuming a little late is harmless, early is not.
 */
export function codexResetAt(message: string, now: number = Date.now()): number | undefined {
  const full =
    /try again at ([A-Za-z]{3})[a-z]* (\d{1,2})(?:st|nd|rd|th)?,? (\d{4}),? (\d{1,2}):(\d{2}) ?([AP]M)/i.exec(message);
  if (full) {
    const month = MONTHS.indexOf(full[1]!.toLowerCase());
    if (month < 0) return undefined;
    const at = new Date(Number(full[3]), month, Number(full[2]), hours24(Number(full[4]), full[6]!), Number(full[5]));
    return at.getTime() + 60_000;
  }
  const time = /try again at (\d{1,2}):(\d{2}) ?([AP]M)/i.exec(message);
  if (time) {
    const at = new Date(now);
    at.setHours(hours24(Number(time[1]), time[3]!), Number(time[2]), 0, 0);
    let t = at.getTime();
    // Printed on the day of the reset; read after midnight, it means the day before's "today".
    if (t < now - 12 * 3600_000) t += 24 * 3600_000;
    return t + 60_000;
  }
  const rel = /try again in ((?:\d+ ?(?:days?|hours?|minutes?|mins?|seconds?|secs?)[ ,]*(?:and )?)+)/i.exec(message);
  if (rel) {
    const unit: Record<string, number> = { d: 86400_000, h: 3600_000, m: 60_000, s: 1000 };
    let ms = 0;
    for (const m of rel[1]!.matchAll(/(\d+) ?([dhms])/gi)) ms += Number(m[1]) * unit[m[2]!.toLowerCase()]!;
    return ms > 0 ? now + ms : undefined;
  }
  return undefined;
}

function classify(exit: { code: number | null; signal: string | null }, outputTail: string): CliFailure | null {
  if (exit.code === 0 && exit.signal === null) return null;
  const lines = codexMessages(outputTail);
  // The last words count most: Codex reports each retry ("Reconnecting... 2/5 (…)") before its
  // final answer, and a later error explains an earlier one.
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (LIMIT.some((p) => p.test(line))) {
      const resetAt = codexResetAt(line);
      return resetAt === undefined
        ? { kind: 'limit', summary: short(line) }
        : { kind: 'limit', summary: short(line), resetAt };
    }
    if (PERMANENT.some((p) => p.test(line))) return { kind: 'permanent', summary: short(line) };
    if (TRANSIENT.some((p) => p.test(line))) return { kind: 'transient', summary: short(line) };
  }
  return null;
}

export const codexAdapter: AgentCliAdapter = {
  name: 'codex',
  binary: 'codex',
  description: 'Codex CLI, non-interactive (`codex exec --json`), workspace-write sandbox',
  permissionsSummary:
    "Runs commands and edits files in its worktree under Codex's workspace-write sandbox (no network, nothing else writable but temporary directories); the worktree's git directories are writable so it can commit.",
  invocation,
  classify,
  streamParser: codexStreamParser,
  resumeInvocation: codexResumeInvocation,
  configuredModel: codexConfiguredModel,
  versionArgs: ['--version'],
  credentialEnv: ['OPENAI_API_KEY', 'CODEX_API_KEY'],
};
