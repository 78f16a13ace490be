import { spawn, type ChildProcess } from 'node:child_process';
import {
  RUN_ONE_SOURCE,
  SESSION_SOURCE,
  START_DETACHED_SOURCE,
  type DetachedExit,
  type DetachedRequest,
  type DetachedStart,
  type SessionEnd,
  type SessionRequest,
  type SpawnRequest,
  type SpawnResult,
} from './gitSpawnRun';

/**
 * A small Node process that starts git commands for the engine: the spawn server.
 *
 * Linux starts a process by forking the one that asks, and a fork copies the asker's page tables,
 * so its cost follows the asker's resident memory. Measured on the 2-core machine (100 × `git
 * --version`): from a 50 MB process a start took 4.5 ms of wall time and 1.7 ms of its CPU; from
 * 260 MB (the engine under a 16-agent run) 12.7 ms and 5.8 ms; from 680 MB (an editor's extension
 * host) 37 ms and 17.5 ms. A hand-off runs a dozen git commands, several one after another, so the
 * engine's size was paid on every one of them. This server stays small (it holds nothing but the
 * commands in flight), so git starts at the small cost whatever the engine's size
 * (bench/gitStart.bench.ts compares the two ways from a 400 MB engine).
 *
 * Agents' commands start here too (processRunner.ts), for the same reason: a request of kind
 * 'detached' starts a process in its own group with its output appended to a log file, answers with
 * its pid, and reports its exit later as an event. A 'session' is a git command the engine talks to
 * while it runs (`update-ref --stdin`, refTransaction.ts): lines written to its stdin, its stdout
 * sent back as it comes.
 *
 * It speaks over Node's IPC channel: a request as the worker threads take it (gitSpawner.ts), a reply
 * `{ id, ...SpawnResult }`, and `{ ready: true }` once it listens. It exits when the channel closes
 * (the engine exited or was killed), leaving commands already started to finish on their own, as
 * they would have done before; detached processes are in groups of their own, so nothing kills them
 * with it. Idle, it keeps the engine's process alive no more than the worker threads did: the client
 * unrefs the child and its channel while no command is in flight and no detached process runs.
 */

const SERVER_SOURCE = `${RUN_ONE_SOURCE}${START_DETACHED_SOURCE}${SESSION_SOURCE}
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  const reply = (r) => process.send(r);
  if (m.kind === undefined) runOne(m, reply);
  else if (m.kind === 'detached') startDetached(m, reply);
  else session(m, reply);
});
process.send({ ready: true });
`;

interface Waiting {
  readonly resolve: (r: SpawnResult) => void;
}

/**
 * A detached process started on the server: `exited` settles with its exit, or with undefined when
 * the server is gone before it said (the process may still run: the caller follows its pid).
 */
export type DetachedStarted =
  | (Extract<DetachedStart, { kind: 'started' }> & { readonly exited: Promise<DetachedExit | undefined> })
  | Exclude<DetachedStart, { kind: 'started' }>;

/** A git command the engine talks to while it runs, on the server. */
export interface ServerSession {
  /** Written to git's stdin as it is. */
  write(data: string): void;
  /** Closes git's stdin. */
  end(): void;
  kill(): void;
  /** Settles once git has exited and its output is in; -1 when it could not start or the server went. */
  readonly closed: Promise<SessionEnd>;
}

interface OpenSession {
  readonly stdout: (data: string) => void;
  readonly settle: (end: SessionEnd) => void;
}

type ServerMessage =
  | ({ id: number } & SpawnResult)
  | { id: number; kind: 'out'; data: string }
  | ({ id: number; kind: 'closed' } & SessionEnd)
  | ({ id: number } & DetachedStart)
  | ({ id: number; kind: 'exited' } & DetachedExit)
  | { ready: true };

export class SpawnServer {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Waiting>();
  /** Detached requests not answered yet. */
  private readonly starting = new Map<number, (r: DetachedStarted) => void>();
  /** Detached processes running, by request id: what settles their `exited`. */
  private readonly running = new Map<number, (e: DetachedExit | undefined) => void>();
  private readonly sessions = new Map<number, OpenSession>();
  private nextId = 1;
  private readonly envIds = new WeakMap<Readonly<Record<string, string>>, number>();
  private readonly sentEnvs = new Set<number>();
  private nextEnvId = 1;
  private failure: string | undefined;
  /** Settles true once the server listens, false if it failed before that. */
  readonly ready: Promise<boolean>;

  constructor() {
    const env: Record<string, string | undefined> = { ...process.env, ELECTRON_RUN_AS_NODE: '1' };
    // The server needs no loader or profiler the engine was started with (tsx in tests, --cpu-prof).
    delete env.NODE_OPTIONS;
    // Under an editor, process.execPath is its Electron binary, which runs as Node with
    // ELECTRON_RUN_AS_NODE; for Node itself the variable means nothing.
    this.child = spawn(process.execPath, ['--max-old-space-size=64', '-e', SERVER_SOURCE], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      env,
      windowsHide: true,
    });
    let settleReady!: (ok: boolean) => void;
    this.ready = new Promise<boolean>((r) => (settleReady = r));
    this.child.on('message', (m: ServerMessage) => {
      if ('ready' in m) {
        settleReady(true);
        if (this.inFlight() === 0) this.idle();
        return;
      }
      if (m.kind === 'out') {
        this.sessions.get(m.id)?.stdout(m.data);
        return;
      }
      if (m.kind === 'closed') {
        const open = this.sessions.get(m.id);
        this.sessions.delete(m.id);
        if (this.inFlight() === 0) this.idle();
        open?.settle({ code: m.code, stderr: m.stderr });
        return;
      }
      if (m.kind === 'exited') {
        const settle = this.running.get(m.id);
        this.running.delete(m.id);
        if (this.inFlight() === 0) this.idle();
        settle?.({ code: m.code, signal: m.signal });
        return;
      }
      const started = this.starting.get(m.id);
      if (started) {
        this.starting.delete(m.id);
        const { id, ...r } = m as { id: number } & DetachedStart;
        if (r.kind === 'started') {
          const exited = new Promise<DetachedExit | undefined>((settle) => this.running.set(id, settle));
          started({ ...r, exited });
        } else {
          if (this.inFlight() === 0) this.idle();
          started(r);
        }
        return;
      }
      const w = this.pending.get(m.id);
      if (!w) return;
      this.pending.delete(m.id);
      if (this.inFlight() === 0) this.idle();
      const { id: _id, ...result } = m as { id: number } & SpawnResult;
      w.resolve(result);
    });
    const fail = (message: string): void => {
      this.failure ??= message;
      settleReady(false);
      for (const [id, w] of this.pending) {
        this.pending.delete(id);
        w.resolve({ kind: 'error', message: this.failure, code: undefined });
      }
      // Whether a request in flight started its process is unknown: it fails as the server's.
      for (const [id, started] of this.starting) {
        this.starting.delete(id);
        started({ kind: 'failed', message: this.failure, code: undefined });
      }
      for (const [id, settle] of this.running) {
        this.running.delete(id);
        settle(undefined);
      }
      // Its git saw its stdin close with the server, and gave up (a transaction aborts).
      for (const [id, open] of this.sessions) {
        this.sessions.delete(id);
        open.settle({ code: -1, stderr: `\n${this.failure}` });
      }
    };
    this.child.on('error', (e) => fail(`the git spawn server could not start: ${e.message}`));
    this.child.on('exit', (code, signal) => fail(`the git spawn server exited (${signal ?? code})`));
  }

  /** Whether it can take requests: it has not exited or failed. */
  get alive(): boolean {
    return this.failure === undefined;
  }

  /** The server's pid: git commands it starts are its children. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  run(req: SpawnRequest): Promise<SpawnResult> {
    if (this.failure !== undefined) return Promise.resolve({ kind: 'error', message: this.failure, code: undefined });
    const id = this.nextId++;
    return new Promise<SpawnResult>((resolve) => {
      if (this.inFlight() === 0) this.busy();
      this.pending.set(id, { resolve });
      let envId = this.envIds.get(req.env);
      if (envId === undefined) this.envIds.set(req.env, (envId = this.nextEnvId++));
      const env = this.sentEnvs.has(envId) ? undefined : req.env;
      this.sentEnvs.add(envId);
      this.child.send({ id, args: [...req.args], cwd: req.cwd, envId, env, timeoutMs: req.timeoutMs }, (e) => {
        if (!e || !this.pending.delete(id)) return;
        if (this.inFlight() === 0) this.idle();
        resolve({ kind: 'error', message: `the git spawn server took no request: ${e.message}`, code: undefined });
      });
    });
  }

  /**
   * Starts a process that outlives the request (an agent's command): its pid once started, and its
   * exit when it comes. The server's exit kills nothing it started this way.
   */
  startDetached(req: DetachedRequest): Promise<DetachedStarted> {
    if (this.failure !== undefined) return Promise.resolve({ kind: 'failed', message: this.failure, code: undefined });
    const id = this.nextId++;
    return new Promise<DetachedStarted>((resolve) => {
      if (this.inFlight() === 0) this.busy();
      this.starting.set(id, resolve);
      const { command, args, cwd, env, logFile } = req;
      this.child.send({ id, kind: 'detached', command, args: [...args], cwd, env, logFile }, (e) => {
        if (!e || !this.starting.delete(id)) return;
        if (this.inFlight() === 0) this.idle();
        resolve({ kind: 'failed', message: `the spawn server took no request: ${e.message}`, code: undefined });
      });
    });
  }

  /**
   * Starts git with its stdin, stdout and stderr on pipes the server holds: what is written goes to
   * its stdin, its stdout comes to `stdout` as it arrives.
   */
  session(req: SessionRequest, stdout: (data: string) => void): ServerSession {
    const id = this.nextId++;
    let settle!: (end: SessionEnd) => void;
    const closed = new Promise<SessionEnd>((r) => (settle = r));
    const send = (m: object): void => {
      if (!this.sessions.has(id)) return;
      this.child.send({ id, ...m }, (e) => {
        const open = this.sessions.get(id);
        if (!e || !open) return;
        this.sessions.delete(id);
        if (this.inFlight() === 0) this.idle();
        open.settle({ code: -1, stderr: `\nthe git spawn server took no request: ${e.message}` });
      });
    };
    if (this.failure !== undefined) settle({ code: -1, stderr: `\n${this.failure}` });
    else {
      if (this.inFlight() === 0) this.busy();
      this.sessions.set(id, { stdout, settle });
      send({ kind: 'session', args: [...req.args], cwd: req.cwd, env: req.env });
    }
    return {
      write: (data) => send({ kind: 'write', data }),
      end: () => send({ kind: 'end' }),
      kill: () => send({ kind: 'kill' }),
      closed,
    };
  }

  /** Stops the server; commands in flight finish on their own. For tests. */
  stop(): void {
    this.child.disconnect();
  }

  /** Requests unanswered and detached processes running: while there are any, the server is kept. */
  private inFlight(): number {
    return this.pending.size + this.starting.size + this.running.size + this.sessions.size;
  }

  private busy(): void {
    this.child.ref();
    this.child.channel?.ref();
  }

  private idle(): void {
    this.child.unref();
    this.child.channel?.unref();
  }
}
