import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diligent, entries, story, withRig } from './policyKit';

/**
 * A merge that conflicts sends the task back to implementation with the conflicting files in its
 * next task file. A rework that resolves the conflict merges; one that leaves it in place is
 * blocked after `retry.maxAttempts` conflicting merges, never a loop. Here a person commits to
 * main, while the task is reviewed, a change to the very file the task's implementer wrote.
 */

const FILE = 'src/TASK-001.js';

void test('a conflict nobody resolves: back to implementation with the file named, blocked after maxAttempts rounds', async () => {
  await withRig({ tasks: [{ id: 'TASK-001', title: 'One' }] }, async (rig) => {
    let pushed = false;
    rig.pipeline.events.on('agent:started', (e) => {
      if (e.stage === 'supervisor' && !pushed) {
        pushed = true;
        rig.workspace.commitOn('main', { [FILE]: 'a person wrote this\n' }, 'a person edits the same file');
      }
    });
    const mainAfterPush = () => rig.workspace.head('main');
    const idle = await rig.run();
    assert.deepEqual(idle.blocked, ['TASK-001']);
    const t = rig.task('TASK-001');
    assert.match(
      t.blocked_reason!,
      /^merging into main conflicted in src\/TASK-001\.js 3 times in a row; resolve it on pipeline\/TASK-001/,
    );
    assert.deepEqual(
      entries(t, 'conflict').map((h) => [h.stage, h.note]),
      [
        ['implementation', `merge conflict in ${FILE}`],
        ['implementation', `merge conflict in ${FILE}`],
      ],
    );
    const merges = rig.of('merge:finished');
    assert.equal(merges.length, 3);
    for (const m of merges) assert.deepEqual([m.commit, m.conflicts], [null, [FILE]]);
    // Each rework's task file names the file to resolve.
    const reworks = entries(t, 'assign')
      .map((h, i) => ({ h, attempt: i + 1 }))
      .filter(({ h, attempt }) => h.stage === 'implementation' && attempt > 3);
    assert.equal(reworks.length, 2, story(t));
    for (const { attempt } of reworks)
      assert.match(
        await rig.taskFile('implementer', 'TASK-001', attempt),
        /## Merge conflict to resolve\n\nMerging into `main` conflicted in: `src\/TASK-001\.js`/,
      );
    // Nothing lost: main keeps the person's change, the branch the task's.
    assert.equal(rig.workspace.read('main', FILE), 'a person wrote this\n');
    assert.equal(rig.workspace.head('main'), mainAfterPush());
    assert.match(rig.workspace.read('pipeline/TASK-001', FILE)!, /^TASK-001 by implementer/);
  });
});

void test('a conflict the implementer resolves (merging main into the branch) merges on the next round', async () => {
  await withRig(
    {
      tasks: [{ id: 'TASK-001', title: 'One' }],
      programs: (ws) => ({
        implementer: async (req, io) => {
          const text = await io.taskFile();
          if (!text.includes('## Merge conflict to resolve')) return diligent(req, io);
          const main = ws.read('main', FILE)!;
          const ours = (await io.read(FILE))!;
          await ws.mergeFrom(
            req.agentId,
            'main',
            { [FILE]: `${main}${ours}` },
            `Merge main into pipeline/${req.taskId}`,
          );
          await io.complete();
        },
      }),
    },
    async (rig) => {
      let pushed = false;
      rig.pipeline.events.on('agent:started', (e) => {
        if (e.stage === 'supervisor' && !pushed) {
          pushed = true;
          rig.workspace.commitOn('main', { [FILE]: 'a person wrote this\n' }, 'a person edits the same file');
        }
      });
      assert.deepEqual(await rig.run(), { done: 1, blocked: [], waiting: [] });
      const t = rig.task('TASK-001');
      assert.equal(entries(t, 'conflict').length, 1, story(t));
      const after = t.history.slice(t.history.findIndex((h) => h.event === 'conflict'));
      assert.deepEqual(
        entries({ ...t, history: after }, 'assign').map((h) => h.stage),
        ['implementation', 'supervisor'],
      );
      assert.equal(rig.workspace.read('main', FILE), 'a person wrote this\nTASK-001 by implementer, attempt 3\n');
    },
  );
});
