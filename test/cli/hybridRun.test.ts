import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, mentions, ok, requireCli, shown, status, withRepo } from './cliKit';

/**
 * Hybrid mode and a stage's `maxAgents` in a whole run of the built CLI (scripted agents, real git):
 * a task whose paths overlap one under way enters only once that one is merged, while the others
 * run beside it; the test stage, limited to one task at once, never has two although two testers
 * are free; the architect stage, without a limit, has two at once.
 */

requireCli();

interface Step {
  at: number;
  kind: 'took' | 'done' | 'merged';
  task: string;
  stage?: string;
}

/** The run's progress lines as steps, in order: "<agent> took TASK-001 (test, …)", "TASK-001 test done", "TASK-001 merged". */
function steps(out: string): Step[] {
  const r: Step[] = [];
  out.split('\n').forEach((line, at) => {
    let m = / took (TASK-\d+) \(([a-z-]+), attempt \d+\)/.exec(line);
    if (m) return r.push({ at, kind: 'took', task: m[1]!, stage: m[2]! });
    m = /\] (TASK-\d+) ([a-z-]+) done/.exec(line);
    if (m) return r.push({ at, kind: 'done', task: m[1]!, stage: m[2]! });
    m = /\] (TASK-\d+) merged /.exec(line);
    if (m) return r.push({ at, kind: 'merged', task: m[1]! });
    return undefined;
  });
  return r;
}

function lineOf(all: Step[], kind: Step['kind'], task: string, stage?: string): number {
  const s = all.find((x) => x.kind === kind && x.task === task && (stage === undefined || x.stage === stage));
  assert.ok(s, `${task} ${kind}${stage ? ` ${stage}` : ''}`);
  return s.at;
}

/** The most tasks working at `stage` at once over the run. */
function mostAtOnce(all: Step[], stage: string): number {
  const working = new Set<string>();
  let most = 0;
  for (const s of all) {
    if (s.stage !== stage) continue;
    if (s.kind === 'took') working.add(s.task);
    else working.delete(s.task);
    most = Math.max(most, working.size);
  }
  return most;
}

test('a hybrid run: overlapping tasks one at a time, the others beside them; the test stage at its maxAgents of 1', async () => {
  await withRepo({ preset: 'scripted' }, async ({ dir }) => {
    await ok(dir, 'agent', 'add', 'architect-2', '--role', 'architect', '--command', 'scripted');
    await ok(dir, 'agent', 'add', 'tester-2', '--role', 'tester', '--command', 'scripted');
    await ok(dir, 'mode', 'orchestration', 'hybrid');
    const file = join(dir, '.pipeline', 'config.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as { stages: { name: string; maxAgents?: number }[] };
    for (const s of config.stages) if (s.name === 'test') s.maxAgents = 1;
    await writeFile(file, JSON.stringify(config, null, 2) + '\n');

    await ok(dir, 'task', 'add', 'The API', '--paths', 'src/api/**');
    await ok(dir, 'task', 'add', 'The client', '--paths', 'src/api/client.ts', '--priority', 'high');
    await ok(dir, 'task', 'add', 'The docs', '--paths', 'docs/**');
    await ok(dir, 'task', 'add', 'The web app', '--paths', 'src/web/**');

    const r = await cli(dir, ['run', '--until-idle'], { timeoutMs: 180_000, env: { SCRIPTED_AGENT_DELAY_MS: '200' } });
    assert.equal(r.code, 0, shown(r));
    mentions(r.stdout, 'Running: hybrid mode', 'Idle: 4 task(s) completed.');
    const all = steps(r.stdout);

    // TASK-002 (high) goes first; TASK-001 overlaps it and enters only once it is merged…
    assert.ok(
      lineOf(all, 'took', 'TASK-001', 'architect') > lineOf(all, 'merged', 'TASK-002'),
      `TASK-001 waited for TASK-002's merge:\n${r.stdout}`,
    );
    // …while the tasks that overlap nothing ran beside TASK-002.
    for (const id of ['TASK-003', 'TASK-004'])
      assert.ok(
        lineOf(all, 'took', id, 'architect') < lineOf(all, 'merged', 'TASK-002'),
        `${id} ran beside TASK-002:\n${r.stdout}`,
      );
    assert.equal(mostAtOnce(all, 'test'), 1, `the test stage's limit:\n${r.stdout}`);
    assert.equal(mostAtOnce(all, 'architect'), 2, `two architects at once:\n${r.stdout}`);

    const s = await status(dir);
    assert.deepEqual(
      Object.values(s.tasks).map((t) => t.status),
      ['done', 'done', 'done', 'done'],
    );
  });
});
