import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PostgresCluster } from '../support/postgresCluster';
import { freshDatabase } from '../engine/postgres/pgTestKit';
import { cli, mentions, ok, requireCli, shown, stateFiles, status, withRepo, type StatusJson } from './cliKit';

/**
 * A pipeline that outgrew one machine takes its state along: `pipeline db import` copies the file
 * journal's state (done tasks with their history, pending ones, agents) into the empty database,
 * leaves the files as they were, refuses a database that already holds a state, and the pipeline
 * goes on from there on PostgreSQL, numbering new tasks after the old ones.
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

/** What must survive the move: every task and agent as status shows them, and the queues. */
function logical(s: StatusJson) {
  return { tasks: s.tasks, agents: s.agents, queues: s.queues, mode: s.mode, orchestration: s.orchestration_mode };
}

void test('db import copies the files’ state into the empty database, leaves the files unchanged, and the pipeline goes on there', async () => {
  const url = await freshDatabase(cluster, 'imp');
  await withRepo({ init: true }, async ({ dir }) => {
    const env = { env: { [ENV]: url }, timeoutMs: 120_000 };
    const onPg = async (...args: string[]) => {
      const r = await cli(dir, args, env);
      assert.equal(r.code, 0, `pipeline ${args.join(' ')} should succeed:\n${shown(r)}`);
      return r.stdout;
    };
    // On files: four agents, three tasks run to merged, one removed, one waiting.
    for (const a of ['architect', 'tester', 'implementer', 'supervisor'])
      await ok(dir, 'agent', 'add', a, '--role', a, '--command', 'scripted');
    await ok(dir, 'task', 'add', 'Core module', '--paths', 'src/core/**');
    await ok(dir, 'task', 'add', 'Parser', '--depends-on', 'TASK-001', '--paths', 'src/parser/**');
    await ok(dir, 'task', 'add', 'Formatter', '--paths', 'src/format/**');
    await ok(dir, 'run', '--until-idle');
    await ok(dir, 'task', 'add', 'Scratch');
    await ok(dir, 'task', 'remove', 'TASK-004');
    await ok(dir, 'task', 'add', 'Printer', '--depends-on', 'TASK-002', '--priority', 'high');
    const before = await status(dir);
    assert.deepEqual(before.queues.completed, ['TASK-001', 'TASK-002', 'TASK-003']);
    const files = await stateFiles(dir);

    const configFile = join(dir, '.pipeline', 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    config.store = { kind: 'postgres', urlEnv: ENV };
    await writeFile(configFile, JSON.stringify(config, null, 2) + '\n');
    await onPg('db', 'migrate');
    const imported = JSON.parse(await onPg('db', 'import', '--json')) as {
      tasks: number;
      agents: number;
      notes: string[];
    };
    assert.equal(imported.tasks, 4);
    assert.equal(imported.agents, 4);
    assert.deepEqual(imported.notes, [], 'the numbering came along: no note');

    // The database's pipeline is the files' pipeline; the files did not change.
    const moved = JSON.parse(await onPg('status', '--json')) as StatusJson;
    assert.deepEqual(logical(moved), logical(before));
    assert.equal(moved.tasks['TASK-001']!.history.at(-1)?.event, 'merged');
    assert.deepEqual(await stateFiles(dir), files);

    // A second import is refused: the database holds a state now; nothing changes.
    const again = await cli(dir, ['db', 'import'], env);
    assert.equal(again.code, 2, shown(again));
    mentions(again.stderr, 'already holds a pipeline state', 'empty database');
    assert.deepEqual(logical(JSON.parse(await onPg('status', '--json')) as StatusJson), logical(before));

    // The pipeline goes on in the database: a new task takes the next number, the rest merge.
    mentions(await onPg('task', 'add', 'Linter'), 'TASK-006');
    await onPg('run', '--until-idle');
    const done = JSON.parse(await onPg('status', '--json')) as StatusJson;
    assert.deepEqual(done.queues.completed, ['TASK-001', 'TASK-002', 'TASK-003', 'TASK-005', 'TASK-006']);
  });
});

void test('db import is refused with its reason: no PostgreSQL store configured, or nothing to import', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const noStore = await cli(dir, ['db', 'import'], { timeoutMs: 60_000 });
    assert.equal(noStore.code, 2, shown(noStore));
    mentions(noStore.stderr, 'does not name a PostgreSQL store', 'config.json', '"store"');

    const url = await freshDatabase(cluster, 'imp');
    const configFile = join(dir, '.pipeline', 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
    config.store = { kind: 'postgres', urlEnv: ENV };
    await writeFile(configFile, JSON.stringify(config, null, 2) + '\n');
    const env = { env: { [ENV]: url }, timeoutMs: 60_000 };
    assert.equal((await cli(dir, ['db', 'migrate'], env)).code, 0);
    const empty = await cli(dir, ['db', 'import'], env);
    assert.equal(empty.code, 2, shown(empty));
    mentions(empty.stderr, 'no state to import', 'holds no records');
  });
});
