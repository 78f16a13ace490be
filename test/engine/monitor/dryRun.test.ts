import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Task } from '../../../src/engine/model/schema';
import { transitionTask } from '../../../src/engine/model/taskLifecycle';
import { decide } from '../../../src/engine/monitor/decide';
import { dryRun } from '../../../src/engine/monitor/dryRun';
import { iso, makeTask, Sim, T0, testConfig } from '../scheduler/schedulerFixtures';

/**
 * `dryRun` plans as if the tasks it would promote were queued, on the state's own task record and
 * index, changed for the length of the call: its plan is the one the monitor makes after really
 * promoting them, and afterwards (or after an error) the record holds the very same task objects.
 */

function seeded(): Sim {
  const sim = new Sim(testConfig());
  sim.add(
    makeTask('TASK-001', { priority: 'low' }),
    makeTask('TASK-002', { prerequisites: ['TASK-001'] }),
    makeTask('TASK-003', { priority: 'critical', paths: ['src/a/**'] }),
    makeTask('TASK-004', { priority: 'high', paths: ['src/a/x.ts'] }),
  );
  return sim;
}

function record(sim: Sim): [string, Task][] {
  return Object.entries(sim.state.tasks);
}

for (const mode of ['parallel', 'sequential', 'hybrid']) {
  void test(`a dry run plans on the promoted tasks as the monitor would, and leaves the state as it was (${mode})`, () => {
    const sim = seeded();
    sim.state.orchestration_mode = mode;
    const before = record(sim);
    const ready = sim.index.readyPending();

    const dry = dryRun({ state: sim.state, config: sim.config, scheduler: sim.index, now: sim.now });
    assert.deepEqual(dry.promote, ['TASK-001', 'TASK-003', 'TASK-004']);
    assert.ok(dry.plan.assignments.length > 0, 'an idle architect takes a promoted task');

    // The same objects under the same keys, in the same order; the index as it was.
    const after = record(sim);
    assert.equal(after.length, before.length);
    after.forEach(([id, t], i) => {
      assert.equal(id, before[i]![0]);
      assert.equal(t, before[i]![1], `${id} is the object it was`);
    });
    assert.deepEqual(sim.index.readyPending(), ready);

    // What the monitor plans after promoting them for real.
    for (const id of dry.promote) sim.setTask(transitionTask(sim.task(id), { type: 'ready' }, iso(T0)));
    const real = decide({ state: sim.state, config: sim.config, scheduler: sim.index, now: sim.now });
    assert.deepEqual(dry.plan, real.plan);
  });
}

void test('a dry run that fails midway puts the tasks it changed back', () => {
  const sim = seeded();
  sim.state.orchestration_mode = 'no-such-mode';
  const before = record(sim);
  assert.throws(
    () => dryRun({ state: sim.state, config: sim.config, scheduler: sim.index, now: sim.now }),
    /no-such-mode/,
  );
  const after = record(sim);
  after.forEach(([id, t], i) => assert.equal(t, before[i]![1], `${id} is the object it was`));
  assert.equal(sim.state.tasks['TASK-001']!.status, 'pending');
});
