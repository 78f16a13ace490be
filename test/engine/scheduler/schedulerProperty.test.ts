import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { SchedulerIndex } from '../../../src/engine/scheduler/schedulerIndex';
import type { Task } from '../../../src/engine/model/schema';
import { defaultAgents, makeTask, prng, Sim, testConfig, tid } from './schedulerFixtures';

/**
 * Property tests: random prerequisite graphs, random paths, random agent counts and random outcomes
 * (failures with back-off, changes requested, merge conflicts), run to the end in both modes. At
 * every step: overlapping tasks are never in the conflict stages together, the index's claims agree
 * with the simulation's own bookkeeping, sequential mode has at most one task started, and now and
 * then the index rebuilt from the state equals the one kept up to date. Seeds make failures
 * reproducible: a failing seed is in the assertion message.
 */

const PATHS = [
  'src/engine/**',
  'src/engine/schema.ts',
  'src/engine/scheduler/*.ts',
  'src/views/**',
  'src/views/tree.ts',
  'test/**',
  'docs/readme.md',
  '**/*.json',
  'package.json',
  'src/*',
];
const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;

function randomTasks(rnd: () => number, n: number, edgesPerTask: number): Task[] {
  const tasks: Task[] = [];
  for (let i = 1; i <= n; i++) {
    const prerequisites = new Set<string>();
    for (let k = 0; k < edgesPerTask && i > 1; k++)
      if (rnd() < 0.6) prerequisites.add(tid(1 + Math.floor(rnd() * (i - 1))));
    const paths = Array.from(
      { length: Math.floor(rnd() * 3) },
      () => PATHS[Math.floor(rnd() * PATHS.length)] as string,
    );
    tasks.push(
      makeTask(tid(i), {
        prerequisites: [...prerequisites],
        paths,
        priority: PRIORITIES[Math.floor(rnd() * 4)],
        seq: Math.floor(rnd() * n),
      }),
    );
  }
  // Shuffle, so batches list dependents before their prerequisites.
  for (let i = tasks.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [tasks[i], tasks[j]] = [tasks[j] as Task, tasks[i] as Task];
  }
  return tasks;
}

/** Returns how many times a queued task was seen held back by a path conflict (the property must be exercised). */
function simulate(seed: number, mode: string): number {
  const rnd = prng(seed);
  const sim = new Sim(testConfig(), defaultAgents(1 + Math.floor(rnd() * 3)));
  const tasks = randomTasks(rnd, 15 + Math.floor(rnd() * 30), 3);
  sim.add(...tasks);
  const context = `seed ${seed}, ${mode}`;
  let heldBack = 0;
  sim.run(mode, {
    maxSteps: 5_000,
    act: (inFlight) => {
      const t = inFlight[Math.floor(rnd() * inFlight.length)] as Task;
      const roll = rnd();
      if (t.status === 'working' && roll < 0.1) sim.fail(t.id, 1 + Math.floor(rnd() * 5_000));
      else if (t.status === 'working' && t.stage === 'supervisor' && roll < 0.2) sim.changesRequested(t.id);
      else if (t.status === 'merging' && roll < 0.1) sim.mergeConflict(t.id);
      else sim.advance(t.id);
    },
    onStep: () => {
      if (mode === 'sequential') {
        const started = Object.values(sim.state.tasks).filter(
          (t) => t.attempt > 0 && ['queued', 'working', 'merging'].includes(t.status),
        );
        assert.ok(
          started.length <= 1,
          `${context}: step ${sim.step}: ${started.map((t) => t.id).join(', ')} started together`,
        );
      }
      for (const t of Object.values(sim.state.tasks)) {
        if (
          t.status === 'queued' &&
          sim.config.conflictStages.includes(t.stage) &&
          sim.index.explain(t.id, sim.state, sim.now).includes('conflict with')
        )
          heldBack++;
      }
      if (rnd() < 0.1) {
        const rebuilt = SchedulerIndex.build(sim.state, sim.config);
        assert.deepEqual(
          rebuilt.snapshot(),
          sim.index.snapshot(),
          `${context}: step ${sim.step}: rebuilt index differs`,
        );
      }
    },
  });
  for (const t of Object.values(sim.state.tasks))
    assert.equal(t.status, 'done', `${context}: ${t.id} ended ${t.status}`);
  // Prerequisites were merged before a dependent started.
  const firstStart = new Map<string, number>();
  const lastStep = new Map<string, number>();
  for (const a of sim.log) {
    if (!firstStart.has(a.taskId)) firstStart.set(a.taskId, a.step);
    lastStep.set(a.taskId, a.step);
  }
  for (const t of tasks)
    for (const p of t.prerequisites)
      assert.ok(
        (firstStart.get(t.id) ?? 0) > (lastStep.get(p) ?? Infinity),
        `${context}: ${t.id} started before ${p} merged`,
      );
  return heldBack;
}

void describe('scheduler properties (seeded)', () => {
  for (const mode of ['parallel', 'sequential']) {
    void it(`${mode}: random graphs and paths keep every invariant`, () => {
      let heldBack = 0;
      for (let seed = 1; seed <= 40; seed++) heldBack += simulate(seed * 7919, mode);
      if (mode === 'parallel') assert.ok(heldBack > 50, `conflicts were exercised (${heldBack} held back)`);
    });
  }

  void it('checkNewTasks rejects a batch exactly when it has a cycle', () => {
    const rnd = prng(99);
    for (let round = 0; round < 300; round++) {
      const n = 2 + Math.floor(rnd() * 12);
      const batch = Array.from({ length: n }, (_, i) => ({
        id: tid(i + 1),
        prerequisites: [
          ...new Set(Array.from({ length: Math.floor(rnd() * 3) }, () => tid(1 + Math.floor(rnd() * n)))),
        ],
      }));
      // Reference: Kahn's algorithm.
      const indegree = new Map(batch.map((t) => [t.id, t.prerequisites.length]));
      const queue = batch.filter((t) => t.prerequisites.length === 0).map((t) => t.id);
      let seen = 0;
      while (queue.length) {
        const id = queue.pop() as string;
        seen++;
        for (const t of batch)
          if (t.prerequisites.includes(id)) {
            const d = (indegree.get(t.id) ?? 0) - 1;
            indegree.set(t.id, d);
            if (d === 0) queue.push(t.id);
          }
      }
      const hasCycle = seen < n;
      const idx = SchedulerIndex.build(new Sim().state, testConfig());
      let threw = false;
      try {
        idx.checkNewTasks(batch);
      } catch (e) {
        assert.ok(isPipelineError(e) && e.code === 'cycle');
        // The named cycle is real: each task lists the next.
        const ids = e.message.split(': ')[1]?.split(' (')[0]?.split(' → ') ?? [];
        assert.equal(ids[0], ids.at(-1));
        for (let i = 0; i + 1 < ids.length; i++)
          assert.ok(batch.find((t) => t.id === ids[i])?.prerequisites.includes(ids[i + 1] as string), e.message);
        threw = true;
      }
      assert.equal(threw, hasCycle, JSON.stringify(batch));
    }
  });
});
