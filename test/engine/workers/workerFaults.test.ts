import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireCli } from '../../cli/cliKit';
import { PostgresCluster } from '../../support/postgresCluster';
import { until } from '../../support/waiting';
import { AGENTS, git, LEASE, makeTeam, ranBy, type Team } from './workersKit';

/**
 * Workers on several machines when things go wrong, each against a real PostgreSQL server and
 * real git: a worker killed mid-stage, the database restarted mid-run, a worker frozen past its
 * lease, two coordinators racing. A "hold" file keeps a stage's agent waiting until the test has
 * done its harm, so nothing depends on timing.
 */

requireCli();

let cluster: PostgresCluster;
before(async () => {
  cluster = await PostgresCluster.create();
});
after(async () => {
  await cluster?.dispose();
});

async function withTeam(tasks: readonly string[], fn: (team: Team) => Promise<void>): Promise<void> {
  const team = await makeTeam(cluster, tasks);
  const started = Date.now();
  try {
    await fn(team);
    process.stdout.write(`# took ${Date.now() - started} ms after setup\n`);
  } catch (e) {
    process.stdout.write(team.output() + '\n');
    throw e;
  } finally {
    await team.cleanup();
  }
}

const hold = (team: Team, id: string, role: string) => writeFile(join(team.gate, `hold-${id}-${role}`), '');
const release = (team: Team, id: string, role: string) => rm(join(team.gate, `hold-${id}-${role}`), { force: true });

/** Kills the worker's agent processes too (each runs in its own process group): a machine that died. */
async function killMachine(team: Team, name: string): Promise<void> {
  const w = team.workers.get(name)!;
  const pidFile = (agent: string) => join(w.dir, '.pipeline', 'run', 'worker', `${agent}.pid.json`);
  // An agent can be running (its "started" gate touched) a moment before the worker has recorded its
  // pid: wait for the record, or the agent would outlive its "machine" and finish its stage.
  const running = (await readdir(team.gate))
    .filter((f) => f.startsWith('started-') && f.endsWith(`-${name}`))
    .map((f) => f.slice(0, -`-${name}`.length).split('-').at(-1)!);
  await until(`${name}'s running agents (${running.join(', ')}) to have their pids recorded`, 20_000, async () => {
    for (const agent of running) if (!(await readFile(pidFile(agent), 'utf8').catch(() => ''))) return false;
    return true;
  });
  await w.live!.stop('SIGKILL');
  for (const agent of AGENTS) {
    const rec = JSON.parse(await readFile(pidFile(agent), 'utf8').catch(() => '{}')) as { pid?: number };
    try {
      if (rec.pid) process.kill(-rec.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

interface ClaimLine {
  attempt: number;
  status: string;
  worker: string | null;
}

function claimsOf(team: Team, id: string): Promise<ClaimLine[]> {
  return team.query<ClaimLine>(
    'SELECT attempt, status, worker FROM pipeline.claims WHERE task_id = $1 ORDER BY attempt',
    [id],
  );
}

void test('a worker killed mid-stage: its task resumes on another worker after the lease', async () => {
  await withTeam(['Core'], async (team) => {
    await hold(team, 'TASK-001', 'architect');
    team.startCoordinator('coord');
    team.startWorker('w1', AGENTS);
    await until('w1 runs the architect stage', 20_000, async () =>
      (await ranBy(team, 'started', 'TASK-001', 'architect')).includes('w1'),
    );
    team.startWorker('w2', AGENTS);
    await killMachine(team, 'w1');
    await release(team, 'TASK-001', 'architect');
    const s = await team.allMerged(['TASK-001']);
    assert.deepEqual(await ranBy(team, 'done', 'TASK-001', 'architect'), ['w2'], 'the stage was done once, on w2');
    const claims = await claimsOf(team, 'TASK-001');
    assert.deepEqual(claims[0], { attempt: 1, status: 'expired', worker: 'w1' }, "w1's claim expired with its lease");
    assert.ok(
      claims.slice(1).every((c) => c.status === 'done' && c.worker === 'w2'),
      JSON.stringify(claims),
    );
    const fail = s.tasks['TASK-001']!.history.find((h) => h.event === 'fail');
    assert.match(fail?.note ?? '', /lease of w1 expired/, 'the history says why the attempt failed');
    const main = await git(team.origin, 'log', '--format=%s', 'main');
    assert.doesNotMatch(main, /by w1/, "nothing of w1's lost attempt reached main");
  });
});

void test('PostgreSQL stopped and restarted mid-run: workers wait and resume; nothing is lost or done twice', async () => {
  const ids = ['TASK-001', 'TASK-002'];
  await withTeam(['Core', 'Parser'], async (team) => {
    await hold(team, 'TASK-001', 'implementer');
    team.startCoordinator('coord');
    team.startWorker('w1', ['architect', 'tester']);
    team.startWorker('w2', ['tester', 'implementer']);
    team.startWorker('w3', ['implementer', 'supervisor', 'architect']);
    await until(
      'the implementer runs on TASK-001',
      30_000,
      async () => (await ranBy(team, 'started', 'TASK-001', 'implementer')).length > 0,
    );
    await cluster.stop('immediate');
    // The agent finishes while the database is away: its worker must publish and report once it is back.
    await release(team, 'TASK-001', 'implementer');
    const stoppedAt = Date.now();
    await until(
      'the implementer finished during the outage',
      20_000,
      async () => (await ranBy(team, 'done', 'TASK-001', 'implementer')).length > 0,
    );
    await until('its worker waits for the database', 20_000, () =>
      /TASK-001 attempt \d+: waiting for the database/.test(team.output()),
    );
    // The outage lasts longer than two leases: claims must survive it (a lower bound, not a deadline).
    await until('the outage outlasts two leases', 20_000, () => Date.now() - stoppedAt > 2 * Number(LEASE) * 1000);
    await cluster.start();
    await team.allMerged(ids);
    for (const id of ids) {
      for (const role of AGENTS) {
        assert.equal((await ranBy(team, 'done', id, role)).length, 1, `${id} ${role} ran exactly once`);
      }
      const claims = await claimsOf(team, id);
      assert.deepEqual(
        claims.map((c) => c.status),
        ['done', 'done', 'done', 'done'],
        `${id}: every claim done, none expired or retried: ${JSON.stringify(claims)}`,
      );
    }
    const main = await git(team.origin, 'log', '--format=%s', 'main');
    for (const id of ids) for (const role of AGENTS) assert.match(main, new RegExp(`${id} ${role} by`));
  });
});

void test('a worker frozen past its lease: its late write is refused, the task completes elsewhere once', async () => {
  await withTeam(['Core'], async (team) => {
    await hold(team, 'TASK-001', 'architect');
    team.startCoordinator('coord');
    const w1 = team.startWorker('w1', AGENTS);
    await until('w1 runs the architect stage', 20_000, async () =>
      (await ranBy(team, 'started', 'TASK-001', 'architect')).includes('w1'),
    );
    process.kill(w1.pid, 'SIGSTOP');
    try {
      // Its agent (a process of its own) finishes while the worker is frozen.
      await release(team, 'TASK-001', 'architect');
      await until('w1 agent finished', 20_000, async () =>
        (await ranBy(team, 'done', 'TASK-001', 'architect')).includes('w1'),
      );
      team.startWorker('w2', AGENTS);
      await until('w2 holds a later attempt of the architect stage', 30_000, async () => {
        const claims = await claimsOf(team, 'TASK-001');
        return claims[0]?.status === 'expired' && claims.some((c) => c.attempt > 1 && c.worker === 'w2');
      });
    } finally {
      process.kill(w1.pid, 'SIGCONT');
    }
    await w1.waitFor(/TASK-001 attempt 1: (lost the claim|the late write was refused)/, 20_000);
    await team.allMerged(['TASK-001']);
    const claims = await claimsOf(team, 'TASK-001');
    assert.deepEqual(claims[0], { attempt: 1, status: 'expired', worker: 'w1' });
    assert.equal(
      claims.filter((c) => c.status === 'done').length,
      4,
      `one claim done per stage: ${JSON.stringify(claims)}`,
    );
    const main = await git(team.origin, 'log', '--format=%s', 'main');
    assert.equal((main.match(/TASK-001 architect by/g) ?? []).length, 1, `one architect commit on main:\n${main}`);
    assert.doesNotMatch(main, /TASK-001 architect by w1/, "the frozen worker's work did not reach main");
    const history = (await team.status()).tasks['TASK-001']!.history;
    assert.equal(history.filter((h) => h.event === 'merge' || h.to === 'done').length, 1, 'merged once');
  });
});

void test('two coordinators racing: one wins; when it dies the other takes over and the pipeline finishes', async () => {
  await withTeam(['Core', 'Parser'], async (team) => {
    await hold(team, 'TASK-001', 'tester');
    const a = team.startCoordinator('coord-a');
    const b = team.startCoordinator('coord-b');
    team.startWorker('w1', AGENTS);
    team.startWorker('w2', AGENTS);
    const first = await until('one coordinator leads', 20_000, () =>
      /coordinating/.test(a.output()) ? a : /coordinating/.test(b.output()) ? b : undefined,
    );
    const other = first === a ? b : a;
    await until(
      'the tester stage runs',
      30_000,
      async () => (await ranBy(team, 'started', 'TASK-001', 'tester')).length > 0,
    );
    assert.doesNotMatch(other.output(), /coordinating/, 'only one coordinator leads');
    const leader = await team.query<{ label: string }>('SELECT label FROM pipeline.leader');
    assert.equal(leader[0]!.label, `pipeline worker ${first === a ? 'coord-a' : 'coord-b'}`);
    await first.stop('SIGKILL');
    await other.waitFor(/coordinating/, 20_000);
    await release(team, 'TASK-001', 'tester');
    await team.allMerged(['TASK-001', 'TASK-002']);
    for (const id of ['TASK-001', 'TASK-002'])
      for (const role of AGENTS) assert.equal((await ranBy(team, 'done', id, role)).length, 1, `${id} ${role} once`);
  });
});
