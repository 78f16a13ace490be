import { mkdir, rm } from 'node:fs/promises';
import * as vscode from 'vscode';
import type { AgentRunner, RunHandle, RunRequest } from '../engine/ports/agentRunner';
import { AgentPriority } from '../engine/agents/agentPriority';
import { exitFileOf, exitFileWritten, interruptThenKill, shellLine, waitForExitFile } from '../engine/agents/exitFile';
import { ExitFileWaker } from './exitFileWaker';

/**
 * How often a wait reads its exit file when no file event woke it: the watch of the run directory
 * ends a wait as soon as the status is written, so this is only the fallback for a lost event.
 */
const EXIT_POLL_MS = 1000;

/** How long a start waits for its new terminal's shell pid, to lower its priority. */
const PID_WAIT_MS = 2000;

/**
 * Agents in integrated terminals: one terminal per agent, named for its agent, role and task, the
 * command typed into it (so a person sees it work and can take over). The shell is bash without
 * profiles, so the exit-status line works whatever the user's own shell is. Terminals outlive a
 * window reload; the runner finds an agent's terminal again by its name and follows its exit file.
 * The terminal's shell runs below the engine's CPU priority (agentPriority.ts), so the command typed
 * into it does too.
 */
export class TerminalRunner implements AgentRunner {
  readonly kind = 'terminal';
  private terminals = new Map<string, vscode.Terminal>();
  private closed = new Set<vscode.Terminal>();
  private readonly sub: vscode.Disposable;
  /** Wakes the waits for exit files when one is written; they read the file once a second otherwise. */
  private readonly waker: ExitFileWaker;
  /** The exit file each open terminal's command writes, to end its wait when the terminal closes. */
  private readonly exitFiles = new Map<vscode.Terminal, string>();

  private readonly priority: AgentPriority;

  /** `niceness` is the configuration's `agentNiceness`. */
  constructor(
    private readonly runDir: string,
    o: { niceness?: number } = {},
  ) {
    this.priority = new AgentPriority(o.niceness);
    this.waker = new ExitFileWaker(runDir);
    this.sub = vscode.window.onDidCloseTerminal((t) => {
      this.closed.add(t);
      const file = this.exitFiles.get(t);
      if (file) this.waker.wake(file);
    });
  }

  static terminalName(agentId: string, role: string, taskId: string): string {
    return `Agent ${agentId} (${role}) · ${taskId}`;
  }

  /** The agent's terminal, if it has one open (for "Open Agent Terminal"). */
  terminalOf(agentId: string): vscode.Terminal | undefined {
    const t =
      this.terminals.get(agentId) ?? vscode.window.terminals.find((x) => x.name.startsWith(`Agent ${agentId} (`));
    return t && !this.closed.has(t) ? t : undefined;
  }

  async start(req: RunRequest): Promise<RunHandle> {
    await mkdir(this.runDir, { recursive: true });
    this.waker.start();
    const exitFile = exitFileOf(this.runDir, req);
    await rm(exitFile, { force: true });
    // A new task gets a fresh terminal with the task in its name; the agent's previous one goes.
    this.terminalOf(req.agentId)?.dispose();
    const terminal = vscode.window.createTerminal({
      name: TerminalRunner.terminalName(req.agentId, req.role, req.taskId),
      cwd: req.worktree,
      shellPath: '/bin/bash',
      shellArgs: ['--noprofile', '--norc'],
      env: req.command.env,
      iconPath: new vscode.ThemeIcon('robot'),
    });
    this.terminals.set(req.agentId, terminal);
    await this.lowerPriority(terminal, req);
    terminal.sendText(shellLine(req, exitFile), true);
    return this.follow(req, terminal, exitFile);
  }

  /**
   * Gives the terminal's shell the agents' priority before the command is typed, so the command
   * inherits it. The shell's pid comes once the terminal's process has started, which the typed
   * line waits for anyway; a terminal whose pid does not come within PID_WAIT_MS (a pseudoterminal,
   * a remote shell) keeps its priority, and the agent's log says so.
   */
  private async lowerPriority(terminal: vscode.Terminal, req: RunRequest): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const pid = await Promise.race([
      Promise.resolve(terminal.processId).catch(() => undefined),
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), PID_WAIT_MS))),
    ]).finally(() => clearTimeout(timer));
    if (pid !== undefined) await this.priority.apply(pid, req.agentId, req.logFile);
    else
      await this.priority.note(
        req.agentId,
        req.logFile,
        `runs at the priority its terminal's shell had: the shell's process id did not come within ${PID_WAIT_MS} ms`,
      );
  }

  /** Follows a command by its exit file; without a terminal, the file must already be written. */
  private follow(req: RunRequest, terminal: vscode.Terminal | undefined, exitFile: string): RunHandle {
    let stopping = false;
    this.waker.expect(exitFile);
    if (terminal) this.exitFiles.set(terminal, exitFile);
    const exited = waitForExitFile(exitFile, req, {
      stopping: () => stopping || !terminal || this.closed.has(terminal),
      gone: () => Promise.resolve(!terminal || this.closed.has(terminal) || terminal.exitStatus !== undefined),
      pollMs: EXIT_POLL_MS,
      sleep: (ms) => this.waker.sleep(exitFile, ms),
    }).finally(() => {
      this.waker.forget(exitFile);
      if (terminal && this.exitFiles.get(terminal) === exitFile) this.exitFiles.delete(terminal);
    });
    return {
      agentId: req.agentId,
      attempt: req.attempt,
      pid: undefined,
      exited,
      stop: async () => {
        stopping = true;
        // The wait looks again now, rather than at its next poll, whether the shell is gone.
        this.waker.wake(exitFile);
        if (!terminal) return;
        await interruptThenKill(
          exited,
          () => {
            terminal.sendText('\x03', false);
            // A CLI's own interface (Claude Code's) takes a second Ctrl-C soon after the first as the
            // word to exit: it ends its session itself and the terminal keeps what it showed.
            if (req.command.interactive) setTimeout(() => terminal.sendText('\x03', false), 300);
          },
          () => terminal.dispose(),
        );
      },
    };
  }

  async reattach(req: RunRequest): Promise<RunHandle | null> {
    const name = TerminalRunner.terminalName(req.agentId, req.role, req.taskId);
    const terminal = vscode.window.terminals.find((t) => t.name === name && t.exitStatus === undefined);
    const exitFile = exitFileOf(this.runDir, req);
    if (!terminal) {
      // The terminal is gone, but the command may have finished and left its status.
      return (await exitFileWritten(exitFile)) ? this.follow(req, undefined, exitFile) : null;
    }
    await mkdir(this.runDir, { recursive: true });
    this.waker.start();
    this.terminals.set(req.agentId, terminal);
    return this.follow(req, terminal, exitFile);
  }

  dispose(): Promise<void> {
    this.sub.dispose();
    this.waker.dispose();
    return Promise.resolve();
  }
}
