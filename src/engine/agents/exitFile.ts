import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { shellQuote } from './shellWords';
import type { RunExit, RunRequest } from '../ports/agentRunner';

/**
 * For runners that type the command into a shell (a tmux window, an integrated terminal): the shell
 * line, which tees the output into the agent's log and writes the command's exit status to a file,
 * and the wait for that file. The terminal does not tell us the status; the file does, and it
 * survives a restart of the monitor.
 */
export function shellLine(req: RunRequest, exitFile: string): string {
  const env = Object.entries(req.command.env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  // tee cannot create the log's directory, and without it the output would reach no log.
  return `mkdir -p ${shellQuote(dirname(req.logFile))}; cd ${shellQuote(req.worktree)} && (env ${env.join(' ')} ${req.command.display}) 2>&1 | tee -a ${shellQuote(req.logFile)}; echo "\${PIPESTATUS[0]}" > ${shellQuote(exitFile)}`;
}

/**
 * Waits until the exit file has a status, then removes it. `gone` is asked on every poll once
 * `stopping()` is true: a shell that was killed writes no status.
 */
export async function waitForExitFile(
  exitFile: string,
  req: RunRequest,
  opts: { stopping: () => boolean; gone: () => Promise<boolean>; pollMs?: number },
): Promise<RunExit> {
  for (;;) {
    try {
      const text = (await readFile(exitFile, 'utf8')).trim();
      if (text !== '') {
        await rm(exitFile, { force: true });
        const code = Number(text);
        return {
          code: Number.isFinite(code) ? code : null,
          signal: null,
          ...(code === 127 ? { startError: `command not found: ${req.command.argv[0] ?? ''}` } : {}),
        };
      }
    } catch {
      // Not written yet.
    }
    if (opts.stopping() && (await opts.gone())) return { code: null, signal: 'SIGTERM' };
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
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
