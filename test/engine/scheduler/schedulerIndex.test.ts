import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { rolloutEligibility } from '../../../src/engine/scheduler/eligibility';
import type { OrchestrationStrategy } from '../../../src/engine/scheduler/orchestrationStrategy';
import { SchedulerIndex } from '../../../src/engine/scheduler/schedulerIndex';
import { getStrategy, registerStrategy, strategyNames } from '../../../src/engine/scheduler/strategyRegistry';
import { defaultAgents, makeAgent, makeTask, Sim, testConfig, tid } from './schedulerFixtures';

void describe('scheduler index', () => {
  void it('holds back a task while not_before is in the future and says when to wake', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)), makeTask(tid(2), { priority: 'low' }));
    sim.promoteReady();
    sim.plan('parallel');
    sim.fail(tid(1), 10_000);
    const r = sim.plan('parallel');
    assert.deepEqual(r.assignments, [{ taskId: tid(2), agentId: 'architect', stage: 'architect' }]);
    assert.equal(r.wakeAt, sim.now + 10_000);
    assert.match(
      sim.index.explain(tid(1), sim.state, sim.now),
      /backing off after a failed attempt until 2025-01-01T00:00:10.000Z/,
    );
    sim.complete(tid(2));
    sim.now += 9_999;
    assert.deepEqual(
      sim.plan('parallel').assignments.map((a) => a.taskId),
      [tid(2)],
      'still backing off one ms early',
    );
    sim.now += 1;
    const later = sim.plan('parallel');
    assert.deepEqual(later.assignments, [{ taskId: tid(1), agentId: 'architect', stage: 'architect' }]);
    assert.equal(later.wakeAt, null);
  });

  void it('gives no work to an agent that cannot start yet, but to another of its role, or to none', () => {
    const sim = new Sim(testConfig(), defaultAgents(2));
    sim.add(makeTask(tid(1)), makeTask(tid(2)));
    sim.promoteReady();
    // architect-1's previous command is still in its grace after its marker.
    const lingering = new Set(['architect-1']);
    const r = sim.index.plan('parallel', sim.state, { now: sim.now, unavailable: (id) => lingering.has(id) });
    assert.deepEqual(r.assignments, [{ taskId: tid(1), agentId: 'architect-2', stage: 'architect' }]);
    lingering.add('architect-2');
    assert.deepEqual(
      sim.index.plan('sequential', sim.state, { now: sim.now, unavailable: (id) => lingering.has(id) }).assignments,
      [],
    );
    lingering.clear();
    assert.deepEqual(
      sim.index
        .plan('parallel', sim.state, { now: sim.now, unavailable: (id) => lingering.has(id) })
        .assignments.map((x) => x.agentId),
      ['architect-1', 'architect-2'],
    );
  });

  void it('does not start a backing-off task when the clock goes backwards', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)));
    sim.promoteReady();
    sim.plan('parallel');
    sim.fail(tid(1), 1_000);
    sim.now += 1_000;
    sim.index.plan('parallel', sim.state, { now: sim.now }); // promotes it
    assert.deepEqual(sim.index.plan('parallel', sim.state, { now: sim.now - 500 }).assignments, []);
  });

  void it('in pilot mode runs only eligible tasks, and explains why the others wait', () => {
    const sim = new Sim();
    sim.state.mode = 'pilot';
    const eligible = rolloutEligibility(sim.state, sim.config);
    assert.ok(eligible);
    sim.add(
      makeTask(tid(1), { priority: 'critical' }),
      makeTask(tid(2), { labels: ['pilot'] }),
      makeTask(tid(3), { labels: ['pilot'], prerequisites: [tid(1)] }),
    );
    sim.promoteReady();
    for (const mode of ['parallel', 'sequential']) {
      const r = sim.index.plan(mode, sim.state, { now: sim.now, eligible });
      assert.deepEqual(
        r.assignments.map((a) => a.taskId),
        [tid(2)],
        mode,
      );
    }
    assert.match(
      sim.index.explain(tid(1), sim.state, sim.now),
      /not eligible in pilot mode: it lacks the "pilot" label/,
    );
    sim.run('parallel', { eligible, until: () => sim.task(tid(2)).status === 'done' });
    assert.equal(sim.task(tid(1)).status, 'queued');
    assert.equal(sim.task(tid(3)).status, 'pending');
    assert.equal(rolloutEligibility({ mode: 'production' }, sim.config), undefined);
  });

  void it('reorders a queued task when its priority is edited', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)), makeTask(tid(2)));
    sim.promoteReady();
    sim.setTask({ ...sim.task(tid(2)), priority: 'high' });
    assert.deepEqual(
      sim.plan('parallel').assignments.map((a) => a.taskId),
      [tid(2)],
    );
  });

  void it('follows agents joining, leaving and going offline', () => {
    const sim = new Sim(testConfig(), []);
    sim.add(makeTask(tid(1)), makeTask(tid(2)));
    sim.promoteReady();
    assert.match(sim.index.explain(tid(1), sim.state, sim.now), /no architect agent exists: add one/);
    const a1 = makeAgent('architect-1', 'architect');
    sim.setAgent(a1);
    sim.setAgent(makeAgent('architect-2', 'architect'));
    sim.setAgent({ ...a1, status: 'offline' });
    assert.deepEqual(sim.plan('parallel').assignments, [
      { taskId: tid(1), agentId: 'architect-2', stage: 'architect' },
    ]);
    assert.match(sim.index.explain(tid(2), sim.state, sim.now), /waiting for an architect \(all 2 are busy\)/);
    sim.index.agentChanged(sim.state.agents['architect-2'], undefined);
    delete sim.state.agents['architect-2'];
    sim.setAgent({ ...a1, status: 'idle' });
    assert.deepEqual(sim.plan('parallel').assignments, [
      { taskId: tid(2), agentId: 'architect-1', stage: 'architect' },
    ]);
  });

  void it('rejects an unknown mode, naming the known ones', () => {
    const idx = SchedulerIndex.build(new Sim().state, testConfig());
    try {
      idx.plan('hybrid-x', new Sim().state, { now: 0 });
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(isPipelineError(e));
      assert.equal(e.code, 'usage');
      assert.match(e.message, /Unknown orchestration mode "hybrid-x". Known modes: .*parallel, sequential/);
    }
  });

  void it('takes a new mode from one registration', () => {
    // A toy mode: only the first stage, lowest priority first. Proves the plug point, not a policy.
    const backwards: OrchestrationStrategy = {
      name: 'test-backwards',
      summary: 'for tests',
      plan(view) {
        const stage = view.stages[0]!;
        const all = [...view.candidates(stage.name)];
        const agent = view.freeAgents(stage.role)[0];
        const last = all.at(-1);
        if (agent && last) view.assign(last, agent, stage.name);
        return {};
      },
    };
    registerStrategy(backwards);
    assert.ok(strategyNames().includes('test-backwards'));
    assert.equal(getStrategy('test-backwards'), backwards);
    assert.throws(() => registerStrategy({ ...backwards }), /already registered/);
    const sim = new Sim();
    sim.add(makeTask(tid(1), { priority: 'high' }), makeTask(tid(2), { priority: 'low' }));
    sim.promoteReady();
    assert.deepEqual(
      sim.plan('test-backwards').assignments.map((a) => a.taskId),
      [tid(2)],
    );
  });

  void it('explains pending, queued and in-flight tasks', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)), makeTask(tid(2), { prerequisites: [tid(1)] }), makeTask(tid(3)));
    assert.match(
      sim.index.explain(tid(2), sim.state, sim.now),
      /waits for its prerequisites to be merged: TASK-001 \(pending at architect\)/,
    );
    assert.match(sim.index.explain(tid(1), sim.state, sim.now), /enters the pipeline at the architect stage/);
    sim.promoteReady();
    assert.match(sim.index.explain(tid(3), sim.state, sim.now), /1 task ahead of it at architect/);
    sim.plan('parallel');
    assert.match(sim.index.explain(tid(1), sim.state, sim.now), /being worked on by architect at the architect stage/);
    assert.throws(() => sim.index.explain(tid(9), sim.state, sim.now), /There is no task TASK-009/);
  });

  void it('rebuilt from a mid-run state, equals the incrementally kept index', () => {
    const sim = new Sim(testConfig(), defaultAgents(2));
    for (let i = 1; i <= 30; i++) {
      sim.add(
        makeTask(tid(i), {
          prerequisites: i > 3 ? [tid(i - 3)] : [],
          paths: [`src/m${i % 4}/**`],
          priority: i % 5 === 0 ? 'high' : 'medium',
        }),
      );
    }
    let checked = 0;
    sim.run('parallel', {
      onStep: () => {
        if (sim.step % 7 !== 0) return;
        if (sim.step % 14 === 0)
          for (const t of sim.inFlight().slice(0, 1)) if (t.status === 'working') sim.fail(t.id, 3_000);
        const rebuilt = SchedulerIndex.build(sim.state, sim.config);
        assert.deepEqual(rebuilt.snapshot(), sim.index.snapshot(), `step ${sim.step}`);
        assert.deepEqual(
          rebuilt.plan('parallel', sim.state, { now: sim.now }),
          sim.index.plan('parallel', sim.state, { now: sim.now }),
        );
        checked++;
      },
    });
    assert.ok(checked > 5);
  });
});
