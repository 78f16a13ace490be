import { dirname, join } from 'node:path';
import { splitWords } from '../shellWords';
import type { AgentCliAdapter, AgentInvocation, AgentInvocationContext, CliFailure } from './agentCli';
import { geminiStreamParser } from './geminiStream';

/**
 * Gemini CLI (`@google/gemini-cli`, checked with 0.61.0), one stage per run:
 *
 *   gemini --prompt <prompt> --skip-trust --approval-mode auto_edit --policy <file> --output-format stream-json
 *
 * - `--prompt` runs headless: one conversation, then exit. Gemini CLI puts whatever a non-terminal
 *   stdin holds before the prompt, so runners give it none (/dev/null). On an API error it writes the
 *   whole request to `$TMPDIR/gemini-client-error-*.json`.
 * - `--skip-trust`: a fresh worktree is a folder nobody has trusted, and headless Gemini CLI exits 55
 *   there (an untrusted folder would also turn any approval mode back to `default`).
 * - `--approval-mode auto_edit` approves `write_file` and `replace`, which Gemini CLI checks against
 *   its workspace (the worktree): a file outside it is refused. Headless, every tool that would ask
 *   is refused instead, so the shell (tests, `git add`, `git commit`, appending the marker) is
 *   allowed by a user-tier policy file written for the run, which also carries the deny rules.
 *   Shell commands themselves are not confined to the worktree. Gemini CLI confines them only in a
 *   sandbox: the whole CLI in docker or podman (`extraArgs: ["--sandbox"]`), or each tool under
 *   bubblewrap (`security.toolSandboxing` in the user's settings, no flag). Tried with 0.61.0, the
 *   latter refuses any `$(…)` in a command, and headless it grants every "sandbox expansion" the
 *   policy allows (a `git commit` writing to the repository's git dir is re-run outside), so it would
 *   confine little here.
 * - `--output-format stream-json`: one JSON event per line (`init` with the session id, `message`,
 *   `tool_use`, `tool_result`, `error`, `result` with token counts), for the agent's log.
 * - `GEMINI_CLI_NO_RELAUNCH=true`: otherwise `gemini` starts a second Node process for a larger heap
 *   and the first one ignores SIGTERM and SIGINT, so stopping the agent by its pid would not stop it.
 *
 * Permissions (`agentCli.gemini` in `.pipeline/config.json`): `allow` and `deny` entries are Gemini CLI
 * tool names (`web_fetch`, `mcp_myserver_*`) or shell commands in its own syntax,
 * `run_shell_command(git push)`, matched by prefix; a deny wins over any allow.
 */

/** Shell commands no stage needs: the engine pushes and merges, and owns the worktrees. */
const DEFAULT_DENIED_COMMANDS = ['git push', 'git worktree'];

const SHELL_ENTRY = /^run_shell_command\((.+)\)$/;

function tomlString(s: string): string {
  return JSON.stringify(s);
}

function ruleFor(entry: string, decision: 'allow' | 'deny', priority: number): string {
  const shell = SHELL_ENTRY.exec(entry.trim());
  const lines = ['[[rule]]'];
  if (shell) {
    lines.push('toolName = "run_shell_command"', `commandPrefix = ${tomlString(shell[1]!.trim())}`);
  } else {
    lines.push(`toolName = ${tomlString(entry.trim())}`);
  }
  lines.push(`decision = "${decision}"`, `priority = ${priority}`);
  if (decision === 'allow') lines.push('allowRedirection = true');
  else
    lines.push(
      `denyMessage = ${tomlString('Not allowed for pipeline agents (.pipeline/config.json, agentCli.gemini).')}`,
    );
  return lines.join('\n');
}

/** The run's policy: the shell allowed, then the user's allows, then the denies above them all. */
export function geminiPolicy(ctx: AgentInvocationContext): string {
  const rules = [
    '# Written by Agent Pipeline for one stage of one task; read by Gemini CLI at start (--policy).',
    [
      '[[rule]]',
      'toolName = "run_shell_command"',
      'decision = "allow"',
      'priority = 100',
      'allowRedirection = true',
    ].join('\n'),
    ...ctx.permissions.allow.map((a) => ruleFor(a, 'allow', 200)),
    ...DEFAULT_DENIED_COMMANDS.map((c) => ruleFor(`run_shell_command(${c})`, 'deny', 900)),
    ...ctx.permissions.deny.map((d) => ruleFor(d, 'deny', 900)),
  ];
  return `${rules.join('\n\n')}\n`;
}

/** The policy file sits next to the task file: in the worktree, out of git, one per agent. */
export function geminiPolicyPath(ctx: AgentInvocationContext): string {
  return join(dirname(ctx.taskFile), 'gemini-policy.toml');
}

/** Each entry split into words the way templates are (quotes kept together), never through a shell. */
function splitArgs(args: string[]): string[] {
  return args.flatMap((a) => splitWords(a));
}

/** "Please retry in 34.07s", "retryDelay": "3600s", "Suggested retry after 60s" → milliseconds. */
function retryDelayMs(text: string): number | null {
  const m =
    /[Pp]lease retry in ([0-9.]+)(ms|s)\b/.exec(text) ??
    /"retryDelay"\s*:\s*"([0-9.]+)(ms|s)"/.exec(text) ??
    /[Ss]uggested retry after ([0-9.]+)(ms|s)\b/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  if (!Number.isFinite(n)) return null;
  return Math.round(m[2] === 'ms' ? n : n * 1000);
}

/**
 * The error of the run's last `result` event (`--output-format stream-json`), in words: Gemini CLI
 * writes `[API Error: <the API's message or its error JSON>]`, then advice on a line of its own.
 */
function resultError(tail: string): string | null {
  const lines = tail.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith('{') || !line.includes('"result"')) continue;
    try {
      const ev = JSON.parse(line) as { type?: string; status?: string; error?: { message?: unknown } };
      if (ev.type !== 'result' || ev.status !== 'error' || typeof ev.error?.message !== 'string') continue;
      let msg = ev.error.message
        .split('\n')[0]!
        .replace(/^\[API Error: /, '')
        .replace(/\]$/, '');
      try {
        const api = JSON.parse(msg) as { error?: { message?: unknown } };
        if (typeof api.error?.message === 'string') msg = api.error.message;
      } catch {
        // Words already, not the API's JSON.
      }
      return msg.trim();
    } catch {
      // A line cut by the tail, or not an event.
    }
  }
  return null;
}

/** The message of the last Google API error JSON in the output (`{"error":{"code":…,"message":"…"`). */
function apiErrorMessage(tail: string): string | null {
  const all = [...tail.matchAll(/\{"error":\{"code":\d+,"message":"((?:[^"\\]|\\.)*)"/g)];
  const last = all.at(-1)?.[1];
  if (last === undefined) return null;
  try {
    return (JSON.parse(`"${last}"`) as string).split('\n')[0]!.trim();
  } catch {
    return last;
  }
}

/**
 * What to tell the user: the result's error, else the API's own message, else the last line that
 * matches, else the last line. `raw` is the output as written (stream-json lines parse), `tail` the
 * same with stream-json's escaping of quotes undone.
 */
function summaryOf(raw: string, tail: string, pattern: RegExp): string {
  const said = resultError(raw) ?? apiErrorMessage(tail);
  if (said) return said.slice(0, 300);
  const lines = tail
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !/^(?:at |status: |\}|cause: )/.test(l));
  for (let i = lines.length - 1; i >= 0; i--) {
    if (pattern.test(lines[i]!)) return lines[i]!.slice(0, 300);
  }
  return lines.pop()?.slice(0, 300) ?? '';
}

/** Gemini CLI's fatal exit codes (its `FatalError` subclasses). */
const EXIT = { general: 1, auth: 41, input: 42, sandbox: 44, config: 52, untrusted: 55 };

/**
 * An API error ends a headless run with the HTTP status as its exit code, which the shell reduces
 * modulo 256: 400 → 144, 401 → 145, 403 → 147, 404 → 148, 429 → 173, 500 → 244, 503 → 247.
 */
const httpStatusOfExit = (code: number | null): number | null => (code !== null && code >= 144 ? code + 256 : null);

const QUOTA =
  /RESOURCE_EXHAUSTED|exhausted your (?:daily )?quota|[Qq]uota exceeded|exceeded your current quota|TerminalQuotaError|RetryableQuotaError|\b429\b|Too Many Requests|[Rr]ate limit/;
const AUTH =
  /API key not valid|API_KEY_INVALID|PERMISSION_DENIED|UNAUTHENTICATED|"code":\s*40[13]\b|must specify the GEMINI_API_KEY|Please set an Auth method/;
const BAD_ARGS = /Unknown arguments?:|Invalid values?:|Not enough arguments following|Missing required argument/;
/** Yargs prints the whole usage after a bad argument; a short tail may hold only that. */
const USAGE = /^Usage: gemini \[options\]|Show help\s+\[boolean\]/m;
const MODEL_MISSING = /ModelNotFoundError|"code":\s*404\b|\bNOT_FOUND\b/;
const TRANSIENT =
  /"code":\s*5\d\d\b|status 5\d\d|\bINTERNAL\b|\bUNAVAILABLE\b|DEADLINE_EXCEEDED|fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket hang up/;

export function classifyGemini(
  exit: { code: number | null; signal: string | null },
  output: string,
  now: number = Date.now(),
): CliFailure | null {
  // Stream-json escapes the API's JSON inside its own strings; match the words either way.
  const tail = output.replace(/\\"/g, '"');
  const summary = (pattern: RegExp) => summaryOf(output, tail, pattern);
  const permanent = (pattern: RegExp): CliFailure => ({ kind: 'permanent', summary: summary(pattern) });
  if (exit.code === 0 && !exit.signal) return null;
  if (exit.code === EXIT.untrusted) return permanent(/trusted/i);
  if (exit.code === EXIT.auth) return permanent(/auth|key|credential|login/i);
  if (exit.code === EXIT.input || exit.code === EXIT.config || exit.code === EXIT.sandbox)
    return permanent(/error|invalid|sandbox|missing/i);
  const status = httpStatusOfExit(exit.code);

  // A usage limit: Gemini CLI has retried it already, and the API may have said when it resets.
  if (status === 429 || QUOTA.test(tail)) {
    const failure: CliFailure = { kind: 'limit', summary: summary(QUOTA) };
    const delay = retryDelayMs(tail);
    if (delay !== null) failure.resetAt = now + delay;
    return failure;
  }
  // A key the API refuses: every retry would be refused the same way.
  if (status === 401 || status === 403 || AUTH.test(tail)) return permanent(AUTH);
  if (exit.code === EXIT.general && (BAD_ARGS.test(tail) || USAGE.test(tail))) {
    const words = BAD_ARGS.exec(tail) ? summary(BAD_ARGS) : 'Gemini CLI refused its arguments';
    return { kind: 'permanent', summary: `${words} (gemini printed its usage: check agentCli.gemini.extraArgs)` };
  }
  if (status === 404 || MODEL_MISSING.test(tail)) return permanent(MODEL_MISSING);
  if ((status !== null && status >= 500) || TRANSIENT.test(tail))
    return { kind: 'transient', summary: summary(TRANSIENT) };
  return null;
}

export const geminiAdapter: AgentCliAdapter = {
  name: 'gemini',
  binary: 'gemini',
  description: 'Gemini CLI, non-interactive (`gemini --prompt`), edits and shell approved by a policy file',
  permissionsSummary:
    'Edits files inside its worktree (Gemini CLI refuses paths outside it) and runs shell commands (tests, git add, git commit); ' +
    '`git push` and `git worktree` are denied. Shell commands are not confined to the worktree unless Gemini CLI runs in a sandbox (`--sandbox`).',
  invocation: (ctx) => geminiInvocation(ctx),
  classify: (exit, tail) => classifyGemini(exit, tail),
  streamParser: geminiStreamParser,
  resumeInvocation: (ctx, session) => geminiInvocation(ctx, session),
  versionArgs: ['--version'],
  credentialEnv: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GENAI_USE_VERTEXAI', 'GOOGLE_GENAI_USE_GCA'],
};

/** One stage's run; `resume` continues an earlier session (`--resume <session_id>`). */
function geminiInvocation(ctx: AgentInvocationContext, resume?: string): AgentInvocation {
  const policy = geminiPolicyPath(ctx);
  return {
    argv: [
      'gemini',
      '--prompt',
      ctx.prompt,
      '--skip-trust',
      '--approval-mode',
      'auto_edit',
      '--policy',
      policy,
      '--output-format',
      'stream-json',
      ...(resume ? ['--resume', resume] : []),
      ...splitArgs(ctx.permissions.extraArgs),
    ],
    env: { GEMINI_CLI_NO_RELAUNCH: 'true' },
    files: [{ path: policy, content: geminiPolicy(ctx) }],
  };
}
