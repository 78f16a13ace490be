import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BLOCKED_PREFIX, CHANGES_PREFIX, COMPLETED_LINE } from '../../../src/engine/agents/completionMarker';
import type { AgentRunner, RunExit, RunHandle, RunRequest } from '../../../src/engine/ports/agentRunner';

/**
 * The AgentRunner's in-memory twin: agents are async functions, no process is started.
 *
 * What it models:
 * - the program: the first word of the agent's command names a scripted agent registered in
 *   `agents` (`implementer-script {taskFile}` runs `agents['implementer-script']`). An unknown
 *   program is a start error ("command not found: …"), as ProcessRunner reports a missing binary:
 *   `start` still returns a handle, and its `exited` carries the `startError`.
 * - a run: the function gets the RunRequest and an AgentIo to write files into the worktree (the
 *   directory of the request, on disk), append lines and completion markers to its task file, and
 *   write output to the log file, which gets a header line per run as ProcessRunner writes. Its
 *   return value is the exit code (default 0); `io.exit(code)` ends it at once; a thrown error is
 *   written to the log and exits 1.
 * - stop: `signal` is aborted and `io.sleep`/`io.hold` reject; once the function settles, or after
 *   `graceMs` if it ignores the signal, the run counts as killed (`signal: 'SIGTERM'`, or
 *   `'SIGKILL'` after the grace) and every later io call of that run throws: a killed process
 *   writes nothing more. Stopping a run that has ended does nothing.
 * - reattach: runs belong to a `host` (the machine) that outlives a runner, as processes outlive a
 *   monitor: `restarted()` gives a new runner on the same host, whose `reattach` finds a run of the
 *   same agent, task and attempt that still runs (as ProcessRunner finds a live pid). Like
 *   ProcessRunner's, a re-attached run's exit code is unknown (`code: null`); a run that ended, or
 *   a fresh host (a reboot), gives null. `dispose` leaves runs running, for a restarted runner.
 *   `crash()` models the monitor's process dying: the handles this runner gave out never report
 *   an exit again (nobody is left to hear it), while the runs go on.
 *
 * What it does not model: process groups, signals other than the stop, the environment (the
 * function reads `req.command.env`), a command line's arguments (only the first word is looked
 * at), output interleaving, and the time a real process takes to start.
 */

export interface AgentIo {
  /** Aborted when the run is stopped. */
  readonly signal: AbortSignal;
  /** Writes a file into the worktree (`path` relative to it), as an agent editing files does. */
  write(path: string, content: string): Promise<void>;
  /** A file of the worktree, or undefined. */
  read(path: string): Promise<string | undefined>;
  /** The task file's text. */
  taskFile(): Promise<string>;
  /** Appends a line to the task file. */
  append(line: string): Promise<void>;
  /** Appends the COMPLETED marker. */
  complete(): Promise<void>;
  /** Appends the BLOCKED marker with its reason. */
  block(reason: string): Promise<void>;
  /** Appends the CHANGES REQUESTED marker (the reviewing stage). */
  requestChanges(what: string): Promise<void>;
  /** Writes a line of output to the log file. */
  log(line: string): Promise<void>;
  /** Ends the run now with `code`. */
  exit(code: number): never;
  /** Waits `ms`; rejects when the run is stopped. */
  sleep(ms: number): Promise<void>;
  /** Runs until stopped (an agent that never finishes on its own); rejects when stopped. */
  hold(): Promise<never>;
}

export type ScriptedAgent = (req: RunRequest, io: AgentIo) => Promise<number | void> | number | void;

/** What the twin remembers of a run, for tests. */
export interface MemoryRun {
  readonly req: RunRequest;
  status: 'running' | 'exited' | 'killed';
  /** stop() was called while it ran. */
  stopped: boolean;
  exit: RunExit | undefined;
  readonly exited: Promise<RunExit>;
}

/** The machine the runs live on: shared by a runner and the ones `restarted()` makes. */
export class MemoryHost {
  readonly runs: MemoryRun[] = [];
  /** How to stop (abort the function) and kill (end the run now) each live run. */
  readonly controls = new Map<MemoryRun, { abort: AbortController; kill: () => void }>();

  /** Ends every run at once, as a reboot would. */
  killAll(): void {
    for (const r of this.runs) this.controls.get(r)?.kill();
  }

  /** Ends one run as if its process vanished. */
  vanish(run: MemoryRun): void {
    this.controls.get(run)?.kill();
  }
}

class ExitRequest extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

class Killed extends Error {
  constructor() {
    super('the run was stopped');
  }
}

export interface MemoryRunnerOptions {
  agents?: Record<string, ScriptedAgent>;
  host?: MemoryHost;
  /** How long a stopped run may take to settle before it is killed outright (default 200 ms). */
  graceMs?: number;
}

export class MemoryRunner implements AgentRunner {
  readonly kind = 'memory';
  readonly host: MemoryHost;
  readonly agents: Record<string, ScriptedAgent>;
  private readonly graceMs: number;
  private crashed = false;

  constructor(o: MemoryRunnerOptions = {}) {
    this.host = o.host ?? new MemoryHost();
    this.agents = o.agents ?? {};
    this.graceMs = o.graceMs ?? 200;
  }

  /** The runner a restarted monitor would make: same host and agents, so live runs can be re-attached. */
  restarted(): MemoryRunner {
    return new MemoryRunner({ agents: this.agents, host: this.host, graceMs: this.graceMs });
  }

  /** The process that held this runner died: its handles' `exited` never settle from now on. */
  crash(): void {
    this.crashed = true;
  }

  /** Every run started on this host, oldest first. */
  get runs(): readonly MemoryRun[] {
    return this.host.runs;
  }

  /** The runs of one agent (and task), oldest first. */
  runsOf(agentId: string, taskId?: string): MemoryRun[] {
    return this.host.runs.filter((r) => r.req.agentId === agentId && (taskId === undefined || r.req.taskId === taskId));
  }

  async start(req: RunRequest): Promise<RunHandle> {
    await mkdir(dirname(req.logFile), { recursive: true });
    await appendFile(
      req.logFile,
      `\n--- ${new Date().toISOString()} ${req.agentId} ${req.taskId} attempt ${req.attempt}: ${req.command.display}\n`,
    );
    const program = basename(req.command.argv[0] ?? '');
    const agent = this.agents[program];
    let settle!: (e: RunExit) => void;
    const exited = new Promise<RunExit>((r) => (settle = r));
    const run: MemoryRun = { req, status: 'running', stopped: false, exit: undefined, exited };
    this.host.runs.push(run);
    const end = (e: RunExit, status: MemoryRun['status']): void => {
      if (run.status !== 'running') return;
      run.status = status;
      run.exit = e;
      this.host.controls.delete(run);
      settle(e);
    };
    const abort = new AbortController();
    this.host.controls.set(run, {
      abort,
      kill: () => {
        abort.abort();
        end({ code: null, signal: 'SIGKILL' }, 'killed');
      },
    });
    if (!agent) {
      end({ code: null, signal: null, startError: `command not found: ${program}` }, 'exited');
      return this.handle(run, run.exited);
    }
    const io = makeIo(req, run, abort.signal);
    // Started on a later turn, as a process is: the caller has its handle before anything happens.
    setImmediate(() => {
      void (async () => {
        let code = 0;
        try {
          code = (await agent(req, io)) ?? 0;
        } catch (e) {
          if (e instanceof ExitRequest) code = e.code;
          else {
            code = 1;
            if (!(e instanceof Killed) && !run.stopped)
              await appendFile(req.logFile, `${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`).catch(
                () => undefined,
              );
          }
        }
        if (run.stopped) end({ code: null, signal: 'SIGTERM' }, 'killed');
        else end({ code, signal: null }, 'exited');
      })();
    });
    return this.handle(run, run.exited);
  }

  private handle(run: MemoryRun, exited: Promise<RunExit>): RunHandle {
    return {
      agentId: run.req.agentId,
      attempt: run.req.attempt,
      pid: undefined,
      exited: exited.then((e) => (this.crashed ? new Promise<RunExit>(() => undefined) : e)),
      stop: async () => {
        const control = this.host.controls.get(run);
        if (!control) return;
        run.stopped = true;
        control.abort.abort();
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((r) => {
          timer = setTimeout(r, this.graceMs);
          timer.unref();
        });
        await Promise.race([run.exited, grace]);
        clearTimeout(timer);
        control.kill();
      },
    };
  }

  reattach(req: RunRequest): Promise<RunHandle | null> {
    const run = this.host.runs.find(
      (r) =>
        r.status === 'running' &&
        r.req.agentId === req.agentId &&
        r.req.taskId === req.taskId &&
        r.req.attempt === req.attempt,
    );
    // Not this runner's child any more: how it ends is seen, its exit code is not.
    return Promise.resolve(
      run
        ? this.handle(
            run,
            run.exited.then(() => ({ code: null, signal: null })),
          )
        : null,
    );
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}

function makeIo(req: RunRequest, run: MemoryRun, signal: AbortSignal): AgentIo {
  const alive = (): void => {
    if (run.status !== 'running' || signal.aborted) throw new Killed();
  };
  const append = async (line: string): Promise<void> => {
    alive();
    const text = await readFile(req.taskFile, 'utf8').catch(() => '');
    await appendFile(req.taskFile, `${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`);
  };
  const io: AgentIo = {
    signal,
    async write(path, content) {
      alive();
      const file = join(req.worktree, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, content);
    },
    async read(path) {
      alive();
      return readFile(join(req.worktree, path), 'utf8').catch(() => undefined);
    },
    async taskFile() {
      alive();
      return readFile(req.taskFile, 'utf8');
    },
    append,
    complete: () => append(COMPLETED_LINE),
    block: (reason) => append(`${BLOCKED_PREFIX} ${reason}`),
    requestChanges: (what) => append(`${CHANGES_PREFIX} ${what}`),
    async log(line) {
      alive();
      await appendFile(req.logFile, `${line}\n`);
    },
    exit(code) {
      throw new ExitRequest(code);
    },
    sleep(ms) {
      return new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(new Killed());
        const t = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          reject(new Killed());
        });
      });
    },
    hold() {
      return new Promise<never>((_, reject) => {
        if (signal.aborted) return reject(new Killed());
        signal.addEventListener('abort', () => reject(new Killed()));
      });
    },
  };
  return io;
}
