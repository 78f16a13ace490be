import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { AgentRunner, RunHandle, RunRequest } from '../ports/agentRunner';
import { exitFileOf, exitFileWritten, interruptThenKill, shellLine, waitForExitFile } from './exitFile';

const run = promisify(execFile);

/**
 * The seed's way: one tmux window per agent, in one session per pipeline, each task notified by
 * typing its command into the agent's window (send-keys). A person can attach and watch or take
 * over (`tmux attach -t <session>`). The command's exit status is written to a file, since tmux
 * does not report it; the window (and a running agent in it) survives a crash of the monitor.
 */
export class TmuxRunner implements AgentRunner {
  readonly kind = 'tmux';
  readonly session: string;

  constructor(
    private readonly runDir: string,
    pipelineDir: string,
  ) {
    this.session = `pipeline-${createHash('sha1').update(pipelineDir).digest('hex').slice(0, 8)}`;
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

  private async ensureWindow(agentId: string, cwd: string): Promise<string> {
    const target = `${this.session}:${agentId}`;
    try {
      await this.tmux(['has-session', '-t', this.session]);
    } catch {
      await this.tmux(['new-session', '-d', '-s', this.session, '-n', 'pipeline', '-x', '200', '-y', '50']);
    }
    const windows = (await this.tmux(['list-windows', '-t', this.session, '-F', '#{window_name}'])).split('\n');
    if (!windows.includes(agentId))
      await this.tmux(['new-window', '-d', '-t', this.session, '-n', agentId, '-c', cwd, 'bash --noprofile --norc']);
    return target;
  }

  async start(req: RunRequest): Promise<RunHandle> {
    await mkdir(this.runDir, { recursive: true });
    const exitFile = exitFileOf(this.runDir, req);
    await rm(exitFile, { force: true });
    const target = await this.ensureWindow(req.agentId, req.worktree);
    const line = shellLine(req, exitFile);
    await this.tmux(['send-keys', '-t', target, '-l', line]);
    await this.tmux(['send-keys', '-t', target, 'Enter']);
    return this.follow(req, target, exitFile);
  }

  private follow(req: RunRequest, target: string, exitFile: string): RunHandle {
    let stopped = false;
    let killed = false;
    const exited = waitForExitFile(exitFile, req, {
      stopping: () => stopped,
      // The window's shell was replaced (what was typed into it is gone with it), or the session was
      // killed: either way no status will come.
      gone: () =>
        killed
          ? Promise.resolve(true)
          : this.tmux(['has-session', '-t', this.session]).then(
              () => false,
              () => true,
            ),
    });
    return {
      agentId: req.agentId,
      attempt: req.attempt,
      pid: undefined,
      exited,
      stop: async () => {
        stopped = true;
        await interruptThenKill(
          exited,
          () => this.tmux(['send-keys', '-t', target, 'C-c']),
          async () => {
            await this.tmux(['respawn-window', '-k', '-t', target, 'bash --noprofile --norc']);
            killed = true;
          },
        );
      },
    };
  }

  async reattach(req: RunRequest): Promise<RunHandle | null> {
    const target = `${this.session}:${req.agentId}`;
    try {
      const cmd = (await this.tmux(['display-message', '-p', '-t', target, '#{pane_current_command}'])).trim();
      const exitFile = exitFileOf(this.runDir, req);
      const finished = await exitFileWritten(exitFile);
      if (cmd === 'bash' && !finished) return null;
      return this.follow(req, target, exitFile);
    } catch {
      return null;
    }
  }

  /** Ends the pipeline's tmux session (tests, and `pipeline run` when it stops its agents). */
  async killSession(): Promise<void> {
    await this.tmux(['kill-session', '-t', this.session]).catch(() => undefined);
  }

  async dispose(): Promise<void> {
    return Promise.resolve();
  }
}
