import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Task } from '../../../src/engine/model/schema';
import { globsOverlap } from '../../../src/engine/scheduler/globOverlap';
import { defaultAgents, makeTask, prng, Sim, testConfig, tid } from './schedulerFixtures';

/**
 * Hybrid mode: parallel, except that a task whose paths overlap a task under way enters only once
 * that task is finished, and a task labelled `sequential` runs alone (and, once it is the best task
 * ready to enter, nothing enters before it).
 */

/** A simulation whose state says hybrid mode, as the explanations read it from there. */
function hybridSim(...args: ConstructorParameters<typeof Sim>): Sim {
  const sim = new Sim(...args);
  sim.state.orchestration_mode = 'hybrid';
  return sim;
}

/** On its way through the stages: what hybrid mode counts as under way. */
function underWay(sim: Sim): Task[] {
  return Object.values(sim.state.tasks).filter(
    (t) => t.status === 'working' || t.status === 'merging' || (t.status === 'queued' && t.attempt > 0),
  );
}

function overlap(a: Task, b: Task): boolean {
  return a.paths.some((p) => b.paths.some((q) => globsOverlap(p, q)));
}

/** The plan step at which a task first entered, and the step after which it was merged. */
function firstStep(sim: Sim, id: string): number {
  return sim.log.find((a) => a.taskId === id)?.step ?? -1;
}
function lastStep(sim: Sim, id: string): number {
  return sim.log.filter((a) => a.taskId === id).at(-1)?.step ?? -1;
}

void describe('hybrid strategy', () => {
  void it('overlapping tasks go one at a time through every stage; others run beside them as in parallel mode', () => {
    const tasks = () => [
      makeTask(tid(1), { paths: ['src/api/**'] }),
      makeTask(tid(2), { paths: ['src/api/client.ts'] }),
      makeTask(tid(3), { paths: ['docs/**'] }),
    ];
    // Parallel mode lets TASK-002 design and write tests while TASK-001 is still on its way.
    const parallel = new Sim();
    parallel.add(...tasks());
    parallel.run('parallel');
    assert.ok(firstStep(parallel, tid(2)) < lastStep(parallel, tid(1)), 'parallel overlaps them');

    const sim = hybridSim();
    sim.add(...tasks());
    sim.promoteReady();
    sim.plan('hybrid');
    assert.deepEqual(sim.workingByStage(), { architect: tid(1) });
    sim.complete(tid(1));
    sim.plan('hybrid');
    // The architect is free: TASK-002 overlaps TASK-001 (under way), so TASK-003 goes ahead of it.
    assert.deepEqual(sim.workingByStage(), { architect: tid(3), test: tid(1) });
    assert.match(
      sim.index.explain(tid(2), sim.state, sim.now),
      /hybrid mode keeps overlapping tasks one at a time: its paths overlap those of TASK-001 \(working at test\), so it enters once that task is finished/,
    );
    assert.doesNotMatch(sim.index.explain(tid(3), sim.state, sim.now), /hybrid/);

    sim.run('hybrid', {
      onStep: () => {
        const now = underWay(sim);
        for (const a of now)
          for (const b of now)
            assert.ok(
              a === b || !overlap(a, b),
              `step ${sim.step}: ${a.id} and ${b.id} overlap and are both under way`,
            );
      },
    });
    assert.ok(firstStep(sim, tid(2)) > lastStep(sim, tid(1)), 'TASK-002 entered after TASK-001 was merged');
    assert.ok(Object.values(sim.state.tasks).every((t) => t.status === 'done'));
  });

  void it('a task labelled "sequential" runs alone: the pipeline drains before it, and nothing enters while it runs', () => {
    const sim = hybridSim();
    sim.add(
      makeTask(tid(1), { paths: ['a/**'] }),
      makeTask(tid(2), { paths: ['b/**'], labels: ['sequential'] }),
      makeTask(tid(3), { paths: ['c/**'] }),
    );
    sim.promoteReady();
    sim.plan('hybrid');
    sim.complete(tid(1));
    sim.plan('hybrid');
    // TASK-002 is the best task ready to enter but TASK-001 is under way: nothing else enters before it.
    assert.deepEqual(sim.workingByStage(), { test: tid(1) });
    assert.match(
      sim.index.explain(tid(2), sim.state, sim.now),
      /hybrid mode runs it alone \(labelled "sequential"\): it enters once the 1 task under way \(TASK-001\) is finished/,
    );
    assert.match(
      sim.index.explain(tid(3), sim.state, sim.now),
      /hybrid mode lets TASK-002 \(labelled "sequential", ahead of it in the queue\) enter first, alone/,
    );

    // TASK-001 through the stages and merged: TASK-002 enters, alone.
    while (sim.task(tid(1)).status !== 'done') {
      sim.plan('hybrid');
      for (const t of sim.inFlight()) if (t.id === tid(1)) sim.advance(t.id);
    }
    sim.plan('hybrid');
    assert.deepEqual(sim.workingByStage(), { architect: tid(2) });
    sim.complete(tid(2));
    sim.plan('hybrid');
    assert.deepEqual(sim.workingByStage(), { test: tid(2) }, 'the free architect does not take TASK-003');
    assert.match(
      sim.index.explain(tid(3), sim.state, sim.now),
      /hybrid mode runs TASK-002 \(labelled "sequential"\) alone; new tasks enter after it/,
    );
    sim.run('hybrid');
    assert.ok(firstStep(sim, tid(3)) > lastStep(sim, tid(2)), 'TASK-003 entered after TASK-002 was merged');
  });

  void it('a retry of a task under way is never held back, and a lower-priority lone task does not stall the rest', () => {
    const sim = hybridSim();
    sim.add(
      makeTask(tid(1), { paths: ['a/**'], priority: 'high' }),
      makeTask(tid(2), { paths: ['a/**'], priority: 'low', labels: ['sequential'] }),
      makeTask(tid(3), { paths: ['b/**'], priority: 'medium' }),
    );
    sim.promoteReady();
    sim.plan('hybrid');
    sim.fail(tid(1), 0);
    sim.plan('hybrid');
    // The retry of TASK-001 goes first; it is under way, so only tasks that do not overlap may join.
    assert.deepEqual(sim.workingByStage(), { architect: tid(1) });
    sim.complete(tid(1));
    sim.plan('hybrid');
    assert.deepEqual(
      sim.workingByStage(),
      { architect: tid(3), test: tid(1) },
      'TASK-003 is ahead of the lone TASK-002',
    );
  });

  void it('random pipelines finish, never with overlapping tasks or a lone task beside another under way', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const rand = prng(seed);
      const sim = hybridSim(testConfig(), defaultAgents(2));
      const areas = ['src/a/**', 'src/b/**', 'src/c/**', 'src/a/x.ts', 'docs/**'];
      const tasks = Array.from({ length: 14 }, (_, i) => {
        const n = i + 1;
        const prerequisites = n > 3 && rand() < 0.3 ? [tid(1 + Math.floor(rand() * (n - 1)))] : [];
        return makeTask(tid(n), {
          paths: [areas[Math.floor(rand() * areas.length)]!],
          labels: rand() < 0.15 ? ['sequential'] : [],
          priority: (['low', 'medium', 'high'] as const)[Math.floor(rand() * 3)]!,
          prerequisites,
        });
      });
      sim.add(...tasks);
      sim.run('hybrid', {
        pick: (inFlight) => inFlight[Math.floor(rand() * inFlight.length)]!,
        onStep: () => {
          const now = underWay(sim);
          for (const a of now) {
            if (a.labels.includes('sequential'))
              assert.equal(
                now.length,
                1,
                `seed ${seed} step ${sim.step}: ${a.id} runs alone, yet ${now.map((t) => t.id).join(', ')}`,
              );
            for (const b of now)
              assert.ok(a === b || !overlap(a, b), `seed ${seed} step ${sim.step}: ${a.id} and ${b.id} overlap`);
          }
        },
      });
      assert.ok(
        Object.values(sim.state.tasks).every((t) => t.status === 'done'),
        `seed ${seed}: every task merged`,
      );
    }
  });
});
