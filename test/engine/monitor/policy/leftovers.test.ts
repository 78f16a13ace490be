import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ScriptedAgent } from '../../../support/twins/memoryRunner';
import { diligent, entries, story, withRig } from './policyKit';

/**
 * Work a killed or failed agent left uncommitted in its worktree, met together with a git lock
 * another process holds (a killed agent's `git add` leaves a fresh `index.lock` next to its files):
 * the lock is transient, so setting the leftovers aside waits for it instead of giving up, and a
 * launch that finds leftovers sets them aside itself, requeueing its task without counting a failure
 * while the lock is held. A task an infrastructure fault blocked goes back to work at the next start.
 */

const ONE = [{ id: 'TASK-001', title: 'One' }];

/** Writes a file and exits 1 on its first run (a crash mid-work); diligent after. */
function crashesAfterWriting(): ScriptedAgent {
  let runs = 0;
  return async (req, io) => {
    await io.write(`src/${req.taskId}.js`, 'half done\n');
    if (++runs === 1) return 1;
    return diligent(req, io);
  };
}

void test('a set-aside that meets a held git lock is tried again until it lets go: the leftovers are kept, the retry starts on a clean worktree', async () => {
  await withRig({ tasks: ONE, programs: { implementer: crashesAfterWriting() } }, async (rig) => {
    // The first set-aside (of the crashed implementation attempt) meets the lock four times.
    const held = rig.workspace.holdLock('setAside', { times: 4 });
    const idle = await rig.run();
    const t = rig.task('TASK-001');
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, `${story(t)}: ${t.blocked_reason ?? ''}`);
    assert.equal(held.failed, 4);
    const failed = entries(t, 'fail');
    assert.equal(failed.length, 1, `only the crash counts as a failure: ${story(t)}`);
    const kept = /kept at (refs\/pipeline\/set-aside\/TASK-001\/attempt-\d+)\)/.exec(failed[0]!.note ?? '');
    assert.ok(kept, `the failure names where the work was kept: ${failed[0]!.note ?? ''}`);
    assert.equal(rig.workspace.read(kept[1]!, 'src/TASK-001.js'), 'half done\n');
    const waits = rig
      .of('monitor:warning')
      .map((w) => w.message)
      .filter((m) => m.startsWith('setting aside what implementer left uncommitted for TASK-001 waits for a git lock'));
    assert.equal(waits.length, 4);
    assert.equal(
      rig.of('monitor:warning').filter((w) => w.message.startsWith('Could not set aside')).length,
      0,
      'never given up',
    );
  });
});

void test('a launch that finds leftovers in its worktree while a git lock is held is requeued without counting a failure, then sets them aside and starts', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const architect: ScriptedAgent = async (req, io) => {
    await gate;
    return diligent(req, io);
  };
  await withRig({ tasks: ONE, programs: { architect } }, async (rig) => {
    await rig.start();
    await rig.until('the architect at work', () => rig.task('TASK-001').status === 'working');
    // Meanwhile a killed agent's git left a file in the tester's worktree, and its index lock.
    const tester = rig.workspace.worktreePath('tester');
    await mkdir(join(tester, 'src'), { recursive: true });
    await writeFile(join(tester, 'src', 'killed.js'), 'left by a killed agent\n');
    // More times than retries allow: counted as failures, the task would be blocked.
    const held = rig.workspace.holdLock('setAside', { times: 5 });
    release();
    const idle = await rig.run();
    const t = rig.task('TASK-001');
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, `${story(t)}: ${t.blocked_reason ?? ''}`);
    assert.equal(held.failed, 5);
    assert.equal(entries(t, 'fail').length, 0, story(t));
    assert.equal(t.failures, 0);
    const requeues = entries(t, 'requeue');
    assert.ok(requeues.length >= 1, story(t));
    for (const r of requeues) {
      assert.equal(r.stage, 'test');
      assert.match(r.note!, /^tester could not start on TASK-001: another process holds a git lock; tried again in/);
    }
    // The requeue's own settling waited for the lock and kept the leftovers; the history names where.
    const kept = /kept at (refs\/pipeline\/set-aside\/TASK-001\/attempt-\d+)\)/.exec(requeues[0]!.note ?? '');
    assert.ok(kept, requeues[0]!.note);
    assert.equal(rig.workspace.read(kept[1]!, 'src/killed.js'), 'left by a killed agent\n');
    assert.equal(rig.workspace.read('main', 'src/killed.js'), undefined, "never merged as the task's work");
  });
});

void test('a launch that finds leftovers in its worktree sets them aside under a ref named in a warning, and starts', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const architect: ScriptedAgent = async (req, io) => {
    await gate;
    return diligent(req, io);
  };
  await withRig({ tasks: ONE, programs: { architect } }, async (rig) => {
    await rig.start();
    await rig.until('the architect at work', () => rig.task('TASK-001').status === 'working');
    const tester = rig.workspace.worktreePath('tester');
    await mkdir(join(tester, 'src'), { recursive: true });
    await writeFile(join(tester, 'src', 'killed.js'), 'left by a killed agent\n');
    release();
    const idle = await rig.run();
    const t = rig.task('TASK-001');
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, `${story(t)}: ${t.blocked_reason ?? ''}`);
    assert.equal(entries(t, 'fail').length + entries(t, 'requeue').length, 0, story(t));
    const kept = rig
      .of('monitor:warning')
      .map((w) =>
        /^tester had left work uncommitted in its worktree \(TASK-001\); kept at (\S+) before tester started on TASK-001/.exec(
          w.message,
        ),
      )
      .find(Boolean);
    assert.ok(kept, 'a warning names where the leftovers were kept');
    assert.equal(kept[1], 'refs/pipeline/set-aside/TASK-001/left-by-tester');
    assert.equal(
      rig.workspace.read('refs/pipeline/set-aside/TASK-001/left-by-tester', 'src/killed.js'),
      'left by a killed agent\n',
    );
    assert.equal(rig.workspace.read('main', 'src/killed.js'), undefined, "never merged as the task's work");
  });
});

void test("what an agent writes after its stage is done is not the next stage's: the hand-over goes on, and the agent's next start sets it aside", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const tester: ScriptedAgent = async (req, io) => {
    await gate;
    return diligent(req, io);
  };
  await withRig(
    {
      tasks: [...ONE, { id: 'TASK-002', title: 'After', prerequisites: ['TASK-001'] }],
      programs: { tester },
    },
    async (rig) => {
      await rig.start();
      await rig.whenStarted('tester', 'TASK-001');
      // The architect's stage is done and its worktree let go of the branch at its completion; then
      // something writes into it (an agent still in its grace after its marker).
      const architectDir = rig.workspace.worktreePath('architect');
      await writeFile(join(architectDir, 'stray.txt'), 'written after the stage\n');
      release();
      const idle = await rig.run();
      for (const id of ['TASK-001', 'TASK-002']) {
        const t = rig.task(id);
        assert.equal(t.status, 'done', `${story(t)}: ${t.blocked_reason ?? ''}`);
        assert.equal(entries(t, 'fail').length, 0, story(t));
      }
      assert.deepEqual(idle, { done: 2, blocked: [], waiting: [] });
      const warnings = rig.of('monitor:warning').map((w) => w.message);
      const kept = warnings
        .map((m) =>
          /^architect had left work uncommitted in its worktree \(TASK-001\); kept at (\S+) before architect started on TASK-002/.exec(
            m,
          ),
        )
        .find(Boolean);
      assert.ok(kept, warnings.join('\n'));
      assert.equal(rig.workspace.read(kept[1]!, 'stray.txt'), 'written after the stage\n');
      assert.equal(rig.workspace.read('main', 'stray.txt'), undefined, "never merged as a task's work");
      assert.ok(
        !warnings.some((m) => m.includes('before tester started')),
        `the tester's hand-over did not meet it: ${warnings.join('\n')}`,
      );
    },
  );
});

void test('a task an infrastructure fault blocked goes back to work at the next start, the history saying why', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    // Something that is not a worktree where the architect's worktree belongs: no launch can prepare it.
    const stray = rig.workspace.worktreePath('architect');
    await mkdir(stray, { recursive: true });
    await writeFile(join(stray, 'notes.txt'), "a person's notes\n");
    let idle = await rig.run();
    assert.deepEqual(idle.blocked, ['TASK-001']);
    let t = rig.task('TASK-001');
    assert.match(
      t.blocked_reason ?? '',
      /^could not start architect on TASK-001: Cannot create the worktree of architect/,
    );
    assert.match(t.blocked_reason ?? '', /\[infrastructure fault: the task goes back to work once it is repaired\]$/);
    // The person moves it away; the next start repairs, and the task goes back to work by itself.
    await rig.restart({ whileDown: () => rm(stray, { recursive: true, force: true }) });
    idle = await rig.run();
    t = rig.task('TASK-001');
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, `${story(t)}: ${t.blocked_reason ?? ''}`);
    const unblocks = entries(t, 'unblock');
    assert.equal(unblocks.length, 1, story(t));
    assert.match(
      unblocks[0]!.note ?? '',
      /^back to work: the start-up repair dealt with the infrastructure fault that blocked it \(could not start architect on TASK-001: Cannot create the worktree of architect/,
    );
  });
});

void test('a block that is not an infrastructure fault stays blocked across a start', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    await rig.start();
    await rig.pipeline.blockTask('TASK-001', 'stopped by hand');
    await rig.restart();
    const idle = await rig.run();
    assert.deepEqual(idle.blocked, ['TASK-001']);
    assert.equal(entries(rig.task('TASK-001'), 'unblock').length, 0);
  });
});
