import { appendFile, mkdir, open } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { adapterFor } from '../agents/cli/agentCliRegistry';
import type { CliFailure } from '../agents/cli/agentCli';
import type { RunExit, RunRequest } from '../ports/agentRunner';
import { rotateLogIfFull } from '../observability/jsonLogger';
import type { AttemptFailure } from './retryPolicy';

/**
 * What an attempt printed, and what its failure is called. Every runner appends the agent's output
 * to one log per agent (`.pipeline/logs/agents/<agent>.log`); the monitor writes a header line before
 * each attempt, so an attempt's own output is what follows its header. A failed attempt's reason
 * quotes the CLI's own words from there (through its adapter when it has one) and names the log.
 */

/** How much of the log's end is read for a failure: enough for a CLI's final error and usage text. */
const TAIL_BYTES = 32 * 1024;

export function attemptHeader(
  req: Pick<RunRequest, 'agentId' | 'taskId' | 'attempt'>,
  display: string,
  at: string,
): string {
  return `\n--- ${at} ${req.agentId} ${req.taskId} attempt ${req.attempt}: ${display}\n`;
}

export async function writeAttemptHeader(req: RunRequest, at: string): Promise<void> {
  await mkdir(dirname(req.logFile), { recursive: true });
  // Between attempts nobody writes the agent's log: rotated here like pipeline.log (5 MB × 5).
  await rotateLogIfFull(req.logFile);
  await appendFile(req.logFile, attemptHeader(req, req.command.display, at));
}

/** The end of what this attempt printed (after its header), or '' when there is nothing to read. */
export async function attemptOutputTail(
  req: Pick<RunRequest, 'agentId' | 'taskId' | 'attempt' | 'logFile'>,
): Promise<string> {
  let text: string;
  try {
    const f = await open(req.logFile, 'r');
    try {
      const { size } = await f.stat();
      const start = Math.max(0, size - TAIL_BYTES);
      const buf = Buffer.alloc(size - start);
      await f.read(buf, 0, buf.length, start);
      text = buf.toString('utf8');
    } finally {
      await f.close();
    }
  } catch {
    return '';
  }
  const marker = ` ${req.agentId} ${req.taskId} attempt ${req.attempt}: `;
  const at = text.lastIndexOf(marker);
  if (at < 0) return text;
  const lineEnd = text.indexOf('\n', at);
  return lineEnd < 0 ? '' : text.slice(lineEnd + 1);
}

const ESCAPES =
  // eslint-disable-next-line no-control-regex -- terminal escape sequences are what this removes
  /\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[78=>]|[\x00-\x08\x0b-\x1f\x7f]/g;

/*
 * An agent in a terminal (an interactive CLI under `script`, tmux) draws its screen with cursor moves
 * as often as with spaces and newlines: Claude Code prints "accept\x1b[13Gedits". Read as text, a
 * move along the line is a gap and a move to another line is a line break; every other sequence
 * (colours, modes, titles) is nothing. Without this, a CLI's words ("usage limit reached") run
 * together and its adapter cannot recognise them.
 */
// eslint-disable-next-line no-control-regex -- terminal escape sequences are what this reads
const MOVE_ALONG = /\x1b\[[0-9]*[CGX`]/g;
// eslint-disable-next-line no-control-regex -- terminal escape sequences are what this reads
const MOVE_DOWN = /\x1b\[[0-9;]*[ABEFHdf]|\r(?!\n)/g;

/** What a terminal shows of `text`, as plain lines: cursor moves become gaps and line breaks. */
export function screenText(text: string): string {
  return text.replace(MOVE_ALONG, ' ').replace(MOVE_DOWN, '\n').replace(ESCAPES, '');
}

/** The last few non-empty lines of an output, without terminal escapes, shortened, on one line. */
export function lastLines(text: string, count = 3, maxChars = 400): string {
  const lines = screenText(text)
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const kept = lines.slice(-count).join(' | ');
  return kept.length > maxChars ? `…${kept.slice(-maxChars)}` : kept;
}

export interface FailureContext {
  req: Pick<RunRequest, 'agentId' | 'taskId' | 'attempt' | 'logFile' | 'command'>;
  /** The agent's command as configured: a preset name or a template. */
  command: string;
  stage: string;
  /** The pipeline's root, to name the log relative to it. */
  root: string;
}

/**
 * An attempt that ended without a marker, described: its adapter's classification (permanent,
 * transient, limit) with the CLI's words, else the last lines it printed; the log file named.
 */
export async function exitFailure(
  ctx: FailureContext,
  exit: RunExit,
): Promise<AttemptFailure & { cli: CliFailure | null }> {
  const log = relative(ctx.root, ctx.req.logFile) || ctx.req.logFile;
  const program = ctx.req.command.argv[0] ?? ctx.command;
  if (exit.startError) {
    return {
      reason: `${ctx.req.agentId}'s command \`${program}\` could not be started: ${exit.startError}. Install it, or change the agent's command (\`pipeline agent add\`), then retry the task`,
      class: 'permanent',
      cli: null,
    };
  }
  const how = exit.signal
    ? `was killed by ${exit.signal}`
    : exit.code === null
      ? 'ended'
      : `exited with code ${exit.code}`;
  const tail = screenText(await attemptOutputTail(ctx.req));
  const cli = adapterFor(ctx.command)?.classify({ code: exit.code, signal: exit.signal }, tail) ?? null;
  const words = cli?.summary ?? lastLines(tail);
  const said = words ? `: ${words}` : '';
  return {
    reason: `${ctx.req.agentId} (${ctx.stage}) ${how} without a completion marker${said} (log: ${log})`,
    class: cli?.kind === 'permanent' ? 'permanent' : 'transient',
    cli,
  };
}
