import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isPipelineError, type PipelineError } from '../../../src/engine/errors';
import { SchedulerIndex } from '../../../src/engine/scheduler/schedulerIndex';
import { emptyState } from '../../../src/engine/model/schema';
import { makeTask, Sim, testConfig, tid } from './schedulerFixtures';

function rejects(fn: () => void, code: string, ...fragments: string[]): PipelineError {
  try {
    fn();
  } catch (e) {
    assert.ok(isPipelineError(e), `expected a PipelineError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${e.message}" should mention ${f}`);
    assert.ok(e.details.fix, 'the error says what to do');
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

void describe('prerequisites: checkNewTasks', () => {
  void it('names a cycle in a batch', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)));
    const e = rejects(
      () =>
        sim.index.checkNewTasks([
          { id: tid(3), prerequisites: [tid(1), tid(7)] },
          { id: tid(7), prerequisites: [tid(3)] },
        ]),
      'cycle',
      'TASK-003 → TASK-007 → TASK-003',
    );
    assert.match(e.details.fix ?? '', /TASK-007 from TASK-003/);
  });

  void it('names a longer cycle and a self-dependency', () => {
    const idx = SchedulerIndex.build(emptyState(), testConfig());
    rejects(
      () =>
        idx.checkNewTasks([
          { id: tid(1), prerequisites: [tid(2)] },
          { id: tid(2), prerequisites: [tid(3)] },
          { id: tid(3), prerequisites: [tid(1)] },
        ]),
      'cycle',
      'TASK-001 → TASK-002 → TASK-003 → TASK-001',
    );
    rejects(() => idx.checkNewTasks([{ id: tid(5), prerequisites: [tid(5)] }]), 'cycle', 'TASK-005 → TASK-005');
  });

  void it('finds a cycle through an existing task that named a new one before it existed', () => {
    const sim = new Sim();
    // Allowed in a state (an import that listed a task added later): TASK-002 waits for TASK-009.
    sim.state.tasks[tid(2)] = makeTask(tid(2), { prerequisites: [tid(9)] });
    sim.index = SchedulerIndex.build(sim.state, sim.config);
    rejects(
      () => sim.index.checkNewTasks([{ id: tid(9), prerequisites: [tid(2)] }]),
      'cycle',
      'TASK-009 → TASK-002 → TASK-009',
    );
  });

  void it('rejects an unknown prerequisite, naming the task and the missing id', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)));
    rejects(
      () => sim.index.checkNewTasks([{ id: tid(2), prerequisites: [tid(1), tid(99)] }]),
      'unknown-task',
      'TASK-002',
      'TASK-099',
    );
  });

  void it('rejects duplicate ids, existing or within the batch', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)));
    rejects(() => sim.index.checkNewTasks([{ id: tid(1), prerequisites: [] }]), 'duplicate-id', 'TASK-001');
    rejects(
      () =>
        sim.index.checkNewTasks([
          { id: tid(2), prerequisites: [] },
          { id: tid(2), prerequisites: [] },
        ]),
      'duplicate-id',
      'TASK-002',
    );
  });

  void it('accepts a batch whose tasks depend on each other and on existing tasks, and changes nothing', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)));
    const before = JSON.stringify(sim.index.snapshot());
    sim.index.checkNewTasks([
      { id: tid(4), prerequisites: [tid(2), tid(3)] },
      { id: tid(2), prerequisites: [tid(1)] },
      { id: tid(3), prerequisites: [tid(1), tid(2)] },
    ]);
    assert.equal(JSON.stringify(sim.index.snapshot()), before);
  });

  void it('checks a 20 000-task chain without overflowing the stack', () => {
    const idx = SchedulerIndex.build(emptyState(), testConfig());
    const batch = Array.from({ length: 20_000 }, (_, i) => ({
      id: `T-${i + 1}`,
      prerequisites: i === 0 ? [] : [`T-${i}`],
    }));
    idx.checkNewTasks(batch);
    batch[0] = { id: 'T-1', prerequisites: ['T-20000'] };
    rejects(() => idx.checkNewTasks(batch), 'cycle', 'T-1 → T-20000 → T-19999');
  });
});

void describe('prerequisites: readiness', () => {
  void it('readies tasks when their prerequisites are done, oldest first', () => {
    const sim = new Sim();
    sim.add(
      makeTask(tid(1)),
      makeTask(tid(2), { prerequisites: [tid(1)] }),
      makeTask(tid(3), { prerequisites: [tid(1)] }),
      makeTask(tid(4), { prerequisites: [tid(2), tid(3)] }),
    );
    assert.deepEqual(sim.index.readyPending(), [tid(1)]);
    sim.promoteReady();
    assert.deepEqual(sim.index.readyPending(), []);
    sim.setTask({ ...sim.task(tid(1)), status: 'done' });
    assert.deepEqual(sim.index.readyPending(), [tid(2), tid(3)]);
    sim.setTask({ ...sim.task(tid(3)), status: 'done' });
    assert.deepEqual(sim.index.readyPending(), [tid(2)]);
    sim.setTask({ ...sim.task(tid(2)), status: 'done' });
    assert.deepEqual(sim.index.readyPending(), [tid(4)]);
  });

  void it('treats a cancelled prerequisite as never met, and explains it', () => {
    const sim = new Sim();
    sim.add(makeTask(tid(1)), makeTask(tid(2), { prerequisites: [tid(1)] }));
    sim.setTask({ ...sim.task(tid(1)), status: 'cancelled' });
    assert.deepEqual(sim.index.readyPending(), []);
    assert.match(sim.index.explain(tid(2), sim.state, sim.now), /TASK-001 \(cancelled/);
  });

  void it('counts the same whatever order tasks arrive in (a done prerequisite added after its dependent)', () => {
    const a = new Sim();
    a.state.tasks[tid(2)] = makeTask(tid(2), { prerequisites: [tid(1), tid(1)] });
    a.state.tasks[tid(1)] = makeTask(tid(1), { status: 'done' });
    const idx = SchedulerIndex.build(a.state, a.config);
    assert.deepEqual(idx.readyPending(), [tid(2)]);
  });
});
