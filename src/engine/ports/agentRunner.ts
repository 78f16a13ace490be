import type { ResolvedCommand } from '../agents/commandTemplate';

/**
 * Runners start an agent's command for one stage of one task and report when it ends. The engine
 * owns the policy (what counts as done, retries, time-outs); a runner owns only the plumbing of one
 * kind of host: a child process, a tmux window, or (in the extension) an integrated terminal.
 */
export interface RunRequest {
  agentId: string;
  taskId: string;
  attempt: number;
  role: string;
  worktree: string;
  taskFile: string;
  command: ResolvedCommand;
  /** Where the command's output goes. */
  logFile: string;
  /**
   * The CLI session this attempt continues (after a usage limit); already in `command`. A runner
   * that resolves the command elsewhere (a worker on another machine) passes it on.
   */
  resume?: string;
}

export interface RunExit {
  /** The exit code when known (a re-attached process's code cannot be known). */
  code: number | null;
  signal: string | null;
  /** The command could not be started at all (not found, not executable): retrying will not help. */
  startError?: string;
}

export interface RunHandle {
  readonly agentId: string;
  readonly attempt: number;
  readonly pid: number | undefined;
  /** Settles when the command ends, whatever the way. */
  readonly exited: Promise<RunExit>;
  /** Stops the command and whatever it started; resolves when it is gone (or after a grace period). */
  stop(): Promise<void>;
}

export interface AgentRunner {
  readonly kind: string;
  start(req: RunRequest): Promise<RunHandle>;
  /** After a restart: the still-running command of this attempt, if any survived. */
  reattach(req: RunRequest): Promise<RunHandle | null>;
  dispose(): Promise<void>;
}
