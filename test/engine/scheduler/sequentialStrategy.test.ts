import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Task } from '../../../src/engine/model/schema';
import { transitionTask } from '../../../src/engine/model/taskLifecycle';
import { defaultAgents, iso, makeTask, prng, Sim, testConfig, tid } from './schedulerFixtures';

/** Tasks that have started and are not finished: sequential mode allows one. */
function started(sim: Sim): Task[] {
  return Object.values(sim.state.tasks).filter(
    (t) => t.attempt > 0 && ['queued', 'working', 'merging'].includes(t.status),
  );
}

function assertOneAtATime(sim: Sim): void {
  const s = started(sim);
  assert.ok(
    s.length <= 1,
    `step ${sim.step}: ${s.map((t) => `${t.id} ${t.status}@${t.stage}`).join(', ')} in flight together`,
  );
  if (s[0]) assert.equal(sim.state.current_task, s[0].id, 'the task in flight is the current one');
}

void describe('sequential strategy', () => {
  void it('takes one task through every stage before the next, on a diamond', () => {
    const sim = new Sim(testConfig(), defaultAgents(2));
    sim.add(
      makeTask(tid(1)),
      makeTask(tid(2), { prerequisites: [tid(1)] }),
      makeTask(tid(3), { prerequisites: [tid(1)], priority: 'high' }),
      makeTask(tid(4), { prerequisites: [tid(2), tid(3)] }),
    );
    sim.run('sequential', { onStep: () => assertOneAtATime(sim) });
    const order = sim.log.map((a) => `${a.taskId}@${a.stage}`);
    const stages = ['architect', 'test', 'implementation', 'supervisor'];
    assert.deepEqual(
      order,
      [tid(1), tid(3), tid(2), tid(4)].flatMap((id) => stages.map((s) => `${id}@${s}`)),
    );
  });

  void it('reports the current task, keeps it while a more urgent one arrives, and clears it at the end', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)));
    sim.promoteReady();
    assert.equal(sim.plan('sequential').currentTask, tid(1));
    sim.complete(tid(1));
    sim.add(makeTask(tid(2), { priority: 'critical' }));
    sim.promoteReady();
    const r = sim.plan('sequential');
    assert.equal(r.currentTask, tid(1));
    assert.deepEqual(r.assignments, [{ taskId: tid(1), agentId: 'tester', stage: 'test' }]);
    assert.match(
      sim.index.explain(tid(2), { ...sim.state, orchestration_mode: 'sequential' }, sim.now),
      /one task at a time, and the current one is TASK-001/,
    );
    sim.run('sequential', { onStep: () => assertOneAtATime(sim) });
    assert.equal(sim.plan('sequential').currentTask, null);
  });

  void it('moves on when the current task is blocked, and takes it up first once it is released', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)), makeTask(tid(2)), makeTask(tid(3)));
    sim.promoteReady();
    sim.plan('sequential');
    sim.complete(tid(1));
    sim.plan('sequential');
    sim.block(tid(1)); // blocked in test
    assert.equal(sim.plan('sequential').currentTask, tid(2));
    sim.run('sequential', { until: () => sim.task(tid(2)).status === 'done', onStep: () => assertOneAtATime(sim) });
    // A person releases TASK-001: it comes back queued at test, past the first stage, and goes
    // before TASK-003, which has not started.
    sim.setTask(transitionTask(sim.task(tid(1)), { type: 'unblock' }, iso(sim.now)));
    sim.promoteReady();
    const r = sim.plan('sequential');
    assert.equal(r.currentTask, tid(1));
    assert.deepEqual(r.assignments, [{ taskId: tid(1), agentId: 'tester', stage: 'test' }]);
    sim.run('sequential', { onStep: () => assertOneAtATime(sim) });
    assert.equal(sim.log.at(-1)?.taskId, tid(3));
  });

  void it('drains work left over from parallel mode one task at a time before starting new work', () => {
    const rnd = prng(11);
    const sim = new Sim(testConfig(), defaultAgents(2));
    for (let i = 1; i <= 12; i++) sim.add(makeTask(tid(i), { paths: [`src/m${i % 3}/**`] }));
    for (let i = 0; i < 12; i++) {
      sim.promoteReady();
      sim.plan('parallel');
      sim.checkInvariants();
      const f = sim.inFlight();
      if (f.length) sim.advance(f[Math.floor(rnd() * f.length)]!.id);
    }
    // A drained switch: in-flight stage work finishes, tasks wait between stages.
    for (const t of sim.inFlight()) if (t.status === 'working') sim.complete(t.id);
    const leftovers = started(sim).length;
    assert.ok(leftovers > 1, 'the parallel phase left several tasks between stages');
    sim.run('sequential', {
      onStep: () => {
        assert.ok(started(sim).length <= leftovers, 'no new task starts while leftovers remain');
        const fresh = sim.log.filter(
          (a) => a.step === sim.step && a.stage === 'architect' && sim.task(a.taskId).attempt === 1,
        );
        if (fresh.length) assert.equal(started(sim).length, 1, 'a new task starts only when it is the only one');
      },
    });
  });

  void it('waits for the current task backing off, with wakeAt', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)), makeTask(tid(2)));
    sim.promoteReady();
    sim.plan('sequential');
    sim.fail(tid(1), 5_000);
    const r = sim.plan('sequential');
    assert.equal(r.currentTask, tid(1));
    assert.deepEqual(r.assignments, []);
    assert.equal(r.wakeAt, sim.now + 5_000);
    sim.now += 5_000;
    assert.deepEqual(sim.plan('sequential').assignments, [
      { taskId: tid(1), agentId: 'architect', stage: 'architect' },
    ]);
  });
});
