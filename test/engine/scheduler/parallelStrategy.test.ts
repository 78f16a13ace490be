import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultAgents, makeTask, prng, Sim, testConfig, tid } from './schedulerFixtures';

/** The order tasks reached the last stage's agent: the merge order. */
function mergeOrder(sim: Sim): string[] {
  return sim.log.filter((a) => a.stage === 'supervisor').map((a) => a.taskId);
}

void describe('parallel strategy', () => {
  void it('runs a diamond (A→B, A→C, B,C→D) respecting prerequisites', () => {
    const sim = new Sim();
    sim.add(
      makeTask(tid(1)),
      makeTask(tid(2), { prerequisites: [tid(1)] }),
      makeTask(tid(3), { prerequisites: [tid(1)] }),
      makeTask(tid(4), { prerequisites: [tid(2), tid(3)] }),
    );
    sim.run('parallel');
    const started = (id: string): number => sim.log.find((a) => a.taskId === id)?.step ?? -1;
    const merged = (id: string): number => sim.log.filter((a) => a.taskId === id).at(-1)?.step ?? -1;
    assert.ok(started(tid(2)) > merged(tid(1)) && started(tid(3)) > merged(tid(1)));
    assert.ok(started(tid(4)) > merged(tid(2)) && started(tid(4)) > merged(tid(3)));
    assert.deepEqual(mergeOrder(sim), [tid(1), tid(2), tid(3), tid(4)]);
  });

  void it('really overlaps stages: architect on D while tester on C, implementer on B, supervisor on A', () => {
    const sim = new Sim();
    sim.add(...[1, 2, 3, 4, 5].map((n) => makeTask(tid(n))));
    const snapshots: Record<string, string>[] = [];
    for (let tick = 0; tick < 4; tick++) {
      sim.promoteReady();
      sim.plan('parallel');
      snapshots.push(sim.workingByStage());
      for (const t of sim.inFlight()) sim.complete(t.id); // every agent finishes its stage
    }
    assert.deepEqual(snapshots[3], { architect: tid(4), test: tid(3), implementation: tid(2), supervisor: tid(1) });
  });

  void it('fills downstream stages first, so work in flight drains before new work starts', () => {
    // One agent that can do both the first and the last stage: it must review before starting anew.
    const config = testConfig({
      stages: [
        { name: 'architect', role: 'dev' },
        { name: 'test', role: 'tester' },
        { name: 'implementation', role: 'implementer' },
        { name: 'supervisor', role: 'dev' },
      ],
    });
    const sim = new Sim(config, [
      defaultAgents()[1]!,
      defaultAgents()[2]!,
      { ...defaultAgents()[0]!, id: 'dev', role: 'dev' },
    ]);
    sim.add(makeTask(tid(1), {}, config), makeTask(tid(2), {}, config));
    sim.promoteReady();
    sim.setTask({ ...sim.task(tid(1)), stage: 'supervisor' });
    const r = sim.plan('parallel');
    assert.deepEqual(r.assignments, [{ taskId: tid(1), agentId: 'dev', stage: 'supervisor' }]);
  });

  void it('orders ready tasks by priority, then age', () => {
    const sim = new Sim();
    sim.add(
      makeTask(tid(1), { priority: 'low' }),
      makeTask(tid(2), { priority: 'medium', seq: 20 }),
      makeTask(tid(3), { priority: 'medium', seq: 10 }),
      makeTask(tid(4), { priority: 'critical' }),
      makeTask(tid(5), { priority: 'high' }),
    );
    sim.run('parallel');
    const architectOrder = sim.log.filter((a) => a.stage === 'architect').map((a) => a.taskId);
    assert.deepEqual(architectOrder, [tid(4), tid(5), tid(3), tid(2), tid(1)]);
  });

  void it('gives every idle agent of a role its own task', () => {
    const sim = new Sim(testConfig(), defaultAgents(3));
    sim.add(...[1, 2, 3, 4].map((n) => makeTask(tid(n))));
    sim.promoteReady();
    const r = sim.plan('parallel');
    assert.deepEqual(
      r.assignments.map((a) => `${a.agentId}:${a.taskId}`),
      ['architect-1:TASK-001', 'architect-2:TASK-002', 'architect-3:TASK-003'],
    );
    sim.run('parallel', { pick: (f) => f[f.length - 1]! });
    assert.equal(mergeOrder(sim).length, 4);
  });

  void it('runs chains and wide fans to the end', () => {
    const sim = new Sim(testConfig(), defaultAgents(2));
    for (let i = 1; i <= 10; i++) sim.add(makeTask(tid(i), { prerequisites: i === 1 ? [] : [tid(i - 1)] }));
    for (let i = 11; i <= 40; i++) sim.add(makeTask(tid(i), { prerequisites: [tid(1)] }));
    sim.add(makeTask(tid(41), { prerequisites: Array.from({ length: 40 }, (_, i) => tid(i + 1)) }));
    let maxWorking = 0;
    const rnd = prng(3);
    sim.run('parallel', {
      pick: (f) => f[Math.floor(rnd() * f.length)]!,
      onStep: () => (maxWorking = Math.max(maxWorking, sim.inFlight().length)),
    });
    const order = mergeOrder(sim);
    for (let i = 2; i <= 10; i++)
      assert.ok(order.indexOf(tid(i)) > order.indexOf(tid(i - 1)), 'a chain merges in order');
    assert.equal(order.at(-1), tid(41));
    assert.ok(maxWorking >= 6, `the fan runs in parallel (max ${maxWorking} in flight)`);
  });

  void it('never puts overlapping tasks in test/implementation together, counting claims taken in the same plan', () => {
    const sim = new Sim(testConfig(), defaultAgents(2));
    sim.add(
      makeTask(tid(1), { paths: ['src/engine/**'] }),
      makeTask(tid(2), { paths: ['src/engine/schema.ts'] }),
      makeTask(tid(3), { paths: ['docs/**'] }),
    );
    sim.promoteReady();
    for (const id of [tid(1), tid(2), tid(3)]) sim.setTask({ ...sim.task(id), stage: 'test' });
    const r = sim.plan('parallel');
    assert.deepEqual(
      r.assignments.map((a) => a.taskId),
      [tid(1), tid(3)],
    );
    assert.match(
      sim.index.explain(tid(2), sim.state, sim.now),
      /conflict with TASK-001 .*"src\/engine\/\*\*" overlaps "src\/engine\/schema.ts"/,
    );
    sim.run('parallel');
  });

  void it('keeps the claim between test and implementation, and releases it at the supervisor', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1), { paths: ['src/a.ts'] }), makeTask(tid(2), { paths: ['src/a.ts'], priority: 'low' }));
    sim.promoteReady();
    sim.plan('parallel'); // architect: 1
    sim.complete(tid(1));
    sim.plan('parallel'); // test: 1, architect: 2
    sim.complete(tid(1)); // 1 waits for an implementer... which is free, but first 2 finishes architecture
    sim.complete(tid(2));
    sim.setAgent({ ...sim.state.agents['implementer']!, status: 'offline' });
    sim.plan('parallel');
    assert.equal(
      sim.task(tid(2)).status,
      'queued',
      'TASK-002 may not start its tests while TASK-001 sits between test and implementation',
    );
    assert.ok(sim.index.holdsClaim(tid(1)));
    sim.setAgent({ ...sim.state.agents['implementer']!, status: 'idle' });
    sim.plan('parallel');
    sim.complete(tid(1)); // → supervisor: claim released
    assert.ok(!sim.index.holdsClaim(tid(1)));
    const r = sim.plan('parallel');
    assert.deepEqual(r.assignments.map((a) => `${a.taskId}@${a.stage}`).sort(), [
      `${tid(1)}@supervisor`,
      `${tid(2)}@test`,
    ]);
  });
});
