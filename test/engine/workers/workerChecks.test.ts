import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireCli } from '../../cli/cliKit';
import { PostgresCluster } from '../../support/postgresCluster';
import { git, makeTeam } from './workersKit';

/**
 * A stage's check runs where the agent's work is: in the worker's clone, not on the coordinator.
 * The check comes from the coordinator's configuration (the workers' copies do not have it), runs
 * after the agent's marker and before the branch is published; a failed check publishes nothing,
 * fails the attempt with the worker's output as the coordinator's evidence, and the retry (on any
 * worker) runs it again.
 */

requireCli();

let cluster: PostgresCluster;
before(async () => {
  cluster = await PostgresCluster.create();
});
after(async () => {
  await cluster?.dispose();
});

// Passes only in a clone where the implementer's commit is (the agent writes work/<task>.txt), and
// fails once for a task while its "fail-check" gate file exists (the gate is removed as it fails).
const CHECK =
  'f="$GATE_DIR/fail-check-$PIPELINE_TASK_ID"; ' +
  'if [ -e "$f" ]; then rm "$f"; echo "check failed for $PIPELINE_TASK_ID on $WORKER_NAME"; exit 1; fi; ' +
  'grep -q "implementer by" "work/$PIPELINE_TASK_ID.txt" && echo "checked $PIPELINE_TASK_ID on $WORKER_NAME in $(pwd)"';

void test("a stage's check runs on the worker, in its clone; a failed check fails the attempt with the worker's output and nothing published", async () => {
  const ids = ['TASK-001', 'TASK-002'];
  const team = await makeTeam(cluster, ['Core', 'Parser']);
  try {
    // Only the coordinator's configuration has the check.
    const configFile = join(team.coord, '.pipeline', 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8')) as { stages?: { name: string; role: string }[] };
    config.stages = [
      { name: 'architect', role: 'architect' },
      { name: 'test', role: 'tester' },
      { name: 'implementation', role: 'implementer', check: CHECK } as { name: string; role: string },
      { name: 'supervisor', role: 'supervisor' },
    ];
    await writeFile(configFile, JSON.stringify(config, null, 2) + '\n');
    await writeFile(join(team.gate, 'fail-check-TASK-002'), '');

    team.startCoordinator('coord');
    team.startWorker('w1', ['architect', 'tester', 'supervisor']);
    team.startWorker('w2', ['implementer']);
    const s = await team.allMerged(ids, 120_000);

    // Each task's check ran on w2, in w2's worktree of the implementer (the coordinator's clone has
    // no such worktree), and its output is the coordinator's evidence.
    // (A task's attempts are numbered across its stages: its implementation is attempt 3 or later.)
    const evidence = async (id: string): Promise<string[]> => {
      const dir = join(team.coord, '.pipeline', 'evidence', id);
      const files = (await readdir(dir))
        .filter((f) => f.startsWith('implementation.attempt-'))
        .sort((a, b) => parseInt(a.slice(23), 10) - parseInt(b.slice(23), 10));
      return Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
    };
    const [passed, ...more] = await evidence('TASK-001');
    assert.equal(more.length, 0, 'TASK-001 was checked once');
    assert.match(passed!, /# on the worker, attempt \d+ of TASK-001, exit 0/);
    assert.match(passed!, /checked TASK-001 on w2 in \S*\/w2\.pipeline-worktrees\/implementer$/m);

    // TASK-002's first implementation failed its check: the attempt failed with the check named,
    // its evidence is the worker's output, nothing of it was published then, and the retry passed.
    const t2 = s.tasks['TASK-002']!;
    const fail = t2.history.find((h) => h.event === 'fail');
    assert.match(fail?.note ?? '', /the implementation check .* failed/);
    const [failedRun, retried, ...rest] = await evidence('TASK-002');
    assert.equal(rest.length, 0, 'TASK-002 was checked twice');
    assert.match(failedRun!, /exit 1/);
    assert.match(failedRun!, /check failed for TASK-002 on w2/);
    assert.match(retried!, /checked TASK-002 on w2/);
    const claims = await team.query<{ attempt: number; check_passed: boolean; published: string | null }>(
      `SELECT attempt, check_passed, published FROM pipeline.claims WHERE task_id = 'TASK-002' AND stage = 'implementation' ORDER BY attempt`,
    );
    assert.deepEqual(
      claims.map((c) => [c.attempt, c.check_passed, c.published !== null]),
      [
        [claims[0]!.attempt, false, false],
        [claims[1]!.attempt, true, true],
      ],
    );
    // The failed attempt's commit never reached origin's main: one implementer commit per task there.
    const log = await git(team.origin, 'log', '--format=%s', 'main');
    assert.equal(log.split('\n').filter((l) => /^TASK-002 implementer by/.test(l)).length, 1, log);
  } catch (e) {
    process.stdout.write(team.output() + '\n');
    throw e;
  } finally {
    await team.cleanup();
  }
});
