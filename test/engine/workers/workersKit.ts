import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { cli, shown, startCli, type LiveCli, type StatusJson } from '../../cli/cliKit';
import { freshDatabase } from '../postgres/pgTestKit';
import type { PostgresCluster } from '../../support/postgresCluster';
import { until } from '../../support/waiting';

/**
 * A pipeline across machines, as a team sets it up: a bare "origin", a coordinator's clone where
 * the pipeline is initialised on PostgreSQL, and workers each in a directory of its own with a clone
 * of its own, each a separate process of the built CLI (`node dist/cli.js worker …`). The agents are
 * a shell script: it records which worker ran which stage, waits while a "hold" file for its task and
 * role exists (so a test can catch a worker mid-stage without guessing times), commits a file and
 * appends its completion marker.
 */

const run = promisify(execFile);
export const ENV = 'PIPELINE_DATABASE_URL';
export const AGENTS = ['architect', 'tester', 'implementer', 'supervisor'];
/** Short leases and polls, so a lost worker is noticed quickly on a busy machine. */
export const LEASE = '1.5';
export const POLL = '0.5';

const AGENT_SCRIPT = `#!/bin/sh
set -e
id="$PIPELINE_TASK_ID"; role="$PIPELINE_ROLE"
echo "$role on $id at $WORKER_NAME"
touch "$GATE_DIR/started-$id-$role-$WORKER_NAME"
while [ -e "$GATE_DIR/hold-$id-$role" ]; do sleep 0.1; done
mkdir -p work
echo "$role by $WORKER_NAME" >> "work/$id.txt"
git add work
git commit -q -m "$id $role by $WORKER_NAME"
touch "$GATE_DIR/done-$id-$role-$WORKER_NAME"
printf '\\n## Status: COMPLETED ✅\\n' >> "$PIPELINE_TASK_FILE"
`;

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('GIT_')) env[k] = v;
  return (await run('git', args, { cwd, env: { ...env, GIT_TERMINAL_PROMPT: '0' } })).stdout;
}

export interface Team {
  base: string;
  origin: string;
  coord: string;
  gate: string;
  url: string;
  workers: Map<string, { dir: string; live: LiveCli | undefined }>;
  coordinators: LiveCli[];
  /** Starts (or restarts) worker `name` with its agents. */
  startWorker(name: string, agents: readonly string[], extra?: string[]): LiveCli;
  /** Starts a coordinator process in the coordinator's clone. */
  startCoordinator(name: string): LiveCli;
  ok(dir: string, ...args: string[]): Promise<string>;
  status(): Promise<StatusJson>;
  query<T extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<T[]>;
  /** Resolves once every task is completed, and origin's main has each one's work. */
  allMerged(ids: readonly string[], ms?: number): Promise<StatusJson>;
  output(): string;
  cleanup(): Promise<void>;
}

async function clone(origin: string, dir: string): Promise<void> {
  await git(tmpdir(), 'clone', '--quiet', origin, dir);
  await git(dir, 'config', 'user.name', 'Agent Pipeline');
  await git(dir, 'config', 'user.email', 'agent-pipeline@localhost');
  await git(dir, 'config', 'commit.gpgsign', 'false');
}

/** A bare origin with a first commit, the pipeline on a fresh database, its agents and `tasks`. */
export async function makeTeam(cluster: PostgresCluster, tasks: readonly string[]): Promise<Team> {
  const url = await freshDatabase(cluster, 'w');
  const base = await mkdtemp(join(tmpdir(), 'pipeline-workers-'));
  const origin = join(base, 'origin.git');
  const gate = join(base, 'gate');
  await mkdir(gate);
  await git(tmpdir(), 'init', '--quiet', '--bare', '--initial-branch=main', origin);
  const seed = join(base, 'seed');
  await clone(origin, seed);
  await writeFile(join(seed, 'README.md'), '# Shared repository\n');
  await git(seed, 'add', 'README.md');
  await git(seed, 'commit', '-q', '-m', 'first commit');
  await git(seed, 'push', '-q', 'origin', 'HEAD:main');
  const script = join(base, 'agent.sh');
  await writeFile(script, AGENT_SCRIPT, { mode: 0o755 });

  const coord = join(base, 'coordinator');
  await clone(origin, coord);
  const env = { [ENV]: url, GATE_DIR: gate };
  const ok = async (dir: string, ...args: string[]): Promise<string> => {
    const r = await cli(dir, args, { env, timeoutMs: 60_000 });
    assert.equal(r.code, 0, `pipeline ${args.join(' ')} should succeed:\n${shown(r)}`);
    return r.stdout;
  };
  await ok(coord, 'init');
  const configFile = join(coord, '.pipeline', 'config.json');
  const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
  config.store = { kind: 'postgres', urlEnv: ENV };
  await writeFile(configFile, JSON.stringify(config, null, 2) + '\n');
  await ok(coord, 'db', 'migrate');
  for (const a of AGENTS) await ok(coord, 'agent', 'add', a, '--role', a, '--command', `/bin/sh ${script}`);
  for (const t of tasks) await ok(coord, 'task', 'add', t);

  const workers = new Map<string, { dir: string; live: LiveCli | undefined }>();
  const coordinators: LiveCli[] = [];
  const lives: { name: string; live: LiveCli }[] = [];
  const client = new pg.Client({ connectionString: url });
  let connected = false;

  const team: Team = {
    base,
    origin,
    coord,
    gate,
    url,
    workers,
    coordinators,
    startWorker(name, agents, extra = []) {
      const w = workers.get(name);
      if (!w) throw new Error(`no worker ${name}`);
      const live = startCli(
        w.dir,
        ['worker', '--agents', agents.join(','), '--name', name, '--lease', LEASE, '--poll', POLL, ...extra],
        { ...env, WORKER_NAME: name },
      );
      w.live = live;
      lives.push({ name, live });
      return live;
    },
    startCoordinator(name) {
      const live = startCli(coord, ['worker', '--coordinate', '--name', name, '--lease', LEASE, '--poll', POLL], {
        ...env,
        WORKER_NAME: name,
      });
      coordinators.push(live);
      lives.push({ name, live });
      return live;
    },
    ok,
    status: async () => JSON.parse(await ok(coord, 'status', '--json')) as StatusJson,
    async query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) {
      if (!connected) {
        await client.connect();
        connected = true;
      }
      return (await client.query<T>(sql, values)).rows;
    },
    async allMerged(ids, ms = 60_000) {
      const s = await until(
        `every task merged (${ids.join(', ')})`,
        ms,
        async () => {
          const s = await team.status();
          return ids.every((id) => s.tasks[id]?.status === 'done') ? s : undefined;
        },
        250,
        () => team.output(),
      );
      const log = await git(origin, 'log', '--format=%s', 'main');
      for (const id of ids) assert.match(log, new RegExp(`${id}`), `origin's main has ${id}:\n${log}`);
      return s;
    },
    output: () => lives.map((l) => `--- ${l.name}\n${l.live.output()}`).join('\n'),
    async cleanup() {
      for (const l of lives) await l.live.stop('SIGKILL', 5_000).catch(() => undefined);
      if (connected) await client.end().catch(() => undefined);
      // Agents run in their own process groups: end any a killed worker left behind.
      for (const w of workers.values()) {
        const runDir = join(w.dir, '.pipeline', 'run', 'worker');
        for (const f of await readdir(runDir).catch(() => [] as string[])) {
          const rec = JSON.parse(await readFile(join(runDir, f), 'utf8').catch(() => '{}')) as { pid?: number };
          if (rec.pid) {
            try {
              process.kill(-rec.pid, 'SIGKILL');
            } catch {
              // Already gone.
            }
          }
        }
      }
      await rm(base, { recursive: true, force: true });
    },
  };
  for (const name of ['w1', 'w2', 'w3']) {
    const dir = join(base, name);
    await clone(origin, dir);
    await mkdir(join(dir, '.pipeline'));
    await copyFile(configFile, join(dir, '.pipeline', 'config.json'));
    workers.set(name, { dir, live: undefined });
  }
  return team;
}

/** Which workers ran `role` on `id`, by the files the agent script leaves. */
export async function ranBy(team: Team, kind: 'started' | 'done', id: string, role: string): Promise<string[]> {
  const prefix = `${kind}-${id}-${role}-`;
  return (await readdir(team.gate)).filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length));
}
