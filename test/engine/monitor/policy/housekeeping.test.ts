import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TaskSpec } from '../../../../src/engine/model/schema';
import { withRig } from './policyKit';

/**
 * Housekeeping as the monitor does it: merged task branches are deleted (unless the configuration
 * says not to), and an agent's log is rotated like pipeline.log before an attempt that would find it
 * full.
 */

const TASKS: TaskSpec[] = [
  { id: 'TASK-001', title: 'One', paths: ['a/**'] },
  { id: 'TASK-002', title: 'Two', paths: ['b/**'], prerequisites: ['TASK-001'] },
];

void test('merged branches are deleted after their merge, the work staying on main', async () => {
  await withRig({ tasks: TASKS }, async (rig) => {
    const idle = await rig.run();
    assert.equal(idle.done, 2);
    for (const id of ['TASK-001', 'TASK-002']) {
      assert.equal(rig.workspace.head(`pipeline/${id}`), undefined, `pipeline/${id} was deleted`);
      assert.ok(rig.workspace.contains('main', rig.task(id).merged_commit!), `${id}'s work is on main`);
    }
    assert.ok(rig.workspace.calls.includes('deleteMergedBranch TASK-001 main'));
    assert.deepEqual(rig.of('monitor:warning'), []);
  });
});

void test('deleteMergedBranches: false keeps them', async () => {
  await withRig({ tasks: TASKS, config: { deleteMergedBranches: false } }, async (rig) => {
    await rig.run();
    for (const id of ['TASK-001', 'TASK-002']) assert.ok(rig.workspace.head(`pipeline/${id}`), `${id} kept`);
    assert.ok(!rig.workspace.calls.some((c) => c.startsWith('deleteMergedBranch')));
  });
});

void test('pilot mode deletes a branch once it is merged into the pilot branch, which keeps its work', async () => {
  await withRig({ tasks: [{ id: 'TASK-001', title: 'Pilot', labels: ['pilot'] }], rollout: 'pilot' }, async (rig) => {
    await rig.run();
    assert.equal(rig.workspace.head('pipeline/TASK-001'), undefined);
    assert.ok(rig.workspace.contains('pipeline/pilot', rig.task('TASK-001').merged_commit!));
    assert.ok(!rig.workspace.contains('main', rig.task('TASK-001').merged_commit!));
  });
});

void test("a full agent log is rotated before the agent's next attempt, as pipeline.log is", async () => {
  await withRig({ tasks: [TASKS[0]!] }, async (rig) => {
    const dir = join(rig.dir, '.pipeline', 'logs', 'agents');
    await mkdir(dir, { recursive: true });
    const log = join(dir, 'architect.log');
    const full = 'x'.repeat(5 * 1024 * 1024);
    await writeFile(log, full);
    await writeFile(`${log}.1`, 'older\n');
    await rig.run();
    assert.equal((await stat(`${log}.1`)).size, full.length, 'the full log became architect.log.1');
    assert.equal(await readFile(`${log}.2`, 'utf8'), 'older\n', 'and the older one moved up');
    assert.match(
      await readFile(log, 'utf8'),
      /^\n--- \S+ architect TASK-001 attempt 1: /,
      'a fresh log for the attempt',
    );
    // The tester's log was not full: not rotated.
    await assert.rejects(stat(join(dir, 'tester.log.1')));
  });
});
