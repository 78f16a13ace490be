import { Worker } from 'node:worker_threads';
import { RUN_ONE_SOURCE, type SpawnRequest, type SpawnResult } from './gitSpawnRun';
import { SpawnServer } from './gitSpawnServer';

/**
 * Where git processes are started: on a small process of their own (gitSpawnServer.ts), or on worker
 * threads until it runs; never on the engine's event loop.
 *
 * Starting a process blocks the thread that starts it until the child has been forked and has
 * exec'd git (libuv waits for the exec to report a failure), and on a busy machine that wait is the
 * scheduler's to decide. A scale run with 16 agents (bench/scale.bench.ts --profile) spent a third
 * of its wall time inside `ChildProcess.spawn` on the main thread, with the event loop 85 % busy:
 * every marker, decision and journal write waited behind git starting. On a worker thread the wait
 * blocks only that thread; each worker has many commands in flight at once.
 *
 * A worker runs one git command per request: stdin left open and never written (as simple-git did,
 * so a command that waits for input is caught by the timeout), stdout and stderr collected, killed
 * when it stays silent for `timeoutMs`. The workers are plain JavaScript evaluated from a string, so
 * the bundle needs no file of its own; they do not keep the process alive while nothing runs.
 */

export type { SpawnRequest, SpawnResult } from './gitSpawnRun';

const WORKER_SOURCE = `${RUN_ONE_SOURCE}
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => runOne(m, (r) => parentPort.postMessage(r)));
`;

/** Workers: two cores are what the machines we measure on have; more only adds threads. */
const WORKERS = 2;

interface Pending {
  readonly resolve: (r: SpawnResult) => void;
  readonly worker: PoolWorker;
}

interface PoolWorker {
  readonly thread: Worker;
  inFlight: number;
  /** The environments this worker has been sent, by id: each is sent once, then named. */
  readonly envs: Set<number>;
}

class SpawnPool {
  private readonly workers: PoolWorker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /**
   * Ids of the environments seen (each client keeps one object): copying a whole environment into
   * the worker with every command cost the main thread more than starting the command did.
   */
  private readonly envIds = new WeakMap<Readonly<Record<string, string>>, number>();
  private nextEnvId = 1;

  run(req: SpawnRequest): Promise<SpawnResult> {
    const w = this.pick();
    const id = this.nextId++;
    return new Promise<SpawnResult>((resolve) => {
      this.pending.set(id, { resolve, worker: w });
      if (w.inFlight++ === 0) w.thread.ref();
      let envId = this.envIds.get(req.env);
      if (envId === undefined) this.envIds.set(req.env, (envId = this.nextEnvId++));
      const env = w.envs.has(envId) ? undefined : req.env;
      w.envs.add(envId);
      w.thread.postMessage({ id, args: [...req.args], cwd: req.cwd, envId, env, timeoutMs: req.timeoutMs });
    });
  }

  /** The worker with the fewest commands in flight, started when there are fewer than WORKERS. */
  private pick(): PoolWorker {
    let best: PoolWorker | undefined;
    for (const w of this.workers) if (!best || w.inFlight < best.inFlight) best = w;
    if (best && (best.inFlight === 0 || this.workers.length >= WORKERS)) return best;
    return this.start();
  }

  private start(): PoolWorker {
    const thread = new Worker(WORKER_SOURCE, { eval: true });
    const w: PoolWorker = { thread, inFlight: 0, envs: new Set() };
    // Idle, a worker keeps nobody alive; `run` refs it while a command is in flight.
    thread.unref();
    thread.on('message', (m: { id: number } & SpawnResult) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      this.settled(p.worker);
      const { id: _id, ...result } = m;
      p.resolve(result);
    });
    // A worker that dies takes its commands with it: each fails as a process that could not start,
    // and the next command starts a new worker.
    const fail = (message: string) => {
      const at = this.workers.indexOf(w);
      if (at >= 0) this.workers.splice(at, 1);
      for (const [id, p] of this.pending) {
        if (p.worker !== w) continue;
        this.pending.delete(id);
        p.resolve({ kind: 'error', message, code: undefined });
      }
    };
    thread.on('error', (e) => fail(`the git worker thread failed: ${e.message}`));
    thread.on('exit', (code) => fail(`the git worker thread exited (${code})`));
    this.workers.push(w);
    return w;
  }

  private settled(w: PoolWorker): void {
    if (--w.inFlight === 0) w.thread.unref();
  }
}

let pool: SpawnPool | undefined;

/**
 * Commands started on the worker threads before the spawn server is started: a short command
 * (`pipeline next`, `task add`) runs a few git commands and would only pay the server's start.
 */
const SERVER_AFTER = 8;
/** A server that dies is replaced this many times; then the worker threads start everything. */
const SERVER_RESTARTS = 3;
let started = 0;
let server: SpawnServer | undefined;
let serverReady = false;
let serverStarts = 0;

/**
 * Runs one git command: on the spawn server (gitSpawnServer.ts) once it listens, else on a worker
 * thread. `PIPELINE_GIT_SPAWN=threads` keeps every command on the threads.
 */
export function spawnGit(req: SpawnRequest): Promise<SpawnResult> {
  started++;
  if (server && !server.alive) {
    server = undefined;
    serverReady = false;
  }
  if (server && serverReady) return server.run(req);
  if (
    !server &&
    started >= SERVER_AFTER &&
    serverStarts < SERVER_RESTARTS &&
    process.env.PIPELINE_GIT_SPAWN !== 'threads'
  ) {
    serverStarts++;
    const s = (server = new SpawnServer());
    void s.ready.then((ok) => {
      if (server === s) serverReady = ok;
    });
  }
  pool ??= new SpawnPool();
  return pool.run(req);
}

/**
 * The spawn server when it listens, for other processes the engine starts (agents' commands,
 * processRunner.ts); undefined before it is ready, after it failed, or with `PIPELINE_GIT_SPAWN=threads`:
 * the caller then starts its process itself. Only git commands start the server.
 */
export function readySpawnServer(): SpawnServer | undefined {
  return server?.alive && serverReady ? server : undefined;
}

/**
 * The processes whose children are this engine's own git commands: this one, and the spawn server
 * while it runs. A stale-lock check leaves those out (gitProcesses.ts): the engine's locks already
 * order them.
 */
export function gitParentPids(): number[] {
  const pid = server?.alive ? server.pid : undefined;
  return pid === undefined ? [process.pid] : [process.pid, pid];
}
