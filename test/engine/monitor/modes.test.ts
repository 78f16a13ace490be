import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TaskSpec } from '../../../src/engine/model/schema';
import {
  assertAllMerged,
  assertGitHealthy,
  intervals,
  isAncestorOf,
  mergedAt,
  overlaps,
  requireBuild,
  runUntilIdle,
  sandbox,
  type Interval,
  type RunResult,
} from './monitorKit';

/**
 * The orchestration modes on real repositories with real agent processes: every task ends merged,
 * in an order that respects prerequisites; sequential mode has one task in flight at a time;
 * parallel mode overlaps stages but never two tasks with overlapping paths in test/implementation.
 */

requireBuild();

/** A diamond (001 → 002, 003 → 004) and a chain (005 → 006 → 007), each task with its own paths. */
const GRAPH: TaskSpec[] = [
  { id: 'TASK-001', title: 'Diamond top', paths: ['src/task-001*'] },
  { id: 'TASK-002', title: 'Diamond left', prerequisites: ['TASK-001'], paths: ['src/task-002*'] },
  { id: 'TASK-003', title: 'Diamond right', prerequisites: ['TASK-001'], paths: ['src/task-003*'] },
  { id: 'TASK-004', title: 'Diamond bottom', prerequisites: ['TASK-002', 'TASK-003'], paths: ['src/task-004*'] },
  { id: 'TASK-005', title: 'Chain one', paths: ['src/task-005*'] },
  { id: 'TASK-006', title: 'Chain two', prerequisites: ['TASK-005'], paths: ['src/task-006*'] },
  { id: 'TASK-007', title: 'Chain three', prerequisites: ['TASK-006'], paths: ['src/task-007*'] },
];

/** Every task merged after its prerequisites: by the history's times, by the merge events' order, and in git. */
async function assertPrerequisiteOrder(dir: string, r: RunResult): Promise<void> {
  const order = r.merges.filter((m) => m.commit).map((m) => m.taskId);
  assert.deepEqual([...order].sort(), Object.keys(r.state.tasks).sort(), 'each task merged exactly once');
  for (const t of Object.values(r.state.tasks)) {
    for (const pre of t.prerequisites) {
      const p = r.state.tasks[pre]!;
      assert.ok(mergedAt(p) < mergedAt(t), `${pre} merged before ${t.id} (history)`);
      assert.ok(order.indexOf(pre) < order.indexOf(t.id), `${pre} merged before ${t.id} (events)`);
      assert.ok(
        Date.parse(t.history.find((h) => h.event === 'assign')!.at) >= mergedAt(p),
        `${t.id} entered the pipeline only after ${pre} merged`,
      );
      assert.ok(await isAncestorOf(dir, p.merged_commit!, t.merged_commit!), `${pre}'s merge is in ${t.id}'s history`);
    }
  }
}

void test('sequential mode: one task at a time through every stage, in prerequisite order; current-task.txt names it', async () => {
  const sb = await sandbox({ tasks: GRAPH, orchestration: 'sequential' });
  try {
    const seen: Array<[string, string]> = [];
    const r = await runUntilIdle(sb.dir, {
      during: (p) => {
        p.events.on('agent:started', (e) =>
          seen.push([e.taskId, readFileSync(join(sb.dir, '.pipeline', 'current-task.txt'), 'utf8').trim()]),
        );
        return Promise.resolve();
      },
    });
    assert.deepEqual(r.idle.blocked, []);
    assert.deepEqual(r.idle.waiting, []);
    assert.equal(r.idle.done, GRAPH.length);
    await assertAllMerged(sb.dir, r.state);
    await assertPrerequisiteOrder(sb.dir, r);

    // In flight = from its first assignment to its merge; no two tasks' spans overlap.
    const spans = Object.values(r.state.tasks).map((t) => ({
      id: t.id,
      start: Date.parse(t.history.find((h) => h.event === 'assign')!.at),
      end: mergedAt(t),
    }));
    for (const a of spans)
      for (const b of spans)
        if (a.id < b.id)
          assert.ok(a.end <= b.start || b.end <= a.start, `${a.id} and ${b.id} were in flight at the same time`);
    // The agents' start events agree: a task's four stages run back to back before the next task starts.
    const byTask = r.started.map((s) => s.taskId);
    const runs = byTask.filter((id, i) => i === 0 || byTask[i - 1] !== id);
    assert.equal(runs.length, GRAPH.length, `tasks started one after another: ${byTask.join(' ')}`);
    assert.equal(r.started.length, GRAPH.length * 4);

    assert.ok(seen.length > 0);
    for (const [taskId, current] of seen)
      assert.equal(current, taskId, 'current-task.txt names the task being worked on');
    assert.equal(
      readFileSync(join(sb.dir, '.pipeline', 'current-task.txt'), 'utf8'),
      '',
      'and is empty once the last one is done',
    );
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('parallel mode: the same graph ends merged in prerequisite order, and different tasks are in different stages at once', async () => {
  const sb = await sandbox({ tasks: GRAPH, orchestration: 'parallel' });
  try {
    const r = await runUntilIdle(sb.dir);
    assert.deepEqual([r.idle.blocked, r.idle.waiting, r.idle.done], [[], [], GRAPH.length]);
    await assertAllMerged(sb.dir, r.state);
    await assertPrerequisiteOrder(sb.dir, r);

    const all = Object.values(r.state.tasks).flatMap(intervals);
    const concurrent: Array<[Interval, Interval]> = [];
    for (const a of all)
      for (const b of all) if (a.taskId < b.taskId && a.stage !== b.stage && overlaps(a, b)) concurrent.push([a, b]);
    assert.ok(concurrent.length > 0, 'at some moment two tasks were in two different stages');
    // Each agent works on one thing at a time.
    for (const a of all)
      for (const b of all)
        if (a !== b && a.agent === b.agent)
          assert.ok(!overlaps(a, b), `${a.agent} had ${a.taskId} and ${b.taskId} at once`);
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('parallel mode: tasks whose paths overlap are never in test or implementation at the same time', async () => {
  const tasks: TaskSpec[] = [
    { id: 'TASK-001', title: 'Lib one', paths: ['lib/**'] },
    { id: 'TASK-002', title: 'Lib two', paths: ['lib/parser/*.js'] },
    { id: 'TASK-003', title: 'Lib three', paths: ['lib/**/*.js', 'docs/lib.md'] },
    { id: 'TASK-004', title: 'Docs', paths: ['docs/**'] },
    { id: 'TASK-005', title: 'Elsewhere', paths: ['app/**'] },
  ];
  // Two testers and two implementers: only the path rule keeps overlapping tasks apart.
  const sb = await sandbox({
    tasks,
    agents: [
      ['architect', 'architect'],
      ['architect-2', 'architect'],
      ['tester', 'tester'],
      ['tester-2', 'tester'],
      ['implementer', 'implementer'],
      ['implementer-2', 'implementer'],
      ['supervisor', 'supervisor'],
    ],
  });
  try {
    const r = await runUntilIdle(sb.dir);
    assert.deepEqual([r.idle.blocked, r.idle.waiting, r.idle.done], [[], [], tasks.length]);
    await assertAllMerged(sb.dir, r.state);
    const overlapping = new Set(['TASK-001/TASK-002', 'TASK-001/TASK-003', 'TASK-002/TASK-003', 'TASK-003/TASK-004']);
    const guarded = Object.values(r.state.tasks)
      .flatMap(intervals)
      .filter((i) => i.stage === 'test' || i.stage === 'implementation');
    let pairs = 0;
    let parallelSeen = false;
    for (const a of guarded) {
      for (const b of guarded) {
        if (a.taskId >= b.taskId) continue;
        if (overlapping.has(`${a.taskId}/${b.taskId}`)) {
          pairs++;
          assert.ok(
            !overlaps(a, b),
            `${a.taskId} (${a.stage}) and ${b.taskId} (${b.stage}) overlap in paths and were guarded stages at once`,
          );
        } else if (overlaps(a, b)) parallelSeen = true;
      }
    }
    assert.ok(pairs >= 8, 'every overlapping pair was checked');
    assert.ok(
      parallelSeen,
      'tasks with disjoint paths did share the guarded stages (the rule is not just serialising everything)',
    );
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});
