import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readySpawnServer } from '../git/gitSpawner';
import type { SpawnServer } from '../git/gitSpawnServer';
import type { AgentRunner, RunExit, RunHandle, RunRequest } from '../ports/agentRunner';
import { AgentPriority } from './agentPriority';

/**
 * Runs each stage of each task as a child process in the agent's worktree, its output appended to a
 * log file. The child gets its own process group, so stopping it stops what it started, and it
 * survives a crash of the monitor: a restarted monitor finds it through its pid file and follows it
 * until it exits (its marker, not its exit code, says whether it finished). It runs below the
 * engine's CPU priority (agentPriority.ts), and so does everything it starts.
 *
 * While the git spawn server runs (gitSpawnServer.ts), the command is started there rather than
 * from the engine: forking the engine blocked its event loop for 5–17 ms per agent (more the larger
 * the engine), on the hand-off's path. The command is then the server's child, in its own group all
 * the same; the server's exit kills nothing, and an exit the server can no longer report is found
 * by polling the pid.
 */

type Launch = ReturnType<AgentPriority['launch']>;

interface Started {
  pid: number | undefined;
  exited: Promise<RunExit>;
  /** The process's start time from /proc, when already read. */
  startTicks?: string | null;
}

function startErrorOf(cmd: string, code: string | undefined, message: string): string {
  return code === 'ENOENT' ? `command not found: ${cmd}` : `cannot start ${cmd}: ${message}`;
}

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

/**
 * Whether the process that had `startTicks` still runs: not gone, not another process with its pid,
 * and not a zombie nobody has reaped yet (a command whose parent, the spawn server, died before it).
 */
async function stillRuns(pid: number, startTicks: string | null): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // No /proc (not Linux), or the process is gone.
    return startTicks === null && alive(pid);
  }
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[0] !== 'Z' && rest[0] !== 'X' && rest[19] === startTicks;
}

/** A command whose exit nobody can report any more, followed until it is gone. */
async function followUntilGone(pid: number, startTicks: string | null): Promise<RunExit> {
  while (await stillRuns(pid, startTicks)) await new Promise((r) => setTimeout(r, 50));
  return { code: null, signal: null };
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
  private readonly spawnServer: () => SpawnServer | undefined;

  /**
   * `runDir` holds one pid file per agent (`.pipeline/run`); `niceness` is the configuration's
   * `agentNiceness`; `spawnServer` gives the server to start commands on, when one is ready (by
   * default the git layer's, gitSpawner.ts), else they start from this process.
   */
  constructor(
    private readonly runDir: string,
    o: { niceness?: number; spawnServer?: () => SpawnServer | undefined } = {},
  ) {
    this.priority = new AgentPriority(o.niceness);
    this.spawnServer = o.spawnServer ?? readySpawnServer;
  }

  private pidFile(agentId: string): string {
    return join(this.runDir, `${agentId}.pid.json`);
  }

  async start(req: RunRequest): Promise<RunHandle> {
    await mkdir(dirname(req.logFile), { recursive: true });
    await mkdir(this.runDir, { recursive: true });
    const [cmd = '', ...args] = req.command.argv;
    const env = { ...process.env, ...req.command.env };
    // Through `nice` when the command is found, so it never runs at the engine's priority; else as
    // it is, for Node's own start error ("command not found"), and lowered just after it started.
    const launch = this.priority.launch(cmd, args, env, req.worktree);
    const server = this.spawnServer();
    const started = server
      ? await this.startOnServer(server, cmd, launch, env, req)
      : await this.startHere(cmd, launch, env, req);
    const { pid, exited } = started;
    if (pid !== undefined) {
      const startTicks = started.startTicks !== undefined ? started.startTicks : await procStartTicks(pid);
      const rec: PidRecord = { pid, taskId: req.taskId, attempt: req.attempt, startTicks };
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
        // Our own child (or the spawn server's): its exit event says at once that it is gone, where
        // polling would notice up to 50 ms later (and its agent would stand idle, with the next stage
        // waiting, meanwhile).
        const gone = await Promise.race([exited.then(() => true), waitGone(pid, 3000)]);
        if (!gone) killGroup(pid, 'SIGKILL');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 1000).unref())]);
      },
    };
    this.live.set(req.agentId, handle);
    return handle;
  }

  /** Starts the command as the engine's own child, its output on the log file opened here. */
  private async startHere(cmd: string, launch: Launch, env: NodeJS.ProcessEnv, req: RunRequest): Promise<Started> {
    const log = await open(req.logFile, 'a');
    let exitResolve!: (e: RunExit) => void;
    const exited = new Promise<RunExit>((r) => (exitResolve = r));
    const child = spawn(launch.command, launch.args, {
      cwd: req.worktree,
      env,
      stdio: ['ignore', log.fd, log.fd],
      detached: true,
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      exitResolve({ code: null, signal: null, startError: startErrorOf(cmd, e.code, e.message) });
    });
    child.once('exit', (code, signal) => exitResolve({ code, signal }));
    const pid = child.pid;
    const niced = this.lower(launch, pid, req);
    await log.close();
    await niced;
    return { pid, exited };
  }

  /**
   * Starts the command on the spawn server (gitSpawnServer.ts), whose fork does not copy the
   * engine's memory and does not block its event loop: the same launch, group, log file and start
   * errors, the process the server's child rather than the engine's.
   */
  private async startOnServer(
    server: SpawnServer,
    cmd: string,
    launch: Launch,
    env: NodeJS.ProcessEnv,
    req: RunRequest,
  ): Promise<Started> {
    const r = await server.startDetached({
      command: launch.command,
      args: launch.args,
      cwd: req.worktree,
      env,
      logFile: req.logFile,
    });
    // What would have thrown here (the log file cannot be opened) throws, with the system's message.
    if (r.kind === 'failed') throw Object.assign(new Error(r.message), r.code === undefined ? {} : { code: r.code });
    if (r.kind === 'error') {
      return {
        pid: undefined,
        exited: Promise.resolve({ code: null, signal: null, startError: startErrorOf(cmd, r.code, r.message) }),
      };
    }
    const pid = r.pid;
    await this.lower(launch, pid, req);
    const startTicks = await procStartTicks(pid);
    // The server gone before it said how the command ended: it is followed by its pid, as after a
    // restart (its exit code cannot be known).
    const exited = r.exited.then((e): RunExit | Promise<RunExit> => e ?? followUntilGone(pid, startTicks));
    return { pid, exited, startTicks };
  }

  /**
   * Where there is no `nice` (Windows): lowered as soon as the pid is known, the program just loaded.
   * What it started before this, if anything, runs at the engine's priority, as agents used to.
   */
  private lower(launch: Launch, pid: number | undefined, req: RunRequest): Promise<void> | undefined {
    if (pid === undefined) return undefined;
    if (launch.lowerAfterSpawn) return this.priority.apply(pid, req.agentId, req.logFile);
    // Started through `nice`, and detached: a session, and so a scheduling group, of its own. Its
    // group is lowered in the background: without privilege the kernel takes one such change every
    // 100 ms machine-wide, and agents that start together would each wait their turn to start,
    // when they already run niced meanwhile.
    void this.priority
      .group(pid)
      .then((failed) => (failed === undefined ? undefined : this.priority.note(req.agentId, req.logFile, failed)))
      .catch(() => undefined);
    return undefined;
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
      while (await stillRuns(pid, rec.startTicks)) await new Promise((r) => setTimeout(r, 250));
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
