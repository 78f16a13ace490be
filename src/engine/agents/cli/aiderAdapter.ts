import { dirname, join } from 'node:path';
import { splitWords } from '../shellWords';
import type { AgentCliAdapter, AgentInvocation, AgentInvocationContext, CliFailure } from './agentCli';

/**
 * Aider (`aider-chat` on PyPI, read from its source at 0.86), one stage per run:
 *
 *   aider --message <prompt> --file <taskFile> --add-gitignore-files --yes-always --no-auto-commits …
 *
 * No test runs the real Aider: it is a Python package and these machines reach only the npm registry
 * and Debian's packages, so its argv and classify() are tested on texts from its source and its issue
 * tracker (test/agents/aiderAdapter.test.ts), not against a live run as Gemini CLI's are.
 *
 * How Aider differs from the other CLIs, and what that decides here:
 * - It has no tools: it edits the files in its chat and nothing else, and it never sees a file that
 *   is not in its chat or named by the message. The task file is git-excluded, so Aider would refuse
 *   it ("matches gitignore spec") unless `--add-gitignore-files` (Aider ≥ 0.85) lets it in. It is
 *   passed with `--file`, not `--read`: Aider refuses edits to a read-only file, and the completion
 *   marker is an edit of the task file.
 * - `--no-auto-commits`: Aider commits each reply's edited files with `git add` and
 *   `git commit -- <files>`, and the task file is one of them whenever the reply also appends the
 *   marker; git refuses that pathspec (an ignored file), so the whole commit would fail. Instead the
 *   engine commits what the stage left once the marker is there ("work left uncommitted"), which the
 *   task file announces to every agent. `--no-dirty-commits`: no commit of a dirty tree before edits.
 * - `--yes-always` confirms creating and adding files, but never runs a shell command Aider suggests
 *   (Aider issue #3903), so `--no-suggest-shell-commands`: the stage's `check` runs the tests. A user
 *   who wants Aider to run them itself adds `--test-cmd <cmd> --auto-test` to `extraArgs`.
 * - Aider writes its chat and input history and a repository-map cache at the root of the git
 *   checkout: the histories go next to the task file (git-excluded), and each possible cache folder
 *   gets a `.gitignore` of `*` so the engine's commit of the stage's work leaves it out.
 *   `--no-gitignore`: Aider would otherwise add `.aider*` to the project's own `.gitignore`.
 * - `--no-check-update`, `--no-show-release-notes`, `--no-analytics`: nothing asked or fetched at start
 *   (`--yes-always` would say yes to analytics). `--no-pretty`: plain text for the agent's log.
 * - Without any API key and `--model`, Aider offers an OpenRouter login and `--yes-always` accepts it:
 *   it then waits up to 5 minutes for a browser that never comes before exiting 1.
 * - After `--message`, Aider exits 0 even when the API refused every request, so classify() reads the
 *   words whatever the exit code.
 *
 * Permissions: `allow` and `deny` do not apply (Aider runs no tools to allow or deny); `extraArgs` are
 * passed through (`--model`, `--test-cmd`, `--aiderignore`, …).
 */

/** Aider's repository-map cache folders (`.aider.tags.cache.v3`, or `v4` with tree-sitter-language-pack). */
const TAGS_CACHE_DIRS = ['.aider.tags.cache.v3', '.aider.tags.cache.v4'];

export function aiderInvocation(ctx: AgentInvocationContext): AgentInvocation {
  const taskDir = dirname(ctx.taskFile);
  return {
    argv: [
      'aider',
      '--message',
      ctx.prompt,
      '--file',
      ctx.taskFile,
      '--add-gitignore-files',
      '--yes-always',
      '--no-auto-commits',
      '--no-dirty-commits',
      '--no-gitignore',
      '--no-suggest-shell-commands',
      '--no-check-update',
      '--no-show-release-notes',
      '--no-analytics',
      '--no-pretty',
      '--chat-history-file',
      join(taskDir, 'aider.chat.history.md'),
      '--input-history-file',
      join(taskDir, 'aider.input.history'),
      ...ctx.permissions.extraArgs.flatMap((a) => splitWords(a)),
    ],
    env: {},
    files: TAGS_CACHE_DIRS.map((d) => ({
      path: join(ctx.worktree, d, '.gitignore'),
      content: "# Aider's repository-map cache: never part of a commit.\n*\n",
    })),
  };
}

/**
 * How long to wait, from the provider's words as litellm passes them on: "Please try again in 6m0s"
 * (OpenAI), "Please retry in 27.9s" and `"retryDelay": "27s"` (Gemini), "retry-after: 30".
 */
function retryDelayMs(text: string): number | null {
  const duration =
    /(?:try again|retry) in ((?:\d+(?:\.\d+)?h)?(?:\d+(?:\.\d+)?m(?!s))?(?:\d+(?:\.\d+)?(?:ms|s))?)\b/i.exec(
      text,
    )?.[1] ?? /"retryDelay"\s*:\s*"(\d+(?:\.\d+)?(?:ms|s))"/.exec(text)?.[1];
  if (duration) {
    let ms = 0;
    for (const [, n, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) {
      ms += Number(n) * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1);
    }
    if (ms > 0) return Math.round(ms);
  }
  const after = /retry-after["']?\s*[:=]\s*["']?(\d+(?:\.\d+)?)/i.exec(text);
  return after ? Math.round(Number(after[1]) * 1000) : null;
}

/** The last line that matches, as the task's reason. */
function lineOf(tail: string, pattern: RegExp): string {
  const lines = tail.split('\n').map((l) => l.trim());
  for (let i = lines.length - 1; i >= 0; i--) if (pattern.test(lines[i]!)) return lines[i]!.slice(0, 300);
  return (
    lines
      .filter((l) => l.length > 0)
      .pop()
      ?.slice(0, 300) ?? ''
  );
}

const BAD_ARGS = /aider: error: (?:unrecognized arguments|argument|the following arguments are required)/;
const NO_MODEL = /No LLM model was specified and no API keys were provided|OpenRouter authentication did not complete/;
const AUTH =
  /litellm\.AuthenticationError|AuthenticationError:|The API provider is not able to authenticate you|litellm\.PermissionDeniedError|Permission was denied\. Check your API key|api_key client option must be set|invalid x-api-key|Incorrect API key provided|API key not valid/;
const CREDITS =
  /Insufficient credits with the API provider|insufficient_quota|exceeded your current quota|credit balance is too low/i;
const RATE_LIMIT =
  /litellm\.RateLimitError|RateLimitError:|The API provider has rate limited you|RESOURCE_EXHAUSTED|rate_limit_error|\b429\b/;
const CONTEXT = /ContextWindowExceededError|exceeds the \S+ token limit|context window|context_length_exceeded/i;
const NOT_FOUND =
  /litellm\.NotFoundError|NotFoundError:|litellm\.BadRequestError|BadRequestError:|LLM Provider NOT provided/;
const TRANSIENT =
  /litellm\.(?:InternalServerError|ServiceUnavailableError|BadGatewayError|APIConnectionError|APIError|Timeout)|The API provider's servers are down or overloaded|timed out without returning a response|Connection (?:refused|reset|error)/;

export function classifyAider(
  _exit: { code: number | null; signal: string | null },
  tail: string,
  now: number = Date.now(),
): CliFailure | null {
  const permanent = (pattern: RegExp, hint = ''): CliFailure => ({
    kind: 'permanent',
    summary: `${lineOf(tail, pattern)}${hint}`,
  });
  if (BAD_ARGS.test(tail)) {
    const old = /unrecognized arguments:.*--add-gitignore-files/.test(tail) ? ' (Aider 0.85 or later is needed)' : '';
    return permanent(BAD_ARGS, old);
  }
  if (NO_MODEL.test(tail)) return permanent(NO_MODEL, ' (set an API key, or --model in agentCli.aider.extraArgs)');
  if (AUTH.test(tail)) return permanent(AUTH);
  // A quota the account has used up, or credits gone: a person must act, no reset is coming.
  if (CREDITS.test(tail) && !retryDelayMs(tail)) return permanent(CREDITS);
  // Aider retries a rate limit for about a minute itself; what is left is a limit to wait out.
  if (RATE_LIMIT.test(tail) || CREDITS.test(tail)) {
    const failure: CliFailure = { kind: 'limit', summary: lineOf(tail, RATE_LIMIT.test(tail) ? RATE_LIMIT : CREDITS) };
    const delay = retryDelayMs(tail);
    if (delay !== null) failure.resetAt = now + delay;
    return failure;
  }
  if (CONTEXT.test(tail)) return permanent(CONTEXT);
  if (NOT_FOUND.test(tail)) return permanent(NOT_FOUND);
  if (TRANSIENT.test(tail)) return { kind: 'transient', summary: lineOf(tail, TRANSIENT) };
  // Aider's exit code adds nothing: 0 after failed requests too, 1 or 2 for what is matched above.
  return null;
}

export const aiderAdapter: AgentCliAdapter = {
  name: 'aider',
  binary: 'aider',
  description: 'Aider, one message then exit (`aider --message`), the task file in its chat',
  permissionsSummary:
    'Edits the files in its chat and repository (the worktree), creating files without asking; runs no shell commands ' +
    '(the stage check runs the tests) and commits nothing itself: the engine commits its work when it appends the marker.',
  invocation: aiderInvocation,
  classify: (exit, tail) => classifyAider(exit, tail),
  versionArgs: ['--version'],
  credentialEnv: [
    'ANTHROPIC_API_KEY',
    'OPENAI_API_KEY',
    'GEMINI_API_KEY',
    'DEEPSEEK_API_KEY',
    'OPENROUTER_API_KEY',
    'VERTEXAI_PROJECT',
  ],
};
