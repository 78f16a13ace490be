import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema, type StageConfig } from '../../../src/engine/model/configSchema';
import { defaultAgents, makeTask, prng, Sim, testConfig, tid } from './schedulerFixtures';

/**
 * A stage's `maxAgents`: a work-in-progress limit, at most that many tasks working at the stage at
 * once however many agents its role has. Every mode honours it.
 */

function stages(limits: Record<string, number>): StageConfig[] {
  return [
    ['architect', 'architect'],
    ['test', 'tester'],
    ['implementation', 'implementer'],
    ['supervisor', 'supervisor'],
  ].map(([name, role]) => ({ name: name!, role: role!, ...(limits[name!] ? { maxAgents: limits[name!] } : {}) }));
}

function workingAt(sim: Sim, stage: string): string[] {
  return Object.values(sim.state.tasks)
    .filter((t) => t.status === 'working' && t.stage === stage)
    .map((t) => t.id)
    .sort();
}

void describe('stage maxAgents', () => {
  void it('three architects, a limit of one: one task at the stage, and the others say why they wait', () => {
    const config = testConfig({ stages: stages({ architect: 1 }) });
    const sim = new Sim(config, defaultAgents(3));
    sim.add(...[1, 2, 3, 4].map((n) => makeTask(tid(n), {}, config)));
    sim.promoteReady();
    const r = sim.plan('parallel');
    assert.deepEqual(r.assignments, [{ taskId: tid(1), agentId: 'architect-1', stage: 'architect' }]);
    assert.match(
      sim.index.explain(tid(2), sim.state, sim.now),
      /the architect stage is at its limit of 1 task at once \(maxAgents\): TASK-001 is working there/,
    );
    assert.deepEqual(sim.plan('parallel').assignments, [], 'no room until it finishes');
    sim.complete(tid(1));
    assert.deepEqual(
      sim.plan('parallel').assignments.map((a) => [a.taskId, a.stage]),
      [
        [tid(1), 'test'],
        [tid(2), 'architect'],
      ],
    );

    // Without the limit the three architects work at once.
    const free = new Sim(testConfig(), defaultAgents(3));
    free.add(...[1, 2, 3, 4].map((n) => makeTask(tid(n))));
    free.promoteReady();
    assert.deepEqual(
      free.plan('parallel').assignments.map((a) => a.taskId),
      [tid(1), tid(2), tid(3)],
    );
  });

  for (const mode of ['parallel', 'hybrid', 'sequential']) {
    void it(`${mode} mode: whole random pipelines never exceed a stage's limit, and finish`, () => {
      const limits = { test: 2, implementation: 1 };
      for (let seed = 1; seed <= 10; seed++) {
        const rand = prng(seed);
        const config = testConfig({ stages: stages(limits) });
        const sim = new Sim(config, defaultAgents(3));
        sim.state.orchestration_mode = mode;
        sim.add(
          ...Array.from({ length: 12 }, (_, i) =>
            makeTask(tid(i + 1), { paths: [`src/${i % 5}/**`], priority: rand() < 0.3 ? 'high' : 'medium' }, config),
          ),
        );
        let sawTwoInTest = false;
        sim.run(mode, {
          pick: (inFlight) => inFlight[Math.floor(rand() * inFlight.length)]!,
          onStep: () => {
            for (const [stage, max] of Object.entries(limits)) {
              const at = workingAt(sim, stage);
              assert.ok(at.length <= max, `seed ${seed} step ${sim.step}: ${at.join(', ')} at ${stage} (max ${max})`);
            }
            if (workingAt(sim, 'test').length === 2) sawTwoInTest = true;
          },
        });
        assert.ok(Object.values(sim.state.tasks).every((t) => t.status === 'done'));
        if (mode === 'parallel') assert.ok(sawTwoInTest, `seed ${seed}: the limit of 2 is used, not only 1`);
      }
    });
  }

  void it('a limit below 1 is refused, naming the stage', () => {
    const r = configSchema.safeParse({
      stages: stages({ test: 0 }).map((s) => (s.name === 'test' ? { ...s, maxAgents: 0 } : s)),
    });
    assert.equal(r.success, false);
    assert.deepEqual(r.error?.issues[0]?.path, ['stages', 1, 'maxAgents']);
    assert.equal(testConfig({ stages: stages({ test: 2 }) }).stages[1]?.maxAgents, 2);
  });
});
