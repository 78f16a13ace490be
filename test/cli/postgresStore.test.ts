import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PostgresCluster } from '../support/postgresCluster';
import { until } from '../support/waiting';
import { freshDatabase } from '../engine/postgres/pgTestKit';
import { SCHEMA_VERSION } from '../../src/engine/postgres/schemaMigrations';
import {
  agentPids,
  cli,
  git,
  mentions,
  ok,
  requireCli,
  shown,
  startCli,
  stateFiles,
  status,
  withRepo,
  type CliResult,
  type StatusJson,
} from './cliKit';

/**
 * The pipeline on PostgreSQL, as a user runs it: `pipeline init`, `store` in the config with the
 * URL in an environment variable, `pipeline db migrate`, agents and tasks added, `pipeline run
 * --until-idle` with the scripted agents and real git, to every task merged; `status --json` is
 * the same shape as the file store's, and the database's tables say what status says.
 */

requireCli();

let cluster: PostgresCluster;

before(async () => {
  cluster = await PostgresCluster.create();
});

after(async () => {
  await cluster?.dispose();
});

const ENV = 'PIPELINE_DATABASE_URL';
const AGENTS = ['architect', 'tester', 'implementer', 'supervisor'];

async function usePostgres(dir: string, urlEnv = ENV): Promise<void> {
  const file = join(dir, '.pipeline', 'config.json');
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  config.store = { kind: 'postgres', urlEnv };
  await writeFile(file, JSON.stringify(config, null, 2) + '\n');
}

/** `pipeline <args>` with the database URL in the environment. */
function on(url: string) {
  const run = (dir: string, ...args: string[]): Promise<CliResult> =>
    cli(dir, args, { env: { [ENV]: url }, timeoutMs: 120_000 });
  const okOn = async (dir: string, ...args: string[]): Promise<string> => {
    const r = await run(dir, ...args);
    assert.equal(r.code, 0, `pipeline ${args.join(' ')} should succeed:\n${shown(r)}`);
    return r.stdout;
  };
  return {
    run,
    ok: okOn,
    status: async (dir: string) => JSON.parse(await okOn(dir, 'status', '--json')) as StatusJson,
  };
}

/** The same agents and tasks, whichever store: three tasks, one waiting for another. */
async function smallPipeline(dir: string, run: (dir: string, ...args: string[]) => Promise<string>): Promise<void> {
  for (const a of AGENTS) await run(dir, 'agent', 'add', a, '--role', a, '--command', 'scripted');
  await run(dir, 'task', 'add', 'Core module', '--paths', 'src/core/**');
  await run(dir, 'task', 'add', 'Parser', '--depends-on', 'TASK-001', '--paths', 'src/parser/**');
  await run(dir, 'task', 'add', 'Formatter', '--paths', 'src/format/**');
}

/** The shape of a JSON value: its keys and the kinds of their values, all the way down. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? ['array of', shape(v[0])] : ['array'];
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  const o = v as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, shape(o[k])]),
  );
}

/** What a finished run's status says, without times, commits and who led. */
function outcome(s: StatusJson): unknown {
  return {
    tasks: Object.fromEntries(
      Object.values(s.tasks).map((t) => [t.id, { status: t.status, stage: t.stage, attempt: t.attempt }]),
    ),
    agents: Object.fromEntries(Object.values(s.agents).map((a) => [a.id, { status: a.status, task: a.current_task }])),
    queues: s.queues,
    counts: s.counts,
  };
}

void test('a small pipeline runs to merged on PostgreSQL; status --json has the shape the file store gives', async () => {
  const url = await freshDatabase(cluster);
  const db = on(url);

  const fileStatus = await withRepo({ init: true }, async ({ dir }) => {
    await smallPipeline(dir, ok);
    await ok(dir, 'run', '--until-idle');
    return status(dir);
  });

  await withRepo({ init: true }, async ({ dir }) => {
    await usePostgres(dir);
    // Not migrated yet: every command says what to run.
    const unready = await db.run(dir, 'status');
    assert.equal(unready.code, 1, shown(unready));
    mentions(unready.stderr, 'has not been prepared', '001_initial', 'pipeline db migrate', ENV);
    const dbStatus = await db.run(dir, 'db', 'status');
    assert.equal(dbStatus.code, 3, shown(dbStatus));
    mentions(dbStatus.stdout, 'pending  001_initial');

    mentions(await db.ok(dir, 'db', 'migrate'), 'applied 001_initial');
    mentions(await db.ok(dir, 'db', 'migrate'), `is up to date (schema version ${SCHEMA_VERSION})`);
    const j = JSON.parse(await db.ok(dir, 'db', 'status', '--json')) as { ready: boolean; schemaVersion: number };
    assert.deepEqual({ ready: j.ready, version: j.schemaVersion }, { ready: true, version: SCHEMA_VERSION });

    await smallPipeline(dir, db.ok);
    const queued = await db.status(dir);
    assert.deepEqual(queued.queues.unassigned, ['TASK-001', 'TASK-002', 'TASK-003']);
    mentions(await db.ok(dir, 'run', '--until-idle'), 'Idle: 3 task(s) completed.');

    const s = await db.status(dir);
    assert.deepEqual(s.warnings, []);
    assert.deepEqual(shape(s), shape(fileStatus), 'status --json has the same shape on either store');
    assert.deepEqual(outcome(s), outcome(fileStatus), 'and says the same about the same run');
    assert.deepEqual(s.queues.completed, ['TASK-001', 'TASK-002', 'TASK-003']);
    assert.equal(s.leader, null, 'the run gave the lease back');

    // The work is in git: every task's merge is on main.
    const log = await git(dir, 'log', '--format=%s', 'main');
    for (const id of ['TASK-001', 'TASK-002', 'TASK-003']) mentions(log, id);
    // Nothing of the state is in files: it is all in the database.
    assert.deepEqual(await stateFiles(dir, true), {});

    // SQL readers see what status sees, from the same transactions.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const tasks = await client.query<{ id: string; status: string }>(
        'SELECT id, status FROM pipeline.tasks ORDER BY id',
      );
      assert.deepEqual(
        tasks.rows,
        ['TASK-001', 'TASK-002', 'TASK-003'].map((id) => ({ id, status: 'done' })),
      );
      const attempts = await client.query<{ n: number; done: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE outcome = 'complete')::int AS done FROM pipeline.task_attempts`,
      );
      assert.deepEqual(attempts.rows[0], { n: 12, done: 12 }, 'four stages, one attempt each, for three tasks');
      const head = await client.query<{ seq: string; records: string }>(
        'SELECT (SELECT seq FROM pipeline.state_head) AS seq, (SELECT count(*) FROM pipeline.state_records) AS records',
      );
      assert.equal(head.rows[0]!.seq, head.rows[0]!.records, 'one record per seq, none missing');
      const leader = await client.query<{ released: boolean; label: string }>(
        'SELECT released, label FROM pipeline.leader',
      );
      assert.deepEqual(leader.rows[0], { released: true, label: 'pipeline run' });
    } finally {
      await client.end();
    }
  });
});

void test('errors name the file, the place and the fix: variable unset, database unreachable, a URL in the file', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await usePostgres(dir, 'TEAM_PIPELINE_DB');
    const unset = await cli(dir, ['status'], { env: { TEAM_PIPELINE_DB: '' } });
    assert.equal(unset.code, 1, shown(unset));
    mentions(
      unset.stderr,
      'the environment variable TEAM_PIPELINE_DB that holds the database URL is not set',
      join(dir, '.pipeline', 'config.json'),
      'store.urlEnv',
      'export TEAM_PIPELINE_DB=postgres://',
    );

    // A port nothing listens on: the database is named (never a password), with the fix.
    const nowhere = `postgres://someone:secret@127.0.0.1:${cluster.port}/no_such_db`;
    await cluster.stop('fast');
    try {
      const down = await cli(dir, ['task', 'add', 'x'], { env: { TEAM_PIPELINE_DB: nowhere }, timeoutMs: 60_000 });
      assert.equal(down.code, 1, shown(down));
      mentions(
        down.stderr,
        `PostgreSQL at 127.0.0.1:${cluster.port}/no_such_db could not be reached`,
        'TEAM_PIPELINE_DB',
      );
      assert.ok(!down.stderr.includes('secret'), 'the password is never printed');
    } finally {
      await cluster.start();
    }

    // The URL itself in the file is refused, saying where it belongs.
    const file = join(dir, '.pipeline', 'config.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    config.store = { kind: 'postgres', url: nowhere };
    await writeFile(file, JSON.stringify(config, null, 2));
    const inFile = await cli(dir, ['status']);
    assert.equal(inFile.code, 1, shown(inFile));
    mentions(inFile.stderr, 'store.url', 'never stored in the configuration file', 'PIPELINE_DATABASE_URL');
  });
});

/** The text of every task file the agents were given, under the repository's worktrees. */
async function taskFiles(base: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, depth: number): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 3 && e.name !== '.git' && e.name !== 'node_modules') await walk(p, depth + 1);
      else if (e.isFile() && /^TASK-\d+\.attempt-\d+\.md$/.test(e.name)) out.push(await readFile(p, 'utf8'));
    }
  };
  await walk(base, 0);
  return out;
}

void test('pipeline run goes on across a crash of PostgreSQL: commits wait for it, nothing is lost or doubled, every task merges', async () => {
  const url = await freshDatabase(cluster);
  const db = on(url);
  await withRepo({ init: true }, async ({ base, dir }) => {
    await usePostgres(dir);
    await db.ok(dir, 'db', 'migrate');
    await smallPipeline(dir, db.ok);
    const run = startCli(dir, ['run', '--until-idle'], { [ENV]: url, SCRIPTED_AGENT_DELAY_MS: '300' });
    try {
      // An agent is at work (its process started after the lease was checked): then the server crashes.
      await until('an agent process running', 30_000, async () => (await agentPids(dir)).length > 0);
      await cluster.stop('immediate');
      try {
        // While the server is down an agent finishes its stage: its completion has to wait to be recorded.
        await until('an agent completes a stage while the database is down', 20_000, async () =>
          (await taskFiles(base)).some((t) => /^## Status: COMPLETED/m.test(t)),
        );
        const down = await db.run(dir, 'status');
        assert.equal(down.code, 1, shown(down));
        mentions(down.stderr, 'could not be reached', ENV);
      } finally {
        await cluster.start();
      }
      const end = await run.exited;
      assert.equal(end.code, 0, run.output());
    } finally {
      await run.stop('SIGKILL');
    }
    mentions(run.output(), 'Idle: 3 task(s) completed.');
    const s = await db.status(dir);
    assert.deepEqual(s.queues.completed, ['TASK-001', 'TASK-002', 'TASK-003']);
    for (const t of Object.values(s.tasks)) {
      // One attempt per stage: the outage cost no attempt and repeated no transition.
      assert.equal(t.attempt, 4, `${t.id}: ${JSON.stringify(t.history)}\n${run.output()}`);
      assert.deepEqual(
        t.history.map((h) => h.event),
        ['ready', 'assign', 'complete', 'assign', 'complete', 'assign', 'complete', 'assign', 'complete', 'merged'],
      );
    }
    const log = await git(dir, 'log', '--format=%s', 'main');
    for (const id of ['TASK-001', 'TASK-002', 'TASK-003']) mentions(log, id);
  });
});
