import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { requireCli } from '../../cli/cliKit';
import { PostgresCluster } from '../../support/postgresCluster';
import { makeTeam, ranBy } from './workersKit';

/**
 * Three workers, each in its own clone and process, and a coordinator, on one PostgreSQL database
 * and one bare origin: a pipeline of four tasks runs through the four stages to merged, every
 * stage's branch travelling through origin, and origin's main holds every task's work.
 */

requireCli();

let cluster: PostgresCluster;
before(async () => {
  cluster = await PostgresCluster.create();
});
after(async () => {
  await cluster?.dispose();
});

void test('three workers run a pipeline of four tasks to merged on origin', async () => {
  const ids = ['TASK-001', 'TASK-002', 'TASK-003', 'TASK-004'];
  const team = await makeTeam(cluster, ['Core', 'Parser', 'Formatter', 'Printer']);
  try {
    const started = Date.now();
    team.startCoordinator('coord');
    team.startWorker('w1', ['architect', 'tester']);
    team.startWorker('w2', ['tester', 'implementer']);
    team.startWorker('w3', ['implementer', 'supervisor', 'architect']);
    const s = await team.allMerged(ids);
    assert.deepEqual(s.queues.completed, ids);
    // Every stage ran once, on a worker that runs its agent, and its commit is on origin's main.
    const hosts: Record<string, string[]> = {
      architect: ['w1', 'w3'],
      tester: ['w1', 'w2'],
      implementer: ['w2', 'w3'],
      supervisor: ['w3'],
    };
    for (const id of ids) {
      const work = await team.query<{ n: string }>(
        'SELECT count(*) AS n FROM pipeline.claims WHERE task_id = $1 AND status = $2',
        [id, 'done'],
      );
      assert.equal(work[0]!.n, '4', `${id}: one claim done per stage`);
      for (const [role, on] of Object.entries(hosts)) {
        const by = await ranBy(team, 'done', id, role);
        assert.equal(by.length, 1, `${id} ${role} ran once: ${by.join(', ')}`);
        assert.ok(on.includes(by[0]!), `${id} ${role} ran on ${by[0]}, a worker that runs it`);
      }
    }
    const main = await team.query<{ id: string }>(`SELECT id FROM pipeline.tasks WHERE status = 'done' ORDER BY id`);
    assert.deepEqual(
      main.map((r) => r.id),
      ids,
    );
    process.stdout.write(`# four tasks through three workers in ${Date.now() - started} ms\n`);
  } catch (e) {
    process.stdout.write(team.output() + '\n');
    throw e;
  } finally {
    await team.cleanup();
  }
});
