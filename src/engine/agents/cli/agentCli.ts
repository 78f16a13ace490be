// src/engine/agents/cli/ — one adapter per agent CLI (Claude Code, Codex CLI, Gemini CLI, Aider), its
// stream parser, and `pipeline doctor`. Main file: this one. It imports the agents' helpers in ../
// (command templates, shell words, bounded runs), ../../errors and node built-ins.

/**
 * Agent CLI adapters: what the engine knows about each real agent CLI (Claude Code, Codex CLI,
 * Gemini CLI, Aider). An adapter says how to run its CLI for one stage of one task
 * non-interactively, with the permissions the role needs (edit files, run the project's tests,
 * commit, inside its own worktree and no further), and how to read the CLI's failures from its exit
 * code and its own words. The monitor owns the policy (retry, block, pause); adapters only describe.
 *
 * Nothing here imports `vscode`. One file per CLI, registered in `agentCliRegistry.ts`.
 */

import type { StreamParser, StreamParserContext } from './agentActivity';

/** Everything an adapter may use to build one stage's invocation. */
export interface AgentInvocationContext {
  /** The task file the agent must read and append its marker to (absolute). */
  taskFile: string;
  taskId: string;
  /** The agent's worktree: its working directory (absolute). */
  worktree: string;
  role: string;
  /**
   * The git directories a commit in this worktree writes to: the worktree's own git dir
   * (`<repo>/.git/worktrees/<agent>`) and the common dir's `objects`, `refs`, `logs` (absolute).
   * A sandboxing CLI (Codex) must be given them writable, or `git commit` fails.
   */
  gitWritableDirs: string[];
  /** The prompt that tells the agent to read its task file and append its marker. */
  prompt: string;
  /** What the user allowed beyond the defaults, from `.pipeline/config.json` (`agentCli.<name>`). */
  permissions: AgentPermissions;
}

/**
 * What an agent may do, per CLI, on top of the adapter's defaults. The defaults let a role edit files
 * in its worktree, run shell commands the project needs (tests, git add/commit) and nothing outside.
 */
export interface AgentPermissions {
  /** Extra tool or command patterns allowed (Claude Code: `Bash(make:*)`; others: extra flags' values). */
  allow: string[];
  /** Patterns refused even if a default allows them. */
  deny: string[];
  /** Extra command-line arguments appended as they are (split into words, never through a shell). */
  extraArgs: string[];
}

/** One stage's run, ready for a runner: argv, environment, and files to write before starting. */
export interface AgentInvocation {
  argv: string[];
  env: Record<string, string>;
  /** Files the adapter needs written first (a settings file for the run), absolute paths. */
  files?: { path: string; content: string }[];
}

/**
 * How a failed run is treated:
 * - `permanent`: another attempt fails the same way (not logged in, a bad flag, an untrusted folder,
 *   the binary missing): the task is blocked at once.
 * - `transient`: a network or server error: retried with back-off.
 * - `limit`: a usage or rate limit: the agent pauses until `resetAt` without using an attempt.
 */
export type CliFailureKind = 'permanent' | 'transient' | 'limit';

export interface CliFailure {
  kind: CliFailureKind;
  /** A short cause in the CLI's own words ("Not logged in · Please run /login"). */
  summary: string;
  /** For `limit`: when the limit resets, if the CLI or the API said so (ms since the epoch). */
  resetAt?: number;
}

/**
 * The CLI's own words in a failed run's output tail, where JSON events and plain lines mix: a plain
 * line (stderr) as it is, from an event what `fromEvent` reads in it, and from a line cut by the
 * tail's start (it does not parse) the JSON strings it still holds under `key`.
 */
export function tailMessages(outputTail: string, key: string, fromEvent: (ev: unknown) => string[]): string[] {
  const cut = new RegExp(`"${key}":("(?:[^"\\\\]|\\\\.)*")`, 'g');
  const out: string[] = [];
  for (const raw of outputTail.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (!line.startsWith('{') && !line.endsWith('}')) {
      out.push(line);
      continue;
    }
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      for (const m of line.matchAll(cut)) {
        try {
          out.push(JSON.parse(m[1]!) as string);
        } catch {
          // A string cut by the tail's start: nothing to read in it.
        }
      }
      continue;
    }
    out.push(...fromEvent(ev));
  }
  return out;
}

export interface AgentCliAdapter {
  /** The preset name: `claude`, `codex`, `gemini`, `aider`. */
  readonly name: string;
  /** The program, looked up on PATH. */
  readonly binary: string;
  /** One line for `agent add` help and the README. */
  readonly description: string;
  /** What an agent on this preset may do by default, in words, for the README and `pipeline doctor`. */
  readonly permissionsSummary: string;
  invocation(ctx: AgentInvocationContext): AgentInvocation;
  /**
   * Classifies a run that ended without a completion marker, from its exit and the tail of its
   * output (the last few KB of the agent's log for this attempt). Null: nothing recognised, the
   * monitor treats it as a transient failure.
   */
  classify(exit: { code: number | null; signal: string | null }, outputTail: string): CliFailure | null;
  /**
   * A parser for one run's structured output (one JSON event per line): steps, messages, token
   * usage and the session id. Absent when the CLI prints nothing the engine can read.
   */
  streamParser?(ctx: StreamParserContext): StreamParser;
  /**
   * The invocation that continues an earlier run's conversation (its session id, from the stream)
   * with a new prompt, so an agent resumed after a usage limit keeps its context.
   */
  resumeInvocation?(ctx: AgentInvocationContext, sessionId: string): AgentInvocation;
  /**
   * The CLI's own interactive interface for one stage, for a person to watch and type to in a
   * terminal (an agent with `interactive: true`); completion is still the marker in the task file.
   */
  interactiveInvocation?(ctx: AgentInvocationContext): AgentInvocation;
  /** The model the CLI's configuration names, for a stream that never says (Codex's config.toml). */
  configuredModel?(env: Record<string, string | undefined>): Promise<string | undefined>;
  /** Arguments that print the CLI's version (`--version`). */
  readonly versionArgs: string[];
  /** Environment variables any one of which gives the CLI a key (for `pipeline doctor`). */
  readonly credentialEnv: string[];
}
