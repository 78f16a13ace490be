import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { shellQuote } from './shellWords';
import type { RunExit, RunRequest } from '../ports/agentRunner';

/**
 * For runners that type the command into a shell (a tmux window, an integrated terminal): the shell
 * line, which tees the output into the agent's log and writes the command's exit status to a file,
 * and the wait for that file. The terminal does not tell us the status; the file does, and it
 * survives a restart of the monitor.
 */
/**
 * Where a command's exit status is written: one file per agent, task and attempt. An attempt number
 * counts within its task, so the agent and the attempt alone would name the same file for two tasks
 * (a tester's attempt 2 of TASK-001 and of TASK-002); a follower of the first that was never
 * released would then take the second's status for its own, and the second would wait for ever.
 */
export function exitFileOf(runDir: string, req: Pick<RunRequest, 'agentId' | 'taskId' | 'attempt'>): string {
  return join(runDir, `${req.agentId}.${req.taskId}.attempt-${req.attempt}.exit`);
}

export function shellLine(req: RunRequest, exitFile: string): string {
  const env = Object.entries(req.command.env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  // tee cannot create the log's directory, and without it the output would reach no log.
  // In a subshell that handles SIGINT and SIGTERM (`trap :`, which the command itself does not
  // inherit): Ctrl-C or a SIGTERM to the command's process group, how a runner stops a command, ends
  // the command but not the line, so its status (130, 143) is still written for every handle of the
  // attempt. An interactive shell would drop the rest of the line instead, and the runner, left
  // without a status, would have to end the shell itself, and the agent's terminal with it.
  const command = `env ${env.join(' ')} ${req.command.display}`;
  const log = shellQuote(req.logFile);
  // A CLI's own interactive interface needs a terminal on its output too: behind `tee`'s pipe, Claude
  // Code answers the prompt as `-p` would and exits. `script` runs it in a terminal of its own, shown
  // in this one and copied to the log (which the stall watch sees grow): util-linux's `script` where
  // there is one, else the BSD one (macOS), whose arguments differ. Both return the command's status.
  // `script` outlives a hang-up of this terminal (a closed terminal, a stopped runner) and keeps the
  // CLI alive in its own; run in the background with this terminal as its input (`<&0`, else a
  // background job reads nothing), it is waited for, and a hang-up ends it, which ends the CLI.
  const script = `trap 'kill -TERM $! 2>/dev/null' HUP; if script -V >/dev/null 2>&1; then script -qefa -c ${shellQuote(command)} ${log} <&0 & else script -qaF ${log} /bin/sh -c ${shellQuote(command)} <&0 & fi; wait $!`;
  const run = req.command.interactive ? `{ ${script}; }` : `(${command}) 2>&1 | tee -a ${log}`;
  const status = req.command.interactive ? '$?' : '${PIPESTATUS[0]}';
  return `( trap : INT TERM; mkdir -p ${shellQuote(dirname(req.logFile))}; cd ${shellQuote(req.worktree)} && ${run}; echo "${status}" > ${shellQuote(exitFile)} )`;
}

/**
 * Waits until the exit file has a status. `gone` is asked on every poll once
 * `stopping()` is true: a shell that was killed writes no status. `sleep`, when given, is the wait
 * between two reads (by default `pollMs`); a runner that watches the directory ends it early.
 */
export async function waitForExitFile(
  exitFile: string,
  req: RunRequest,
  opts: {
    stopping: () => boolean;
    gone: () => Promise<boolean>;
    pollMs?: number;
    sleep?: (ms: number) => Promise<void>;
  },
): Promise<RunExit> {
  const status = async (): Promise<RunExit | undefined> => {
    const text = (await readFile(exitFile, 'utf8').catch(() => '')).trim();
    if (text === '') return undefined;
    // Left in place: every handle of the attempt (one re-attached after a restart too) reads it. A
    // new start of the same agent, task and attempt removes it first.
    const code = Number(text);
    return {
      code: Number.isFinite(code) ? code : null,
      signal: null,
      ...(code === 127 ? { startError: `command not found: ${req.command.argv[0] ?? ''}` } : {}),
    };
  };
  for (;;) {
    const written = await status();
    if (written) return written;
    // The status may have been written between the read above and the shell getting its terminal
    // back: read once more before calling the command ended without one.
    if (opts.stopping() && (await opts.gone())) return (await status()) ?? { code: null, signal: 'SIGTERM' };
    const ms = opts.pollMs ?? 100;
    await (opts.sleep ? opts.sleep(ms) : new Promise((r) => setTimeout(r, ms)));
  }
}

export async function exitFileWritten(exitFile: string): Promise<boolean> {
  return readFile(exitFile, 'utf8').then(
    (t) => t.trim() !== '',
    () => false,
  );
}

/**
 * Stops a command typed into a shell: interrupt it (Ctrl-C), give it `graceMs` to write its status,
 * then end the shell itself.
 */
export async function interruptThenKill(
  exited: Promise<RunExit>,
  interrupt: () => Promise<unknown> | void,
  kill: () => Promise<unknown> | void,
  graceMs = 3000,
): Promise<void> {
  await Promise.resolve(interrupt()).catch(() => undefined);
  const done = await Promise.race([
    exited.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), graceMs)),
  ]);
  if (!done) await Promise.resolve(kill()).catch(() => undefined);
}
