import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AgentRunner, RunHandle, RunRequest } from '../ports/agentRunner';
import { AgentPriority } from './agentPriority';
import { exitFileOf, exitFileWritten, interruptThenKill, shellLine, waitForExitFile } from './exitFile';

const run = promisify(execFile);

/**
 * The seed's way: one tmux window per agent, in one session per pipeline, each task notified by
 * typing its command into the agent's window (send-keys). A person can attach and watch or take
 * over (`tmux attach -t <session>`). The command's exit status is written to a file, since tmux
 * does not report it; the window (and a running agent in it) survives a crash of the monitor. The
 * window's shell runs below the engine's CPU priority (agentPriority.ts), so every command typed
 * into it does too.
 */
export class TmuxRunner implements AgentRunner {
  readonly kind = 'tmux';
  readonly session: string;
  private readonly priority: AgentPriority;
  /**
   * The agents whose window's shell has its priority set: a window this runner made or looked at
   * keeps its shell, so the next start needs no tmux command to learn its pid again.
   */
  private readonly nicedShell = new Set<string>();

  /** `niceness` is the configuration's `agentNiceness`. */
  constructor(
    private readonly runDir: string,
    pipelineDir: string,
    o: { niceness?: number } = {},
  ) {
    this.session = `pipeline-${createHash('sha1').update(pipelineDir).digest('hex').slice(0, 8)}`;
    this.priority = new AgentPriority(o.niceness);
  }

  static async available(): Promise<boolean> {
    try {
      await run('tmux', ['-V'], { timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  }

  private async tmux(args: string[]): Promise<string> {
    const { stdout } = await run('tmux', args, { timeout: 10_000 });
    return stdout;
  }

  /** Which attempt was last typed into the agent's window, so reattach follows only that one. */
  private attemptFile(agentId: string): string {
    return join(this.runDir, `${agentId}.tmux.json`);
  }

  /**
   * The process group of the command running in the window: the pane's foreground group while it
   * is not the window's own shell (read from /proc, where the shell's tpgid says which group owns
   * its terminal). Undefined when the shell is in the foreground again, or the window is gone.
   */
  private async commandGroup(target: string): Promise<number | undefined> {
    try {
      const shell = Number((await this.tmux(['display-message', '-p', '-t', target, '#{pane_pid}'])).trim());
      const stat = await readFile(`/proc/${shell}/stat`, 'utf8');
      // Fields after the command name: state, ppid, pgrp, session, tty_nr, tpgid.
      const tpgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[5]);
      return tpgid > 0 && tpgid !== shell ? tpgid : undefined;
    } catch {
      return undefined;
    }
  }

  /** The agent's window, made if missing, its shell at the agents' priority (set before anything is typed). */
  private async ensureWindow(agentId: string, cwd: string, logFile: string): Promise<string> {
    const target = `${this.session}:${agentId}`;
    try {
      await this.tmux(['has-session', '-t', this.session]);
    } catch {
      await this.tmux(['new-session', '-d', '-s', this.session, '-n', 'pipeline', '-x', '200', '-y', '50']);
    }
    const windows = (await this.tmux(['list-windows', '-t', this.session, '-F', '#{window_name}'])).split('\n');
    let shell: number | undefined;
    if (!windows.includes(agentId)) {
      this.nicedShell.delete(agentId);
      // The new window's shell pid comes with its creation (-P), so the new window costs no more tmux commands.
      shell = paneShell(
        await this.tmux([
          'new-window',
          '-d',
          '-P',
          '-F',
          '#{pane_pid}',
          '-t',
          this.session,
          '-n',
          agentId,
          '-c',
          cwd,
          ...pipelineEnvironment(),
          'bash --noprofile --norc',
        ]),
      );
    } else if (!this.nicedShell.has(agentId)) {
      // A window from before (a previous run, a restarted monitor) or respawned: its shell may have any priority.
      shell = paneShell(await this.tmux(['display-message', '-p', '-t', target, '#{pane_pid}']).catch(() => ''));
    }
    if (shell !== undefined) {
      await this.priority.apply(shell, agentId, logFile);
      this.nicedShell.add(agentId);
    }
    return target;
  }

  async start(req: RunRequest): Promise<RunHandle> {
    await mkdir(this.runDir, { recursive: true });
    const exitFile = exitFileOf(this.runDir, req);
    await rm(exitFile, { force: true });
    const target = await this.ensureWindow(req.agentId, req.worktree, req.logFile);
    await writeFile(this.attemptFile(req.agentId), JSON.stringify({ taskId: req.taskId, attempt: req.attempt }));
    const line = shellLine(req, exitFile);
    await this.tmux(['send-keys', '-t', target, '-l', line]);
    await this.tmux(['send-keys', '-t', target, 'Enter']);
    return this.follow(req, target, exitFile);
  }

  private follow(req: RunRequest, target: string, exitFile: string): RunHandle {
    let stopped = false;
    const exited = waitForExitFile(exitFile, req, {
      stopping: () => stopped,
      // Stopped without writing its status: it is over once the window's shell has its terminal back.
      gone: async () => (await this.commandGroup(target)) === undefined,
    });
    return {
      agentId: req.agentId,
      attempt: req.attempt,
      pid: undefined,
      exited,
      stop: async () => {
        stopped = true;
        // The command's whole process group is signalled: Ctrl-C alone would leave what a script
        // started in the background running (a script's background jobs ignore SIGINT).
        const group = await this.commandGroup(target);
        await interruptThenKill(
          exited,
          () => (group ? signalGroup(group, 'SIGTERM') : this.tmux(['send-keys', '-t', target, 'C-c'])),
          async () => {
            if (group) signalGroup(group, 'SIGKILL');
            // A new shell, at the tmux server's priority: the next start sets it again.
            this.nicedShell.delete(req.agentId);
            await this.tmux([
              'respawn-window',
              '-k',
              '-t',
              target,
              ...pipelineEnvironment(),
              'bash --noprofile --norc',
            ]);
          },
        );
      },
    };
  }

  async reattach(req: RunRequest): Promise<RunHandle | null> {
    const target = `${this.session}:${req.agentId}`;
    try {
      const last = JSON.parse(await readFile(this.attemptFile(req.agentId), 'utf8')) as {
        taskId: string;
        attempt: number;
      };
      if (last.taskId !== req.taskId || last.attempt !== req.attempt) return null;
      const exitFile = exitFileOf(this.runDir, req);
      // Neither finished nor running: the window's shell has its terminal (the command was lost).
      if (!(await exitFileWritten(exitFile)) && (await this.commandGroup(target)) === undefined) return null;
      return this.follow(req, target, exitFile);
    } catch {
      return null;
    }
  }

  /** Ends the pipeline's tmux session (tests, and `pipeline run` when it stops its agents). */
  async killSession(): Promise<void> {
    await this.tmux(['kill-session', '-t', this.session]).catch(() => undefined);
  }

  /**
   * Ends the session once no window runs a command: after a run that stopped its agents nothing is
   * left behind, while agents left running for the next leader keep their windows.
   */
  async dispose(): Promise<void> {
    const windows = await this.tmux(['list-windows', '-t', this.session, '-F', '#{window_name}']).then(
      (out) => out.split('\n').filter((w) => w && w !== 'pipeline'),
      () => null,
    );
    if (windows === null) return;
    for (const w of windows) if ((await this.commandGroup(`${this.session}:${w}`)) !== undefined) return;
    await this.killSession();
  }
}

/**
 * `-e NAME=value` for every variable of this process: a window gets the environment of the tmux
 * server otherwise, which an already running server started with other values (an API key set for
 * this run would never reach the agents).
 */
function pipelineEnvironment(): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === 'TMUX' || k === 'TMUX_PANE' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) continue;
    out.push('-e', `${k}=${v}`);
  }
  return out;
}

/** The pid tmux printed for a pane (`#{pane_pid}`); undefined when it printed none. */
function paneShell(out: string): number | undefined {
  const pid = Number(out.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function signalGroup(group: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-group, signal);
  } catch {
    // Gone already.
  }
}
