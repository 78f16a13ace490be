/**
 * The workers benchmark's machines, all on this one: a throwaway PostgreSQL cluster
 * (test/support/postgresCluster.ts), a bare origin cloned from the benchmark repository
 * (bench/handoffRepo.ts), a coordinator's clone where the pipeline is set up on a fresh database,
 * and workers each in a clone of its own, each a process of the built CLI (`node dist/cli.js worker
 * …`), as test/engine/workers/workersKit.ts sets them up. Every line the processes print is kept
 * with the time it arrived (bench/results/workers-output.log), to see what happened when.
 */
import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { initHome } from '../src/engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../src/engine/model/configSchema';
import { Pipeline } from '../src/engine/pipeline';
import { PgDatabase } from '../src/engine/postgres/pgDatabase';
import { migrate } from '../src/engine/postgres/schemaMigrations';
import type { PostgresCluster } from '../test/support/postgresCluster';
import { freshDatabase } from '../test/engine/postgres/pgTestKit';
import { writeGitShim } from './gitTrace';
import { fixedWork } from './workersAgent';

const run = promisify(execFile);
export const ROOT = resolve(__dirname, '..');
export const CLI = join(ROOT, 'dist', 'cli.js');
export const SCRIPTED_AGENT = join(ROOT, 'dist', 'scriptedAgent.js');
const ENV = 'PIPELINE_DATABASE_URL';
/** One agent per stage, named after its role. */
export const ROLES = DEFAULT_STAGES.map((s) => s.role);

/** Says what to run first when the build is missing. */
export function assertBuilt(): void {
  for (const f of [CLI, SCRIPTED_AGENT])
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first (the workers are the built CLI)`);
}

export function gitEnv(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_')) e[k] = v;
  e.GIT_TERMINAL_PROMPT = '0';
  return e;
}

export async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await run('git', args, { cwd, env: gitEnv(), maxBuffer: 64 << 20 })).stdout;
}

async function clone(origin: string, dir: string): Promise<void> {
  await git(ROOT, 'clone', '--quiet', origin, dir);
  for (const [k, v] of [
    ['user.name', 'Agent Pipeline'],
    ['user.email', 'agent-pipeline@localhost'],
    ['commit.gpgsign', 'false'],
  ] as const)
    await git(dir, 'config', k, v);
}

/** Agents (one per role, running `command`), `tasks` tasks that each agent works `workMs` on, parallel mode. */
export async function seedPipeline(p: Pipeline, command: string, tasks: number, workMs: number): Promise<void> {
  for (const role of ROLES) await p.addAgent({ id: role, role, command });
  await p.addTasks(
    Array.from({ length: tasks }, (_, i) => ({
      spec: {
        id: `TASK-${String(i + 1).padStart(3, '0')}`,
        title: `Benchmark ${i + 1}`,
        description: fixedWork(workMs),
        paths: [`t${i + 1}/**`],
      },
    })),
  );
  await p.setOrchestrationMode('parallel');
}

/** The pipeline's configuration for both runs: default stages, one attempt (a failure shows). */
export async function initBenchHome(dir: string, store?: { kind: 'postgres'; urlEnv: string }): Promise<void> {
  await initHome(dir, {
    targetBranch: 'main',
    stages: DEFAULT_STAGES,
    retry: { maxAttempts: 1, baseDelayMs: 0, maxDelayMs: 0, jitter: 0 },
    ...(store ? { store } : {}),
  });
}

export interface Line {
  at: number;
  who: string;
  text: string;
}

export interface Team {
  base: string;
  url: string;
  coord: string;
  workerDirs: Map<string, string>;
  lines: Line[];
  /**
   * Starts the workers, waits until each says it runs (listening for offers), then the coordinator:
   * so the first offers do not wait for a worker's own start.
   */
  start(ms: number): Promise<void>;
  /** Resolves once `n` tasks are done; rejects on a blocked task, an exited process or the deadline. */
  untilDone(n: number, ms: number): Promise<void>;
  query<T extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<T[]>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The team on `cluster`: origin from the bare repository `repo`, the pipeline in the coordinator's
 * clone with agents running `command`, and one worker per group of `groups` (name → agent ids).
 */
export async function makeTeam(
  cluster: PostgresCluster,
  base: string,
  repo: string,
  groups: Record<string, readonly string[]>,
  seed: (p: Pipeline) => Promise<void>,
  /** Where each process notes its git commands (`<traceDir>/<name>.log`, bench/gitTrace.ts), when given. */
  traceDir?: string,
): Promise<Team> {
  const url = await freshDatabase(cluster, 'bench');
  const origin = join(base, 'origin.git');
  await git(ROOT, 'clone', '--quiet', '--bare', repo, origin);
  const coord = join(base, 'coordinator');
  await clone(origin, coord);
  await initBenchHome(coord, { kind: 'postgres', urlEnv: ENV });
  const db = new PgDatabase(url, { source: 'the workers benchmark' });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  const before = process.env[ENV];
  process.env[ENV] = url;
  try {
    const p = await Pipeline.open({ cwd: coord, role: 'lead', label: 'workers bench setup' });
    try {
      await seed(p);
    } finally {
      await p.close();
    }
  } finally {
    if (before === undefined) delete process.env[ENV];
    else process.env[ENV] = before;
  }
  const workerDirs = new Map<string, string>();
  for (const name of Object.keys(groups)) {
    const dir = join(base, name);
    await clone(origin, dir);
    await mkdir(join(dir, '.pipeline'));
    await copyFile(join(coord, '.pipeline', 'config.json'), join(dir, '.pipeline', 'config.json'));
    workerDirs.set(name, dir);
  }

  const lines: Line[] = [];
  const children: { who: string; child: ChildProcess; exited: Promise<number | null> }[] = [];
  const client = new pg.Client({ connectionString: url });
  let connected = false;
  const launch = async (who: string, cwd: string, args: string[]) => {
    const trace: NodeJS.ProcessEnv = {};
    if (traceDir) {
      trace.PATH = `${await writeGitShim(traceDir)}:${process.env.PATH ?? ''}`;
      trace.BENCH_GIT_LOG = join(traceDir, `${who}.log`);
    }
    const child = spawn(process.execPath, [CLI, 'worker', '--name', who, ...args], {
      cwd,
      env: { ...gitEnv(), [ENV]: url, NO_COLOR: '1', ...trace },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) {
      let rest = '';
      stream.setEncoding('utf8').on('data', (s: string) => {
        const at = Date.now();
        const parts = (rest + s).split('\n');
        rest = parts.pop() ?? '';
        for (const text of parts) lines.push({ at, who, text });
      });
    }
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    children.push({ who, child, exited });
  };
  const team: Team = {
    base,
    url,
    coord,
    workerDirs,
    lines,
    async start(ms) {
      for (const [name, agents] of Object.entries(groups))
        await launch(name, workerDirs.get(name)!, ['--agents', agents.join(',')]);
      const deadline = Date.now() + ms;
      const names = Object.keys(groups);
      while (!names.every((n) => lines.some((l) => l.who === n && l.text.startsWith(`worker ${n} runs `)))) {
        if (Date.now() > deadline)
          throw new Error(`the workers did not start within ${ms / 1000} s:\n${team.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await launch('coord', coord, ['--coordinate']);
    },
    async query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) {
      if (!connected) {
        await client.connect();
        connected = true;
      }
      return (await client.query<T>(sql, values)).rows;
    },
    async untilDone(n, ms) {
      const deadline = Date.now() + ms;
      let gone: string | undefined;
      for (const c of children) void c.exited.then((code) => (gone ??= `${c.who} exited (code ${code})`));
      for (;;) {
        const rows = await team.query<{ status: string; n: number }>(
          'SELECT status, count(*)::int AS n FROM pipeline.tasks GROUP BY status',
        );
        const count = (s: string) => rows.find((r) => r.status === s)?.n ?? 0;
        if (count('done') >= n) return;
        if (count('blocked') > 0) throw new Error(`a task was blocked:\n${team.output()}`);
        if (gone) throw new Error(`${gone} before the tasks were done:\n${team.output()}`);
        if (Date.now() > deadline)
          throw new Error(`${count('done')} of ${n} tasks done after ${ms / 1000} s:\n${team.output()}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    output: () => lines.map((l) => `[${new Date(l.at).toISOString()} ${l.who}] ${l.text}`).join('\n'),
    async stop() {
      for (const c of children) c.child.kill('SIGTERM');
      for (const c of children) {
        const timer = setTimeout(() => c.child.kill('SIGKILL'), 15_000);
        await c.exited;
        clearTimeout(timer);
      }
      if (connected) await client.end().catch(() => undefined);
    },
  };
  return team;
}

/** When each attempt's agent log header was written on a worker: the branch received, the agent about to start. */
export async function receivedTimes(workerDirs: Iterable<string>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const dir of workerDirs) {
    const logs = join(dir, '.pipeline', 'logs', 'agents');
    for (const f of await readdir(logs).catch(() => [] as string[])) {
      const text = await readFile(join(logs, f), 'utf8');
      for (const m of text.matchAll(/^--- (\S+) \S+ (\S+) attempt (\d+): /gm))
        out.set(`${m[2]}#${m[3]}`, Date.parse(m[1]!));
    }
  }
  return out;
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}
