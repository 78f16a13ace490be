import { dirname, join } from 'node:path';
import type { AgentCliAdapter, AgentInvocation, AgentInvocationContext, CliFailure } from './agentCli';

/**
 * Gemini CLI (`@google/gemini-cli`, checked with 0.61.0), one stage per run:
 *
 *   gemini --prompt <prompt> --skip-trust --approval-mode auto_edit --policy <file> --output-format stream-json
 *
 * - `--prompt` runs headless: one conversation, then exit. Gemini CLI reads stdin too when it is not a
 *   terminal, so runners give it none (/dev/null).
 * - `--skip-trust`: a fresh worktree is a folder nobody has trusted, and headless Gemini CLI exits 55
 *   there (an untrusted folder would also turn any approval mode back to `default`).
 * - `--approval-mode auto_edit` approves `write_file` and `replace`, which Gemini CLI checks against
 *   its workspace (the worktree): a file outside it is refused. Headless, every tool that would ask
 *   is refused instead, so the shell (tests, `git add`, `git commit`, appending the marker) is
 *   allowed by a user-tier policy file written for the run, which also carries the deny rules.
 *   Shell commands themselves are not confined to the worktree: Gemini CLI confines them only in a
 *   sandbox (docker, podman or bubblewrap), which a user may ask for with `extraArgs: ["--sandbox"]`.
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
  else lines.push(`denyMessage = ${tomlString('Not allowed for pipeline agents (.pipeline/config.json, agentCli.gemini).')}`);
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

function splitArgs(args: string[]): string[] {
  return args.flatMap((a) => a.split(/\s+/)).filter((a) => a.length > 0);
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

/** The last line of the tail that says what went wrong, for the task's blocked reason. */
function summaryOf(tail: string, pattern: RegExp): string {
  const lines = tail.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) {
    if (pattern.test(lines[i]!)) return lines[i]!.slice(0, 300);
  }
  return lines.filter((l) => l.length > 0).pop()?.slice(0, 300) ?? '';
}

/** Gemini CLI's fatal exit codes (its `FatalError` subclasses). */
const EXIT = { auth: 41, input: 42, sandbox: 44, config: 52, turnLimit: 53, toolExecution: 54, untrusted: 55 };

export function classifyGemini(
  exit: { code: number | null; signal: string | null },
  tail: string,
  now: number = Date.now(),
): CliFailure | null {
  const permanent = (pattern: RegExp): CliFailure => ({ kind: 'permanent', summary: summaryOf(tail, pattern) });
  if (exit.code === 0 && !exit.signal) return null;
  if (exit.code === EXIT.untrusted) return permanent(/trusted/i);
  if (exit.code === EXIT.auth) return permanent(/auth|key|credential|login/i);
  if (exit.code === EXIT.input || exit.code === EXIT.config || exit.code === EXIT.sandbox)
    return permanent(/error|invalid|sandbox|missing/i);

  // A usage limit: Gemini CLI has retried it already, and the API may say when it resets.
  const quota =
    /RESOURCE_EXHAUSTED|exhausted your (?:daily )?quota|[Qq]uota exceeded|exceeded your current quota|TerminalQuotaError|RetryableQuotaError|\b429\b|Too Many Requests|[Rr]ate limit/;
  if (quota.test(tail)) {
    const delay = retryDelayMs(tail);
    const failure: CliFailure = { kind: 'limit', summary: summaryOf(tail, quota) };
    if (delay !== null) failure.resetAt = now + delay;
    return failure;
  }
  // A key the API refuses: every retry would be refused the same way.
  const authRefused =
    /API key not valid|API_KEY_INVALID|PERMISSION_DENIED|UNAUTHENTICATED|\b(?:401|403)\b|Please set an Auth method|GEMINI_API_KEY environment variable not found/;
  if (authRefused.test(tail)) return permanent(authRefused);
  const badFlag = /Unknown arguments?:|Invalid values?:|Not enough arguments following|Missing required argument/;
  if (badFlag.test(tail)) return permanent(badFlag);
  const modelMissing = /ModelNotFoundError|models\/[^\s]+ is not found|\bNOT_FOUND\b/;
  if (modelMissing.test(tail)) return permanent(modelMissing);
  const transient =
    /\b5\d\d\b|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket hang up|network/i;
  if (transient.test(tail)) return { kind: 'transient', summary: summaryOf(tail, transient) };
  return null;
}

export const geminiAdapter: AgentCliAdapter = {
  name: 'gemini',
  binary: 'gemini',
  description: 'Gemini CLI, non-interactive (`gemini --prompt`), edits and shell approved by a policy file',
  permissionsSummary:
    'Edits files inside its worktree (Gemini CLI refuses paths outside it) and runs shell commands (tests, git add, git commit); ' +
    '`git push` and `git worktree` are denied. Shell commands are not confined to the worktree unless Gemini CLI runs in a sandbox (`--sandbox`).',
  invocation(ctx: AgentInvocationContext): AgentInvocation {
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
        ...splitArgs(ctx.permissions.extraArgs),
      ],
      env: { GEMINI_CLI_NO_RELAUNCH: 'true' },
      files: [{ path: policy, content: geminiPolicy(ctx) }],
    };
  },
  classify: (exit, tail) => classifyGemini(exit, tail),
  versionArgs: ['--version'],
  credentialEnv: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GENAI_USE_VERTEXAI', 'GOOGLE_GENAI_USE_GCA'],
};
