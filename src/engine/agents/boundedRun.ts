import { spawn } from 'node:child_process';
import type { AgentPriority } from './agentPriority';

/**
 * Runs a short command to its end (a stage check, a CLI's `--version` or `--help` for the doctor) in
 * a process group of its own, so that at the timeout the command and everything it started are
 * killed. Its output, stdout and stderr interleaved as they came, is kept up to a limit.
 */

export interface BoundedRunOptions {
  cwd?: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  /** Output kept at most; what comes after is dropped (default: all of it). */
  maxOutputBytes?: number;
  /**
   * Runs the command and what it starts at the agents' CPU priority: a stage check is the agents'
   * kind of work (a build, a test suite). Default: the caller's priority (the doctor's short probes).
   */
  priority?: AgentPriority;
}

export interface BoundedRun {
  /** The exit code; null when a signal ended it, or it never started. */
  code: number | null;
  output: string;
  /** Killed at the timeout. */
  timedOut: boolean;
  /** Why it could not be started (ENOENT, EACCES), when it could not. */
  startError?: string;
  /** Why its priority could not be lowered, when `priority` was asked for and it could not. */
  priorityError?: string;
}

export function runBounded(command: string, args: readonly string[], o: BoundedRunOptions): Promise<BoundedRun> {
  return new Promise((resolve) => {
    // Through `nice` where there is one, as ProcessRunner starts agents (agentPriority.ts).
    const launch = o.priority?.launch(command, args, o.env, o.cwd) ?? { command, args, lowerAfterSpawn: false };
    const child = spawn(launch.command, launch.args, {
      cwd: o.cwd,
      env: o.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const priorityError =
      o.priority && launch.lowerAfterSpawn && child.pid !== undefined ? o.priority.set(child.pid) : undefined;
    // Detached: a session, and so a scheduling group, of its own (sessionGroup.ts).
    const grouped = o.priority && child.pid !== undefined ? o.priority.group(child.pid) : Promise.resolve(undefined);
    const chunks: Buffer[] = [];
    let kept = 0;
    const take = (c: Buffer) => {
      if (o.maxOutputBytes !== undefined && kept >= o.maxOutputBytes) return;
      chunks.push(c);
      kept += c.length;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }, o.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, output: '', timedOut: false, startError: e.message });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      void grouped.then((groupError) => {
        const why = priorityError ?? groupError;
        resolve({
          code,
          output: Buffer.concat(chunks).toString('utf8'),
          timedOut,
          ...(why !== undefined ? { priorityError: why } : {}),
        });
      });
    });
  });
}
