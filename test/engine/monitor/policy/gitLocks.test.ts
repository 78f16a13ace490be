import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../../src/engine/clock';
import { entries, story, withRig, type Rig } from './policyKit';

/**
 * A git lock held by another process (an editor's git integration, a person's git, a crashed
 * command's lock file) is transient: the workspace call that meets one changes nothing and fails
 * with code `git-lock`. The monitor never blocks a task or counts a failed attempt for it: a merge
 * is tried again, a launch requeues its task, a completion commit is repeated, each after a back-off
 * that grows while the lock stays held. The twin workspace's `holdLock` plays the other process.
 */

const ONE = [{ id: 'TASK-001', title: 'One' }];

/** The warnings about a git lock, in order. */
function lockWarnings(rig: Rig): string[] {
  return rig
    .of('monitor:warning')
    .map((w) => w.message)
    .filter((m) => m.includes('git lock'));
}

/** The port calls of one kind made so far (`merge TASK-001 main`). */
function callsOf(rig: Rig, call: string): number {
  return rig.workspace.calls.filter((c) => c === call).length;
}

void test('a merge that meets a held git lock is tried again with a growing back-off, not blocked', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    const held = rig.workspace.holdLock('merge', { times: 3 });
    const idle = await rig.run();
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] });
    const t = rig.task('TASK-001');
    assert.equal(entries(t, 'block').length, 0, story(t));
    assert.equal(t.failures, 0);
    assert.equal(held.failed, 3);
    assert.equal(callsOf(rig, 'merge TASK-001 main'), 4, 'three merges met the lock, the fourth landed');
    assert.equal(rig.workspace.read('main', 'src/TASK-001.js'), `TASK-001 by implementer, attempt 3\n`);
    assert.equal(t.merged_commit, rig.workspace.head('main'));
    // TINY_RETRY: 1 ms doubling, capped at 5 ms.
    const warnings = lockWarnings(rig);
    assert.equal(warnings.length, 3);
    assert.deepEqual(
      warnings.map((w) => /trying again in (\d+ ms)/.exec(w)?.[1]),
      ['1 ms', '2 ms', '4 ms'],
    );
    assert.match(warnings[0]!, /^merging TASK-001 waits for a git lock another process holds; trying again in 1 ms: /);
    assert.match(warnings[0]!, /Unable to create '.*main\.lock': File exists/);
  });
});

void test('while a lock stays held the task waits in merging and the pipeline is not idle; released, it merges', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    const held = rig.workspace.holdLock('merge');
    let idle = false;
    void rig.run().then(() => (idle = true));
    await rig.until('the merge meeting the lock ten times', () => held.failed >= 10);
    const t = rig.task('TASK-001');
    assert.equal(t.status, 'merging', story(t));
    assert.equal(entries(t, 'block').length, 0);
    assert.equal(idle, false, 'a merge still to do is not idle');
    assert.equal(rig.workspace.read('main', 'src/TASK-001.js'), undefined, 'nothing merged while the lock is held');
    assert.match(lockWarnings(rig).at(-1)!, /trying again in 5 ms/, 'the back-off stops growing at maxDelayMs');
    held.release();
    await rig.until('the task merging once the lock is released', () => rig.task('TASK-001').status === 'done');
    assert.equal(rig.workspace.read('main', 'src/TASK-001.js'), `TASK-001 by implementer, attempt 3\n`);
  });
});

void test('a merge that fails for another reason still blocks the task (only a held lock is transient)', async () => {
  await withRig({ tasks: ONE, config: { targetBranch: 'no-such-branch' } }, async (rig) => {
    const idle = await rig.run();
    assert.deepEqual(idle.blocked, ['TASK-001']);
    assert.equal(lockWarnings(rig).length, 0);
  });
});

void test('a launch that meets a held git lock requeues its task without counting a failure, more times than retries allow', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    // More than retry.maxAttempts (3): counted as failures, the task would be blocked.
    const held = rig.workspace.holdLock('prepare', { times: 5 });
    const idle = await rig.run();
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] });
    const t = rig.task('TASK-001');
    assert.equal(held.failed, 5);
    const requeues = entries(t, 'requeue');
    assert.equal(requeues.length, 5, story(t));
    for (const r of requeues) {
      assert.equal(r.stage, 'architect', 'the first launch met the lock');
      assert.match(
        r.note!,
        /^architect could not start on TASK-001: another process holds a git lock; tried again in \d+ ms \(.*index\.lock/,
      );
    }
    assert.equal(entries(t, 'fail').length, 0);
    assert.equal(entries(t, 'block').length, 0);
    assert.equal(t.failures, 0);
    assert.equal(
      rig.of('agent:started').filter((e) => e.stage === 'architect').length,
      1,
      'one start, once the lock let go',
    );
    assert.equal(rig.pipeline.state.agents.architect!.status, 'idle');
    assert.ok(rig.workspace.read('main', 'docs/design/TASK-001.md'));
  });
});

void test('a requeued launch is not taken again before its back-off on the clock', async () => {
  const clock = new FakeClock();
  await withRig(
    {
      tasks: ONE,
      clock,
      config: { retry: { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000, jitter: 0 } },
    },
    async (rig) => {
      rig.workspace.holdLock('prepare', { times: 2 });
      await rig.start();
      await rig.next('task:transition', (e) => e.event.type === 'requeue');
      let t = rig.task('TASK-001');
      assert.deepEqual([t.status, t.stage, t.failures, t.assigned_to], ['queued', 'architect', 0, null]);
      assert.equal(t.not_before, new Date(clock.now() + 1000).toISOString(), 'baseDelayMs after the first');
      // Early, the monitor starts nothing; on time, the launch meets the lock again and backs off twice as long.
      clock.advance(999);
      rig.monitor.kick();
      await rig.monitor.rescanNow();
      assert.equal(entries(rig.task('TASK-001'), 'assign').length, 1, 'not taken again before its back-off');
      clock.advance(1);
      rig.monitor.kick();
      await rig.until('the second requeue', () => entries(rig.task('TASK-001'), 'requeue').length === 2);
      t = rig.task('TASK-001');
      assert.equal(t.not_before, new Date(clock.now() + 2000).toISOString(), 'the back-off doubled');
      clock.advance(2000);
      rig.monitor.kick();
      const idle = await rig.run();
      assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] });
      assert.equal(entries(rig.task('TASK-001'), 'fail').length, 0);
    },
  );
});

void test('a completion commit that meets a held git lock is repeated: the work the agent left is kept and merged', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    // The first commit after the architect's marker: the architect left its design uncommitted.
    const held = rig.workspace.holdLock('commitAll', { times: 2 });
    const idle = await rig.run();
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] });
    assert.equal(held.failed, 2);
    const warnings = lockWarnings(rig);
    assert.equal(warnings.length, 2);
    assert.match(
      warnings[0]!,
      /^committing what architect left for TASK-001 waits for a git lock another process holds; trying again in 1 ms/,
    );
    const t = rig.task('TASK-001');
    assert.equal(entries(t, 'fail').length, 0, story(t));
    assert.deepEqual(
      entries(t, 'assign').map((h) => h.stage),
      ['architect', 'test', 'implementation', 'supervisor'],
      'each stage once: the hand-off waited for the commit',
    );
    assert.equal(rig.workspace.read('main', 'docs/design/TASK-001.md'), 'TASK-001 by architect, attempt 1\n');
    assert.ok(
      rig.workspace.log('main').includes('TASK-001 architect: work left uncommitted by architect'),
      'committed by the monitor once the lock let go',
    );
  });
});

void test('a person who blocks the task while its completion commit waits for a lock ends the wait', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    const held = rig.workspace.holdLock('commitAll');
    await rig.start();
    await rig.until('the commit meeting the lock', () => held.failed >= 2);
    await rig.pipeline.blockTask('TASK-001', 'stopped by hand');
    await rig.until('the architect freed', () => rig.pipeline.state.agents.architect!.status === 'idle');
    // Count the commits started, not the ones failed: a commit already under way when the person
    // blocked the task may still fail after the agent is freed; none may start after.
    const commits = () => rig.workspace.calls.filter((c) => c.startsWith('commitAll ')).length;
    const startedThen = commits();
    const idle = await rig.run();
    assert.deepEqual(idle.blocked, ['TASK-001']);
    assert.equal(commits(), startedThen, 'no commit tried after the attempt ended');
    assert.ok(held.failed >= 2);
    assert.equal(rig.task('TASK-001').blocked_reason, 'stopped by hand');
  });
});
