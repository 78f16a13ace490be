import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Priority, Task } from '../../../src/engine/model/schema';
import { rolloutEligibility } from '../../../src/engine/scheduler/eligibility';
import { defaultAgents, makeTask, prng, Sim, tid } from './schedulerFixtures';

/**
 * `pipeline next` (SchedulerIndex.next) names the task that enters the pipeline next. Whatever the
 * mode, that is the task the scheduler itself starts first at the first stage the next time it
 * starts a new one: the property checked here over whole random pipelines, step by step.
 */

const PRIORITIES: Priority[] = ['critical', 'high', 'medium', 'low'];
const PATHS = ['src/api/**', 'src/api/client.ts', 'src/web/**', 'docs/**', 'test/**'];

function randomTasks(seed: number, n: number, labels: string[]): Task[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  return Array.from({ length: n }, (_, i) => {
    const prerequisites = i > 0 && rnd() < 0.3 ? [tid(1 + Math.floor(rnd() * i))] : [];
    return makeTask(tid(i + 1), {
      priority: pick(PRIORITIES),
      prerequisites,
      paths: rnd() < 0.8 ? [pick(PATHS)] : [],
      labels: labels.filter(() => rnd() < 0.15),
    });
  });
}

/** The tasks a plan started at the first stage for the first time, in the order it started them. */
function entered(sim: Sim, before: Map<string, number>, step: number): string[] {
  return sim.log
    .filter((a) => a.step === step && a.stage === 'architect' && before.get(a.taskId) === 0)
    .map((a) => a.taskId);
}

function checkRun(mode: string, seed: number, o: { agents?: number; pilot?: boolean } = {}): number {
  const sim = new Sim(undefined, defaultAgents(o.agents ?? 1));
  sim.state.orchestration_mode = mode;
  const labels = mode === 'hybrid' ? ['sequential'] : [];
  if (o.pilot) {
    sim.state.mode = 'pilot';
    labels.push('pilot');
  }
  sim.add(...randomTasks(seed, 40, labels));
  const eligible = rolloutEligibility(sim.state, sim.config);
  const rnd = prng(seed * 7 + 1);
  let checked = 0;
  for (let guard = 0; guard < 5_000; guard++) {
    sim.promoteReady();
    const said = sim.index.next(sim.state, sim.now);
    const attempts = new Map(Object.values(sim.state.tasks).map((t) => [t.id, t.attempt]));
    sim.plan(mode, eligible);
    const started = entered(sim, attempts, sim.step);
    if (started.length > 0) {
      checked++;
      assert.equal(
        said.next?.id,
        started[0],
        `${mode} seed ${seed} step ${sim.step}: next said ${said.next?.id ?? 'none'} (${said.next?.why ?? ''}; ${said.next?.explanation ?? ''}), the scheduler started ${started.join(', ')}`,
      );
    }
    const inFlight = sim.inFlight();
    if (inFlight.length === 0) break;
    // Finish some task in flight, not always the oldest, so that work overlaps in varied ways.
    sim.advance(inFlight[Math.floor(rnd() * inFlight.length)]!.id);
  }
  return checked;
}

void describe('pipeline next', () => {
  void it('hybrid mode: tasks whose paths overlap work under way are passed over, and next says so', () => {
    const sim = new Sim();
    sim.state.orchestration_mode = 'hybrid';
    const eligible = rolloutEligibility(sim.state, sim.config);
    sim.add(makeTask(tid(1), { paths: ['src/api/**'] }));
    sim.promoteReady();
    sim.plan('hybrid', eligible);
    sim.complete(tid(1)); // under way: queued at the test stage
    sim.add(
      makeTask(tid(2), { paths: ['src/api/client.ts'], priority: 'high' }),
      makeTask(tid(3), { paths: ['docs/**'], priority: 'low' }),
      makeTask(tid(4), { paths: ['src/api/server.ts'], priority: 'high' }),
    );
    sim.promoteReady();
    const r = sim.index.next(sim.state, sim.now);
    assert.equal(r.next?.id, tid(3));
    assert.equal(
      r.next?.why,
      'the first of the 3 tasks ready to enter that hybrid mode lets in now; the 2 ahead of it (TASK-002, TASK-004) wait for work under way',
    );
    assert.equal(r.ready, 3);
    sim.plan('hybrid', eligible);
    assert.equal(sim.task(tid(3)).status, 'working', 'the scheduler agrees');
    assert.equal(sim.task(tid(3)).stage, 'architect');

    // A task labelled sequential, ahead in the queue, closes the entry: it is next, once the pipeline drains.
    sim.add(makeTask(tid(5), { labels: ['sequential'], priority: 'critical' }));
    sim.promoteReady();
    const lone = sim.index.next(sim.state, sim.now);
    assert.equal(lone.next?.id, tid(5));
    assert.match(
      lone.next?.explanation ?? '',
      /runs it alone .* enters once the 2 tasks under way \(TASK-001, TASK-003\)/,
    );
    assert.deepEqual(
      sim.plan('hybrid', eligible).assignments.filter((a) => a.stage === 'architect'),
      [],
      'nothing enters before it',
    );
  });

  for (const mode of ['parallel', 'sequential', 'hybrid']) {
    void it(`${mode} mode: the task next names is the one the scheduler starts next, over random pipelines`, () => {
      let checked = 0;
      for (let seed = 1; seed <= 30; seed++) {
        checked += checkRun(mode, seed);
        checked += checkRun(mode, seed + 100, { agents: 2 });
        checked += checkRun(mode, seed + 200, { pilot: true });
      }
      assert.ok(checked > 500, `enough entries compared (${checked})`);
    });
  }
});
