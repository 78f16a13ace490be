import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TASK_STATUSES, type PipelineState, type Task } from '../../../src/engine/model/schema';
import { SchedulerIndex } from '../../../src/engine/scheduler/schedulerIndex';
import { defaultAgents, iso, makeTask, prng, Sim, T0, testConfig, tid } from './schedulerFixtures';

/**
 * `SchedulerIndex.build` indexes a whole state in one pass per part (the graph from the final
 * statuses, then the tasks still on their way) rather than through `taskChanged` task by task. Over
 * random states (every status, every stage, repeated and unknown prerequisites, tasks listed before
 * their prerequisites) both give the same index: the same picture, dependents, unmet prerequisites,
 * next task, explanations and plans in every mode; and task by task in another order, the same
 * picture (explanations then name conflicting tasks in another order).
 */

const PATHS = ['src/a/**', 'src/a/x.ts', 'src/b/*.ts', 'docs/**', '**/*.json', 'package.json'];
const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;

function randomState(seed: number): { state: PipelineState; order: Task[] } {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const sim = new Sim(testConfig(), defaultAgents(1 + Math.floor(rnd() * 3)));
  const stages = sim.config.stages.map((s) => s.name);
  const n = 20 + Math.floor(rnd() * 80);
  const tasks: Task[] = [];
  for (let i = 1; i <= n; i++) {
    const prerequisites: string[] = [];
    for (let k = Math.floor(rnd() * 5); k > 0; k--) {
      const roll = rnd();
      // Mostly earlier tasks; now and then a later one, one that does not exist, or a repeat.
      if (roll < 0.1) prerequisites.push(tid(n + 1 + Math.floor(rnd() * 3)));
      else if (roll < 0.2 && prerequisites.length) prerequisites.push(prerequisites[0]!);
      else if (roll < 0.3) prerequisites.push(tid(1 + Math.floor(rnd() * n)));
      else if (i > 1) prerequisites.push(tid(1 + Math.floor(rnd() * (i - 1))));
    }
    const status = rnd() < 0.4 ? 'done' : pick(TASK_STATUSES);
    const base = makeTask(tid(i), {
      prerequisites,
      paths: Array.from({ length: Math.floor(rnd() * 3) }, () => pick(PATHS)),
      priority: pick(PRIORITIES),
      seq: Math.floor(rnd() * n),
      status,
      stage: pick(stages),
    });
    const attempt = status === 'pending' ? 0 : Math.floor(rnd() * 3);
    // A queued task's claim depends on how it entered its stage: give some a history that says so.
    const history =
      status === 'queued' && rnd() < 0.5
        ? [
            ...base.history,
            { at: iso(T0 + i), event: 'assigned', from: 'queued' as const, to: 'working' as const, stage: base.stage },
          ]
        : base.history;
    const notBefore = status === 'queued' && rnd() < 0.2 ? iso(T0 + Math.floor(rnd() * 10_000)) : null;
    tasks.push({ ...base, attempt, history, not_before: notBefore });
  }
  const state: PipelineState = { ...sim.state, tasks: Object.fromEntries(tasks.map((t) => [t.id, t])) };
  // The incremental index sees the tasks in another order, so dependents come before prerequisites.
  const order = [...tasks];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return { state, order };
}

function oneByOne(state: PipelineState, order: readonly Task[], config = testConfig()): SchedulerIndex {
  const index = SchedulerIndex.build({ ...state, tasks: {} }, config);
  for (const t of order) index.taskChanged(undefined, t);
  return index;
}

void describe('SchedulerIndex.build', () => {
  void it('gives the index that taskChanged for every task gives, over random states', () => {
    let ready = 0;
    let claims = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const { state, order } = randomState(seed);
      const config = testConfig();
      const built = SchedulerIndex.build(state, config);
      // Task by task in the state's order (as the index was built before), and in another order.
      const kept = oneByOne(state, Object.values(state.tasks), config);
      const shuffled = oneByOne(state, order, config);
      const context = `seed ${seed}`;
      assert.deepEqual(built.snapshot(), kept.snapshot(), `${context}: snapshot`);
      assert.deepEqual(built.snapshot(), shuffled.snapshot(), `${context}: snapshot, another order`);
      const ids = [...Object.keys(state.tasks), tid(9_999)];
      for (const id of ids) {
        assert.deepEqual(built.dependentsOf(id), kept.dependentsOf(id), `${context}: dependents of ${id}`);
        if (state.tasks[id]) {
          assert.deepEqual(built.unmetPrerequisites(id), kept.unmetPrerequisites(id), `${context}: unmet of ${id}`);
          assert.equal(built.holdsClaim(id), kept.holdsClaim(id), `${context}: claim of ${id}`);
          assert.equal(built.explain(id, state, T0), kept.explain(id, state, T0), `${context}: explain ${id}`);
        }
      }
      assert.deepEqual(built.next(state, T0, 5), kept.next(state, T0, 5), `${context}: next`);
      assert.deepEqual(
        built.inFlightTasks().map((t) => t.id),
        kept.inFlightTasks().map((t) => t.id),
      );
      for (const mode of ['parallel', 'sequential', 'hybrid']) {
        const a = SchedulerIndex.build(state, config).plan(mode, state, { now: T0 + 5_000 });
        const b = oneByOne(state, Object.values(state.tasks), config).plan(mode, state, { now: T0 + 5_000 });
        assert.deepEqual(a, b, `${context}: plan in ${mode} mode`);
      }
      ready += built.readyPending().length;
      claims += built.snapshot().claims.length;
    }
    // The states exercised what is compared.
    assert.ok(ready > 50, `ready tasks seen: ${ready}`);
    assert.ok(claims > 20, `claims seen: ${claims}`);
  });

  void it('keeps a task whose prerequisites repeat waiting once for each, and ready once they are done', () => {
    const sim = new Sim(testConfig());
    const a = makeTask(tid(1), { status: 'done' });
    const b = makeTask(tid(2));
    const c = makeTask(tid(3), { prerequisites: [tid(1), tid(2), tid(2)] });
    const state = { ...sim.state, tasks: { [a.id]: a, [b.id]: b, [c.id]: c } };
    const index = SchedulerIndex.build(state, sim.config);
    assert.deepEqual(index.unmetPrerequisites(tid(3)), [tid(2)]);
    assert.deepEqual(index.snapshot().unmet, { [tid(1)]: 0, [tid(2)]: 0, [tid(3)]: 1 });
    index.taskChanged(b, { ...b, status: 'done' });
    assert.deepEqual(index.readyPending(), [tid(3)]);
    assert.deepEqual(index.dependentsOf(tid(2)), [tid(3)]);
  });
});
