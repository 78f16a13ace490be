import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AgentRunner, RunExit, RunHandle, RunRequest } from '../ports/agentRunner';
import { AgentPriority } from './agentPriority';

/**
 * Runs each stage of each task as a child process in the agent's worktree, its output appended to a
 * log file. The child gets its own process group, so stopping it stops what it started, and it
 * survives a crash of the monitor: a restarted monitor finds it through its pid file and follows it
 * until it exits (its marker, not its exit code, says whether it finished). It runs below the
 * engine's CPU priority (agentPriority.ts), and so does everything it starts.
 */
interface PidRecord {
  pid: number;
  taskId: string;
  attempt: number;
  /** The process's start time from /proc, so a reused pid is not mistaken for it. */
  startTicks: string | null;
}

async function procStartTicks(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime) counted after the command name, which may contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

export class ProcessRunner implements AgentRunner {
  readonly kind = 'process';
  private live = new Map<string, RunHandle>();

  private readonly priority: AgentPriority;

  /**
   * `runDir` holds one pid file per agent (`.pipeline/run`); `niceness` is the configuration's
   * `agentNiceness`.
   */
  constructor(
    private readonly runDir: string,
    o: { niceness?: number } = {},
  ) {
    this.priority = new AgentPriority(o.niceness);
  }

  private pidFile(agentId: string): string {
    return join(this.runDir, `${agentId}.pid.json`);
  }

  async start(req: RunRequest): Promise<RunHandle> {
    await mkdir(dirname(req.logFile), { recursive: true });
    await mkdir(this.runDir, { recursive: true });
    const log = await open(req.logFile, 'a');
    const [cmd, ...args] = req.command.argv;
    let exitResolve!: (e: RunExit) => void;
    const exited = new Promise<RunExit>((r) => (exitResolve = r));
    const env = { ...process.env, ...req.command.env };
    // Through `nice` when the command is found, so it never runs at the engine's priority; else as
    // it is, for Node's own start error ("command not found"), and lowered just below if it started.
    const launch = this.priority.launch(cmd ?? '', args, env, req.worktree);
    const child = spawn(launch.command, launch.args, {
      cwd: req.worktree,
      env,
      stdio: ['ignore', log.fd, log.fd],
      detached: true,
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      exitResolve({
        code: null,
        signal: null,
        startError: e.code === 'ENOENT' ? `command not found: ${cmd}` : `cannot start ${cmd}: ${e.message}`,
      });
    });
    child.once('exit', (code, signal) => exitResolve({ code, signal }));
    const pid = child.pid;
    // Where there is no `nice` (Windows): lowered in the tick spawn returned in, the program just
    // loaded. What it started before this, if anything, runs at the engine's priority, as agents used to.
    const niced =
      launch.lowerAfterSpawn && pid !== undefined ? this.priority.apply(pid, req.agentId, req.logFile) : undefined;
    await log.close();
    await niced;
    if (pid !== undefined) {
      const rec: PidRecord = { pid, taskId: req.taskId, attempt: req.attempt, startTicks: await procStartTicks(pid) };
      await writeFile(this.pidFile(req.agentId), JSON.stringify(rec));
    }
    const handle: RunHandle = {
      agentId: req.agentId,
      attempt: req.attempt,
      pid,
      exited: exited.finally(() => {
        this.live.delete(req.agentId);
        void rm(this.pidFile(req.agentId), { force: true });
      }),
      stop: async () => {
        if (pid === undefined) return;
        killGroup(pid, 'SIGTERM');
        // Our own child: its exit event says at once that it is gone, where polling would notice
        // up to 50 ms later (and its agent would stand idle, with the next stage waiting, meanwhile).
        const gone = await Promise.race([exited.then(() => true), waitGone(pid, 3000)]);
        if (!gone) killGroup(pid, 'SIGKILL');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 1000).unref())]);
      },
    };
    this.live.set(req.agentId, handle);
    return handle;
  }

  async reattach(req: RunRequest): Promise<RunHandle | null> {
    let rec: PidRecord;
    try {
      rec = JSON.parse(await readFile(this.pidFile(req.agentId), 'utf8')) as PidRecord;
    } catch {
      return null;
    }
    if (
      rec.taskId !== req.taskId ||
      rec.attempt !== req.attempt ||
      !alive(rec.pid) ||
      (await procStartTicks(rec.pid)) !== rec.startTicks
    ) {
      await rm(this.pidFile(req.agentId), { force: true });
      return null;
    }
    const pid = rec.pid;
    // Not our child any more: follow it by polling until it is gone.
    const exited = (async (): Promise<RunExit> => {
      while (alive(pid) && (await procStartTicks(pid)) === rec.startTicks) await new Promise((r) => setTimeout(r, 250));
      await rm(this.pidFile(req.agentId), { force: true });
      return { code: null, signal: null };
    })();
    const handle: RunHandle = {
      agentId: req.agentId,
      attempt: req.attempt,
      pid,
      exited,
      stop: async () => {
        killGroup(pid, 'SIGTERM');
        if (!(await waitGone(pid, 3000))) killGroup(pid, 'SIGKILL');
      },
    };
    this.live.set(req.agentId, handle);
    return handle;
  }

  async dispose(): Promise<void> {
    // Agents keep running when the monitor stops; a restarted monitor re-attaches to them.
    this.live.clear();
    return Promise.resolve();
  }
}
