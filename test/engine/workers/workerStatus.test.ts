import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { Pipeline } from '../../../src/engine/pipeline';
import { WorkersWatch } from '../../../src/host/workersWatch';
import type { WorkersStatus } from '../../../src/engine/workers/workerStatus';
import { cli, requireCli, shown, startCli, type LiveCli, type StatusJson } from '../../cli/cliKit';
import { PostgresCluster } from '../../support/postgresCluster';
import { until } from '../../support/waiting';
import { AGENTS, ENV, makeTeam, ranBy, type Team } from './workersKit';

/**
 * What `pipeline status`, `/metrics` and a VS Code window (the engine's follower) show of the
 * workers of a pipeline in PostgreSQL, against a real server and real worker processes: each
 * worker with its agents, the claims it holds and its heartbeat; a worker killed with -9 goes
 * offline after its lease, its agents with it, and the work they would take waits, named, without
 * being offered, until a live worker runs them. An unset URL variable is named with its fix.
 */

requireCli();

let cluster: PostgresCluster;
before(async () => {
  cluster = await PostgresCluster.create();
});
after(async () => {
  await cluster?.dispose();
});

type WorkersJson = StatusJson & WorkersStatus;

const hold = (team: Team, id: string, role: string) => writeFile(join(team.gate, `hold-${id}-${role}`), '');
const release = (team: Team, id: string, role: string) => rm(join(team.gate, `hold-${id}-${role}`), { force: true });

async function killMachine(team: Team, name: string): Promise<void> {
  const w = team.workers.get(name)!;
  await w.live!.stop('SIGKILL');
  for (const agent of AGENTS) {
    const file = join(w.dir, '.pipeline', 'run', 'worker', `${agent}.pid.json`);
    const rec = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as { pid?: number };
    try {
      if (rec.pid) process.kill(-rec.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

async function metricsText(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

/** The value of one sample of the Prometheus text, by its name and labels as printed. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

void test('status, status --json and /metrics list the workers with their agents and claims; a worker killed -9 goes offline with its agents, and their work waits for a live worker', async () => {
  const team = await makeTeam(cluster, ['Core', 'Parser']);
  let metrics: LiveCli | undefined;
  try {
    await hold(team, 'TASK-001', 'architect');
    team.startCoordinator('coord');
    team.startWorker('w1', ['architect', 'tester']);
    team.startWorker('w2', ['implementer', 'supervisor']);
    await until('w1 runs the architect stage of TASK-001', 30_000, async () =>
      (await ranBy(team, 'started', 'TASK-001', 'architect')).includes('w1'),
    );
    metrics = startCli(team.coord, ['metrics', 'serve', '--port', '0'], { [ENV]: team.url });
    const url = (await metrics.waitFor(/on (http:\/\/127\.0\.0\.1:\d+)\/metrics/, 30_000))[1]!;

    // Both workers live, with their agents; w1 holds the architect's claim of TASK-001.
    const s = await until(
      'status --json shows both workers live',
      20_000,
      async () => {
        const s = JSON.parse(await team.ok(team.coord, 'status', '--json')) as WorkersJson;
        return s.workers.length === 2 && s.workers.every((w) => w.live) ? s : undefined;
      },
      250,
      () => team.output(),
    );
    const [w1, w2] = s.workers;
    assert.equal(w1!.name, 'w1');
    assert.deepEqual(w1!.agents, ['architect', 'tester']);
    assert.equal(w2!.name, 'w2');
    assert.deepEqual(w2!.agents, ['implementer', 'supervisor']);
    assert.equal(w1!.lease_seconds, 1.5);
    assert.ok(w1!.heartbeat_age_seconds < 1.5, `w1 beat within its lease: ${w1!.heartbeat_age_seconds}`);
    assert.deepEqual(
      w1!.claims.map((c) => ({ task: c.task, stage: c.stage, agent: c.agent, attempt: c.attempt })),
      [{ task: 'TASK-001', stage: 'architect', agent: 'architect', attempt: 1 }],
    );
    assert.match(w1!.claims[0]!.epoch, /^\d+$/);
    assert.deepEqual(w2!.claims, []);
    assert.deepEqual(s.agent_workers.architect, { workers: ['w1'], live_workers: ['w1'], live: true });
    assert.deepEqual(s.agent_workers.supervisor, { workers: ['w2'], live_workers: ['w2'], live: true });
    assert.deepEqual(s.waiting_for_workers, [], 'every agent has a live worker');

    const text = await team.ok(team.coord, 'status');
    assert.match(text, /^workers:$/m);
    assert.match(text, /^ {2}w1 +live .*agents: architect, tester$/m);
    assert.match(text, /^ {2}w2 +live .*agents: implementer, supervisor$/m);
    assert.match(text, /^ {6}TASK-001 architect attempt 1 for architect, epoch \d+ \(lease [\d.]+ s left\)$/m);
    assert.match(text, /^ {2}architect .*\[on w1\]$/m);

    const m = await metricsText(url);
    const host = w1!.host;
    assert.equal(sample(m, `pipeline_worker_up{worker="w1",host="${host}"}`), 1, m);
    assert.equal(sample(m, `pipeline_worker_up{worker="w2",host="${w2!.host}"}`), 1);
    assert.equal(sample(m, 'pipeline_worker_agents{worker="w1"}'), 2);
    assert.equal(sample(m, 'pipeline_worker_claims{worker="w1"}'), 1);
    assert.equal(sample(m, 'pipeline_worker_claims{worker="w2"}'), 0);
    assert.ok((sample(m, 'pipeline_worker_heartbeat_age_seconds{worker="w1"}') ?? -1) >= 0);
    assert.equal(sample(m, 'pipeline_agent_worker_live{agent="architect"}'), 1);
    assert.equal(sample(m, 'pipeline_claims_waiting_for_worker'), 0);

    // w1's machine dies: after its lease it is offline, so are its agents, and the architect's
    // work (TASK-001, retried once the claim expired) waits for a worker without being offered.
    await killMachine(team, 'w1');
    const down = await until(
      'w1 offline and TASK-001 waiting for a worker running architect',
      30_000,
      async () => {
        const d = JSON.parse(await team.ok(team.coord, 'status', '--json')) as WorkersJson;
        const waits = d.waiting_for_workers.find((x) => x.task === 'TASK-001');
        return d.workers.find((w) => w.name === 'w1')?.live === false && waits?.attempt === null ? d : undefined;
      },
      250,
      () => team.output(),
    );
    const dead = down.workers.find((w) => w.name === 'w1')!;
    assert.ok(dead.heartbeat_age_seconds > dead.lease_seconds, JSON.stringify(dead));
    assert.equal(dead.stopped, false, 'a killed worker never said it stopped');
    assert.deepEqual(down.agent_workers.architect, { workers: ['w1'], live_workers: [], live: false });
    assert.deepEqual(down.agent_workers.tester, { workers: ['w1'], live_workers: [], live: false });
    assert.deepEqual(down.agent_workers.implementer, { workers: ['w2'], live_workers: ['w2'], live: true });
    const waits = down.waiting_for_workers.find((x) => x.task === 'TASK-001')!;
    assert.equal(waits.stage, 'architect');
    assert.deepEqual(waits.agents, ['architect']);
    assert.match(waits.message, /waiting for a worker running architect/);
    assert.equal(down.tasks['TASK-001']!.status, 'queued');
    const open = await team.query<{ attempt: number; status: string }>(
      `SELECT attempt, status FROM pipeline.claims WHERE task_id = 'TASK-001' AND status IN ('offered', 'claimed')`,
    );
    assert.deepEqual(open, [], 'nothing is offered to an agent no live worker runs');

    const downText = await team.ok(team.coord, 'status');
    assert.match(downText, /^ {2}w1 +OFFLINE /m);
    assert.match(downText, /^ {2}architect .*\[offline: w1 is offline\]$/m);
    assert.match(downText, /^waiting: TASK-001 \(architect\) is queued: waiting for a worker running architect$/m);

    const dm = await until('metrics say w1 is down', 20_000, async () => {
      const t = await metricsText(url);
      return sample(t, `pipeline_worker_up{worker="w1",host="${host}"}`) === 0 ? t : undefined;
    });
    assert.equal(sample(dm, 'pipeline_agent_worker_live{agent="architect"}'), 0);
    assert.equal(sample(dm, 'pipeline_agent_worker_live{agent="implementer"}'), 1);
    assert.ok((sample(dm, 'pipeline_claims_waiting_for_worker') ?? 0) >= 1, dm);

    // A live worker running the architect again: the waiting work is offered to it and finishes.
    team.startWorker('w3', ['architect', 'tester']);
    await until('w3 runs the architect stage of TASK-001', 30_000, async () =>
      (await ranBy(team, 'started', 'TASK-001', 'architect')).includes('w3'),
    );
    await release(team, 'TASK-001', 'architect');
    const done = (await team.allMerged(['TASK-001', 'TASK-002'])) as WorkersJson;
    assert.deepEqual(done.waiting_for_workers, []);
    assert.deepEqual(done.agent_workers.architect, { workers: ['w1', 'w3'], live_workers: ['w3'], live: true });
  } catch (e) {
    process.stdout.write(team.output() + (metrics ? `\n--- metrics\n${metrics.output()}` : '') + '\n');
    throw e;
  } finally {
    await metrics?.stop('SIGTERM', 10_000).catch(() => undefined);
    await team.cleanup();
  }
});

void test('a missing database URL variable is named with its fix, by status, metrics and the engine a VS Code window opens', async () => {
  const team = await makeTeam(cluster, ['Core']);
  const saved = process.env[ENV];
  delete process.env[ENV];
  try {
    for (const args of [['status'], ['status', '--json'], ['metrics', 'serve', '--port', '0']]) {
      const r = await cli(team.coord, args, { timeoutMs: 30_000 });
      assert.equal(r.code, 1, shown(r));
      assert.match(r.stderr, new RegExp(`environment variable ${ENV} that holds the database URL is not set`));
      assert.match(r.stderr, new RegExp(`export ${ENV}=postgres://`), 'the fix says what to set');
      assert.match(r.stderr, /\.pipeline\/config\.json/, 'the config file that names the variable');
    }
    // The window opens the engine as a follower, as the session does (src/host/pipelineSession.ts).
    await assert.rejects(
      Pipeline.open({ cwd: team.coord, role: 'follow', label: 'VS Code window' }),
      (e: unknown) =>
        isPipelineError(e) && e.code === 'invalid-config' && e.message.includes(ENV) && /export/.test(e.describe()),
    );
    // With the variable set, the same open reads the pipeline from the database, workers included.
    process.env[ENV] = team.url;
    team.startWorker('w1', ['architect']);
    const p = await Pipeline.open({ cwd: team.coord, role: 'follow', label: 'VS Code window' });
    try {
      assert.equal(p.storeLocation.kind, 'postgres');
      assert.deepEqual(Object.keys(p.state.tasks), ['TASK-001']);
      const w = await until('the window sees worker w1', 20_000, async () => {
        const w = await p.workers();
        return w.workers.some((x) => x.name === 'w1' && x.live) ? w : undefined;
      });
      assert.deepEqual(
        w.workers.map((x) => x.agents),
        [['architect']],
      );
      // The window's watch (src/host/workersWatch.ts) gives the Agents tree the architect's worker.
      let changes = 0;
      const watch = WorkersWatch.start(p, () => changes++, 200)!;
      try {
        await until('the watch says w1 runs the architect', 20_000, () =>
          watch.status.agent_workers.architect?.live && changes > 0 ? true : undefined,
        );
        assert.deepEqual(watch.status.agent_workers.architect, {
          workers: ['w1'],
          live_workers: ['w1'],
          live: true,
        });
      } finally {
        watch.dispose();
      }
    } finally {
      await p.close();
    }
  } finally {
    if (saved === undefined) delete process.env[ENV];
    else process.env[ENV] = saved;
    await team.cleanup();
  }
});

void test('a pipeline in files prints no workers section, and --json has workers: []', async () => {
  const team = await makeTeam(cluster, []);
  try {
    // The same clone, on files: drop the store from its configuration.
    const file = join(team.coord, '.pipeline', 'config.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    delete config.store;
    await writeFile(file, JSON.stringify(config, null, 2) + '\n');
    const s = JSON.parse(await team.ok(team.coord, 'status', '--json')) as WorkersJson;
    assert.deepEqual(
      { workers: s.workers, agents: s.agent_workers, waiting: s.waiting_for_workers, offers: s.offers_not_taken },
      { workers: [], agents: {}, waiting: [], offers: {} },
    );
    assert.doesNotMatch(await team.ok(team.coord, 'status'), /^workers:/m);
  } finally {
    await team.cleanup();
  }
});
