import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TypedEvents } from '../../../src/engine/model/events';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import {
  ProgressBoard,
  progressFileOf,
  readProgressFile,
  type AgentProgress,
} from '../../../src/engine/progress/progressBoard';

function progress(agentId: string, step: string | null, input = 0): AgentProgress {
  return {
    agentId,
    taskId: 'TASK-001',
    stage: 'test',
    attempt: 1,
    startedAt: 1,
    step,
    stepAt: step ? 2 : null,
    steps: step ? 1 : 0,
    message: null,
    usage: { input, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: 0 },
    session: null,
  };
}

void test('progress board: the leader announces each change, writes the file for followers, and a follower reads it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'progress-board-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = progressFileOf(dir);
  const events = new TypedEvents<PipelineEventMap>();
  const seen: PipelineEventMap['agent:progress'][] = [];
  events.on('agent:progress', (e) => seen.push(e));
  const leader = new ProgressBoard(file, events, 10_000);

  leader.update(progress('b-agent', null));
  leader.update(progress('a-agent', 'Bash: npm test', 100), 'a-agent TASK-001 (test): Bash: npm test');
  leader.update(progress('a-agent', 'Bash: npm test', 250));
  // Announced at once, each; a line only with a new step.
  assert.deepEqual(
    seen.map((e) => [e.agentId, e.progress?.usage?.input, e.line]),
    [
      ['b-agent', 0, undefined],
      ['a-agent', 100, 'a-agent TASK-001 (test): Bash: npm test'],
      ['a-agent', 250, undefined],
    ],
  );
  assert.deepEqual(Object.keys(leader.all()), ['a-agent', 'b-agent'], 'in agent order');
  // Written once for the three changes (the interval is long; flush writes what is pending).
  await assert.rejects(readFile(file), 'nothing written before the interval');
  await leader.flush();
  const written = await readProgressFile(file);
  assert.equal(written.pid, process.pid);
  assert.equal(written.agents['a-agent']?.usage?.input, 250);

  const follower = new ProgressBoard(file, new TypedEvents<PipelineEventMap>());
  assert.equal(await follower.refresh(), true);
  assert.deepEqual(follower.all(), leader.all());
  assert.equal(await follower.refresh(), false, 'unchanged file: nothing to do');

  // The attempt ended: announced with no progress, gone from the file.
  leader.clear('b-agent');
  assert.equal(seen.at(-1)?.progress, null);
  await leader.flush();
  // A file system with coarse times could keep the mtime: make it differ, as a later write would.
  await utimes(file, new Date(), new Date(Date.now() + 5000));
  assert.equal(await follower.refresh(), true);
  assert.deepEqual(Object.keys(follower.all()), ['a-agent']);

  // The leader stops: nothing is in progress any more, for anyone reading the file.
  await leader.reset();
  assert.deepEqual((await readProgressFile(file)).agents, {});
  // A leader's board is never replaced by the file.
  const again = new ProgressBoard(file, events, 10_000);
  again.update(progress('c-agent', 'Read README.md'));
  assert.equal(await again.refresh(), false);
  assert.deepEqual(Object.keys(again.all()), ['c-agent']);
  await again.reset();
});

void test('progress file: missing or damaged reads as nobody at work', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'progress-board-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.deepEqual(await readProgressFile(join(dir, 'none.json')), { at: 0, pid: 0, agents: {} });
  const bad = join(dir, 'bad.json');
  await writeFile(bad, '{"agents": 3');
  assert.deepEqual(await readProgressFile(bad), { at: 0, pid: 0, agents: {} });
});
