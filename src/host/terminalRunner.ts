import { mkdir, rm } from 'node:fs/promises';
import * as vscode from 'vscode';
import type { AgentRunner, RunHandle, RunRequest } from '../engine/ports/agentRunner';
import { exitFileOf, exitFileWritten, interruptThenKill, shellLine, waitForExitFile } from '../engine/agents/exitFile';

/**
 * Agents in integrated terminals: one terminal per agent, named for its agent, role and task, the
 * command typed into it (so a person sees it work and can take over). The shell is bash without
 * profiles, so the exit-status line works whatever the user's own shell is. Terminals outlive a
 * window reload; the runner finds an agent's terminal again by its name and follows its exit file.
 */
export class TerminalRunner implements AgentRunner {
  readonly kind = 'terminal';
  private terminals = new Map<string, vscode.Terminal>();
  private closed = new Set<vscode.Terminal>();
  private readonly sub: vscode.Disposable;

  constructor(private readonly runDir: string) {
    this.sub = vscode.window.onDidCloseTerminal((t) => this.closed.add(t));
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
    terminal.sendText(shellLine(req, exitFile), true);
    return this.follow(req, terminal, exitFile);
  }

  /** Follows a command by its exit file; without a terminal, the file must already be written. */
  private follow(req: RunRequest, terminal: vscode.Terminal | undefined, exitFile: string): RunHandle {
    let stopping = false;
    const exited = waitForExitFile(exitFile, req, {
      stopping: () => stopping || !terminal || this.closed.has(terminal),
      gone: () => Promise.resolve(!terminal || this.closed.has(terminal) || terminal.exitStatus !== undefined),
      pollMs: 100,
    });
    return {
      agentId: req.agentId,
      attempt: req.attempt,
      pid: undefined,
      exited,
      stop: async () => {
        stopping = true;
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
    this.terminals.set(req.agentId, terminal);
    return this.follow(req, terminal, exitFile);
  }

  dispose(): Promise<void> {
    this.sub.dispose();
    return Promise.resolve();
  }
}
