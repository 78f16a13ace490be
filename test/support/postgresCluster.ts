/**
 * A throwaway PostgreSQL server for tests: a cluster made by `initdb` in a temporary directory,
 * listening on 127.0.0.1 on a free port, that a test can stop (fast or immediate, as a crash would),
 * start again on the same data and port, and remove. The binaries come from Debian's `postgresql`
 * package, which `.ci/run` installs.
 *
 * PostgreSQL refuses to run as root; CI runs as root, so the server then runs as the `postgres`
 * user the Debian package creates, in a directory that user owns.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './waiting';

/** The directory of the newest installed PostgreSQL's binaries, or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

/** Why the tests cannot start PostgreSQL here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  if (!postgresBinDir())
    return 'PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb): apt-get install postgresql, as .ci/run does';
  if (process.getuid?.() === 0 && uidOf('postgres') === undefined)
    return 'running as root and there is no `postgres` user to run the server as: apt-get install postgresql creates it';
  return undefined;
}

function uidOf(name: string): { uid: number; gid: number } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`));
    if (!line) return undefined;
    const [, , uid, gid] = line.split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

interface RunResult {
  code: number | null;
  out: string;
}

export class PostgresCluster {
  private server: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
    private readonly owner: { uid: number; gid: number } | undefined,
  ) {}

  /** `postgres://pipeline@127.0.0.1:<port>/<database>`: trust authentication on loopback only. */
  url(database = 'postgres'): string {
    return `postgres://pipeline@127.0.0.1:${this.port}/${database}`;
  }

  /** Makes a cluster (superuser `pipeline`, trust on 127.0.0.1) and starts it. */
  static async create(): Promise<PostgresCluster> {
    const missing = postgresMissing();
    if (missing) throw new Error(missing);
    const bin = postgresBinDir()!;
    const owner = process.getuid?.() === 0 ? uidOf('postgres') : undefined;
    const dir = await mkdtemp(join(tmpdir(), 'pipeline-pg-'));
    if (owner) await chown(dir, owner.uid, owner.gid);
    const c = new PostgresCluster(dir, await freePort(), bin, owner);
    // --no-sync: the cluster is thrown away; durability across a server crash still holds, because
    // a crash of the server (not of the machine) keeps what the kernel has.
    const init = await c.run('initdb', [
      '-D',
      c.dataDir,
      '-U',
      'pipeline',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    if (init.code !== 0) throw new Error(`initdb failed (exit ${init.code}):\n${init.out}`);
    await c.start();
    return c;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  private run(cmd: string, args: string[]): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const p = spawn(join(this.bin, cmd), args, {
        ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}),
        env: { ...process.env, LC_ALL: 'C' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      p.once('error', reject);
      p.once('close', (code) => resolve({ code, out }));
    });
  }

  /** True while the server process runs. */
  get running(): boolean {
    return this.server !== undefined && this.server.exitCode === null && this.server.signalCode === null;
  }

  /** Starts the server on the same data and port; resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    this.log = '';
    const p = spawn(
      join(this.bin, 'postgres'),
      [
        '-D',
        this.dataDir,
        '-p',
        String(this.port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${this.dir}`,
        '-c',
        'fsync=off',
        '-c',
        'max_connections=200',
      ],
      {
        ...(this.owner ? { uid: this.owner.uid, gid: this.owner.gid } : {}),
        env: { ...process.env, LC_ALL: 'C' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    p.stdout.on('data', (d: Buffer) => (this.log += d.toString()));
    p.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    this.server = p;
    await until(
      `PostgreSQL on 127.0.0.1:${this.port} accepting connections`,
      30_000,
      async () => {
        if (!this.running) throw new Error(`PostgreSQL exited at start:\n${this.log}`);
        return (await accepts(this.port)) && /ready to accept connections/.test(this.log);
      },
      50,
      () => this.log,
    );
  }

  /**
   * Stops the server: `fast` as an administrator would (clients disconnected, a checkpoint),
   * `immediate` as a crash would (SIGQUIT: no checkpoint; the next start recovers from the WAL).
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const p = this.server;
    if (!p || !this.running) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    await exited;
  }

  /** What the server printed since it last started. */
  output(): string {
    return this.log;
  }

  /** Stops the server and removes its directory. */
  async dispose(): Promise<void> {
    await this.stop('immediate');
    await rm(this.dir, { recursive: true, force: true });
  }
}
