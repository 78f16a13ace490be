import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TaskSpec } from '../../../../src/engine/model/schema';
import { assignedStages, diligent, entries, roleFile, withRig, type Rig } from './policyKit';

/**
 * Both orchestration modes take tasks through the four stages to merged, on the twins: every stage's
 * work is on main, prerequisites merge first, sequential mode has one task in flight at a time and
 * parallel mode overlaps different tasks' stages.
 */

const GRAPH: TaskSpec[] = [
  { id: 'TASK-001', title: 'Top', paths: ['src/one/**'] },
  { id: 'TASK-002', title: 'Left', paths: ['src/two/**'], prerequisites: ['TASK-001'] },
  { id: 'TASK-003', title: 'Right', paths: ['src/three/**'], prerequisites: ['TASK-001'] },
  { id: 'TASK-004', title: 'Alone', paths: ['src/four/**'] },
];

const STAGES = ['architect', 'test', 'implementation', 'supervisor'];

/** Every task done, merged once, its merge commit on main with each stage's file, after its prerequisites. */
function assertMergedInOrder(rig: Rig): void {
  const merges = rig.of('merge:finished').filter((m) => m.commit);
  assert.deepEqual(merges.map((m) => m.taskId).sort(), GRAPH.map((t) => t.id).sort(), 'each task merged once');
  assert.ok(merges.every((m) => m.into === 'main'));
  for (const spec of GRAPH) {
    const t = rig.task(spec.id!);
    assert.equal(t.status, 'done', `${t.id}: ${t.blocked_reason ?? ''}`);
    assert.deepEqual(assignedStages(t), STAGES);
    assert.ok(rig.workspace.contains('main', t.merged_commit!), `${t.id}'s merge is on main`);
    for (const role of ['architect', 'tester', 'implementer'])
      assert.match(rig.workspace.read('main', roleFile(role, t.id)!) ?? '', new RegExp(`^${t.id} by ${role}`));
    for (const pre of t.prerequisites) {
      const order = merges.map((m) => m.taskId);
      assert.ok(order.indexOf(pre) < order.indexOf(t.id), `${pre} merged before ${t.id}`);
      assert.ok(
        rig.workspace.contains(t.merged_commit!, rig.task(pre).merged_commit!),
        `${pre} is in ${t.id}'s history`,
      );
    }
  }
  for (const a of Object.values(rig.pipeline.state.agents))
    assert.deepEqual([a.status, a.current_task], ['idle', null]);
}

void test('parallel mode: four stages to merged; different tasks are in different stages at once', async () => {
  let overlap = false;
  await withRig(
    {
      tasks: GRAPH,
      programs: {
        // The tester on TASK-001 finishes only once an architect has started on another task: in
        // parallel mode the free architect takes one while TASK-001 is in test.
        tester: async (req, io) => {
          if (req.taskId === 'TASK-001') {
            await rigRef!.next('agent:started', (e) => e.stage === 'architect' && e.taskId !== 'TASK-001');
            overlap = true;
          }
          await diligent(req, io);
        },
      },
    },
    async (rig) => {
      rigRef = rig;
      const idle = await rig.run();
      assert.deepEqual(idle, { done: GRAPH.length, blocked: [], waiting: [] });
      assertMergedInOrder(rig);
      assert.ok(overlap, 'an architect worked while TASK-001 was in test');
    },
  );
});

let rigRef: Rig | undefined;

void test('sequential mode: one task at a time through every stage; current-task.txt names it', async () => {
  await withRig({ tasks: GRAPH, orchestration: 'sequential' }, async (rig) => {
    const currentFile = join(rig.dir, '.pipeline', 'current-task.txt');
    const seen: Array<[string, string]> = [];
    rig.pipeline.events.on('agent:started', (e) => seen.push([e.taskId, readFileSync(currentFile, 'utf8').trim()]));
    const idle = await rig.run();
    assert.deepEqual(idle, { done: GRAPH.length, blocked: [], waiting: [] });
    assertMergedInOrder(rig);
    // A task's four stages run back to back, and it is merged before the next one starts.
    const started = rig.of('agent:started').map((e) => e.taskId);
    const runs = started.filter((id, i) => i === 0 || started[i - 1] !== id);
    assert.equal(runs.length, GRAPH.length, `one task after another: ${started.join(' ')}`);
    for (const id of runs.slice(0, -1)) {
      const merged = entries(rig.task(id), 'merged')[0]!;
      const next = runs[runs.indexOf(id) + 1]!;
      assert.ok(
        Date.parse(entries(rig.task(next), 'assign')[0]!.at) >= Date.parse(merged.at),
        `${next} started after ${id} merged`,
      );
    }
    assert.equal(seen.length, GRAPH.length * 4);
    for (const [taskId, current] of seen) assert.equal(current, taskId, 'current-task.txt names the task at work');
    assert.equal(readFileSync(currentFile, 'utf8'), '', 'and is empty at the end');
  });
});

void test('parallel mode: tasks whose paths overlap are never in test or implementation together; disjoint ones are', async () => {
  const tasks: TaskSpec[] = [
    { id: 'TASK-001', title: 'Lib one', paths: ['lib/**'] },
    { id: 'TASK-002', title: 'Lib two', paths: ['lib/parser/*.js'] },
    { id: 'TASK-003', title: 'Lib three', paths: ['lib/**/*.js', 'docs/lib.md'] },
    { id: 'TASK-004', title: 'Docs', paths: ['docs/**'] },
    { id: 'TASK-005', title: 'Elsewhere', paths: ['app/**'] },
  ];
  const overlapping = new Set(['TASK-001/TASK-002', 'TASK-001/TASK-003', 'TASK-002/TASK-003', 'TASK-003/TASK-004']);
  const guarded = new Set(['test', 'implementation']);
  let rig: Rig | undefined;
  let together = false;
  await withRig(
    {
      tasks,
      agents: [
        ['architect', 'architect'],
        ['architect-2', 'architect'],
        ['tester', 'tester'],
        ['tester-2', 'tester'],
        ['implementer', 'implementer'],
        ['implementer-2', 'implementer'],
        ['supervisor', 'supervisor'],
      ],
      programs: {
        // TASK-005's tester finishes once another task is in a guarded stage with it.
        tester: async (req, io) => {
          if (req.taskId === 'TASK-005') {
            await rig!.until('another task in test or implementation', () =>
              Object.values(rig!.pipeline.state.tasks).some(
                (t) => t.id !== 'TASK-005' && t.status === 'working' && guarded.has(t.stage),
              ),
            );
            together = true;
          }
          await diligent(req, io);
        },
      },
    },
    async (r) => {
      rig = r;
      const violations: string[] = [];
      r.pipeline.events.on('task:transition', (e) => {
        if (e.event.type !== 'assign' || !guarded.has(e.after.stage)) return;
        for (const t of Object.values(r.pipeline.state.tasks)) {
          const pair = [t.id, e.after.id].sort().join('/');
          if (t.id !== e.after.id && t.status === 'working' && guarded.has(t.stage) && overlapping.has(pair))
            violations.push(`${e.after.id} (${e.after.stage}) started while ${t.id} was in ${t.stage}`);
        }
      });
      assert.deepEqual(await r.run(), { done: tasks.length, blocked: [], waiting: [] });
      assert.deepEqual(violations, []);
      assert.ok(together, 'disjoint tasks did share the guarded stages');
    },
  );
});
