import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { mock, test } from 'node:test';
import { COMPLETED_LINE } from '../../../../src/engine/agents/completionMarker';
import { TASK_DIR, taskFileName } from '../../../../src/engine/agents/taskFile';
import { FakeClock } from '../../../../src/engine/clock';
import { DEFAULT_STAGES } from '../../../../src/engine/model/configSchema';
import { appendFile } from 'node:fs/promises';
import type { ScriptedAgent } from '../../../support/twins/memoryRunner';
import { assignedStages, committing, diligent, entries, failsFirst, story, withRig, type Rig } from './policyKit';

/**
 * What the monitor does when an attempt does not simply complete: retries with back-off, blocking
 * when retries run out or cannot help, the BLOCKED and CHANGES REQUESTED answers, markers of
 * earlier attempts, stage timeouts and failing stage checks.
 */

const ONE = [{ id: 'TASK-001', title: 'One' }];

void test('a failed attempt is retried after its back-off on the clock, then completes', async () => {
  const clock = new FakeClock();
  await withRig(
    {
      tasks: ONE,
      clock,
      config: { retry: { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000, jitter: 0 } },
      programs: { implementer: failsFirst(1) },
    },
    async (rig) => {
      await rig.start();
      await rig.next('task:transition', (e) => e.event.type === 'fail');
      const t = rig.task('TASK-001');
      assert.deepEqual([t.status, t.stage, t.failures], ['queued', 'implementation', 1]);
      const notBefore = clock.now() + 1000;
      assert.equal(t.not_before, new Date(notBefore).toISOString(), 'the back-off is baseDelayMs, no jitter');
      assert.match(
        entries(t, 'fail')[0]!.note!,
        /^implementer \(implementation\) exited with code 1 without a completion marker.* \(log: \.pipeline\/logs\/agents\/implementer\.log\)$/,
      );
      // One millisecond early the monitor is asked to act, then on time: the retry's assignment
      // carries the clock's time, so it shows which of the two started it.
      clock.advance(999);
      rig.monitor.kick();
      clock.advance(1);
      rig.monitor.kick();
      const idle = await rig.run();
      assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] });
      const done = rig.task('TASK-001');
      const impl = entries(done, 'assign').filter((h) => h.stage === 'implementation');
      assert.equal(impl.length, 2, story(done));
      assert.ok(Date.parse(impl[1]!.at) >= notBefore, `the retry started at ${impl[1]!.at}, not before its back-off`);
      assert.equal(done.failures, 0, 'failures count per stage: reset once it completes');
      assert.equal(
        rig.workspace.read('main', 'src/TASK-001.js'),
        `TASK-001 by implementer, attempt ${done.attempt - 1}\n`,
      );
    },
  );
});

void test('retries exhausted: the task is blocked with the count, and what depends on it waits', async () => {
  await withRig(
    {
      tasks: [...ONE, { id: 'TASK-002', title: 'After', prerequisites: ['TASK-001'] }],
      programs: { implementer: () => 1 },
    },
    async (rig) => {
      const idle = await rig.run();
      assert.deepEqual(idle, { done: 0, blocked: ['TASK-001'], waiting: ['TASK-002'] });
      const t = rig.task('TASK-001');
      assert.equal(t.status, 'blocked');
      assert.equal(t.stage, 'implementation');
      assert.match(
        t.blocked_reason!,
        /implementer \(implementation\) exited with code 1 without a completion marker.* \(log: \.pipeline\/logs\/agents\/implementer\.log\) \(failed 3 of 3 attempts\)$/,
      );
      assert.equal(assignedStages(t).filter((s) => s === 'implementation').length, 3, 'no fourth attempt');
      assert.equal(entries(t, 'fail').length, 2, 'two retried failures, then the block');
      assert.equal(rig.task('TASK-002').attempt, 0, 'the dependent task never started');
      assert.equal(rig.pipeline.state.agents.implementer!.status, 'idle');
    },
  );
});

void test('a command that cannot start blocks the task at once: a permanent failure is not retried', async () => {
  await withRig(
    {
      tasks: ONE,
      agents: [
        ['architect', 'architect', 'no-such-agent'],
        ['tester', 'tester'],
      ],
    },
    async (rig) => {
      const idle = await rig.run();
      assert.deepEqual(idle.blocked, ['TASK-001']);
      const t = rig.task('TASK-001');
      assert.match(
        t.blocked_reason!,
        /^architect's command `no-such-agent` could not be started: command not found: no-such-agent\. Install it, or change the agent's command .*not retried/,
      );
      assert.deepEqual(assignedStages(t), ['architect']);
      assert.equal(entries(t, 'fail').length, 0);
      assert.equal(rig.pipeline.state.agents.architect!.status, 'idle', 'the agent is free again');
      assert.equal(rig.of('agent:exited')[0]!.marker, false);
    },
  );
});

void test("BLOCKED blocks the task with the agent's reason; it is an answer, not a failure", async () => {
  await withRig(
    { tasks: ONE, programs: { tester: (_req, io) => io.block('the schema is ambiguous') } },
    async (rig) => {
      const idle = await rig.run();
      assert.deepEqual(idle.blocked, ['TASK-001']);
      const t = rig.task('TASK-001');
      assert.deepEqual([t.status, t.stage], ['blocked', 'test']);
      assert.equal(t.blocked_reason, 'tester (test): the schema is ambiguous');
      assert.equal(entries(t, 'fail').length, 0);
      assert.deepEqual(assignedStages(t), ['architect', 'test']);
      assert.equal(rig.workspace.read('main', 'docs/design/TASK-001.md'), undefined, 'nothing merged');
    },
  );
});

void test('CHANGES REQUESTED sends the task back to implementation with the request, and it then merges', async () => {
  let reviews = 0;
  await withRig(
    {
      tasks: ONE,
      programs: {
        supervisor: async (_req, io) => {
          if (++reviews === 1) await io.requestChanges('add an edge-case test');
          else await io.complete();
        },
      },
    },
    async (rig) => {
      const idle = await rig.run();
      assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] });
      const t = rig.task('TASK-001');
      assert.deepEqual(assignedStages(t), [
        'architect',
        'test',
        'implementation',
        'supervisor',
        'implementation',
        'supervisor',
      ]);
      const [review] = entries(t, 'changes_requested');
      assert.equal(review!.note, 'add an edge-case test');
      const rework = entries(t, 'assign')[4]!;
      const file = await rig.taskFile(
        'implementer',
        'TASK-001',
        t.history.filter((h) => h.event === 'assign').indexOf(rework) + 1,
      );
      assert.match(file, /changes_requested: add an edge-case test/, "the rework's task file says what was asked");
      assert.equal(
        rig.workspace.read('main', 'src/TASK-001.js'),
        'TASK-001 by implementer, attempt 5\n',
        'the rework is merged',
      );
    },
  );
});

void test('a marker written into the task file of an earlier attempt does not complete the current one', async () => {
  let runs = 0;
  let rig: Rig | undefined;
  await withRig(
    {
      tasks: ONE,
      config: { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5, jitter: 0 } },
      programs: {
        implementer: async (req) => {
          if (++runs === 1) return 1;
          const earlier = join(dirname(req.taskFile), taskFileName(req.taskId, req.attempt - 1));
          await appendFile(earlier, `\n${COMPLETED_LINE}\n`);
          await rig!.monitor.rescanNow();
          return 3;
        },
      },
    },
    async (r) => {
      rig = r;
      const idle = await r.run();
      assert.deepEqual(idle.blocked, ['TASK-001']);
      const t = r.task('TASK-001');
      assert.match(
        t.blocked_reason!,
        /exited with code 3 without a completion marker.* \(log: [^)]*\) \(failed 2 of 2 attempts\)$/,
      );
      assert.ok(!t.history.some((h) => h.event === 'complete' && h.agent === 'implementer'), story(t));
      const earlier = join(r.workspace.worktreePath('implementer'), TASK_DIR, taskFileName('TASK-001', t.attempt - 1));
      assert.ok(readFileSync(earlier, 'utf8').endsWith(`${COMPLETED_LINE}\n`), 'the old file does carry a marker');
    },
  );
});

void test('a stage that outlives its timeoutSeconds fails "timed out after N s", and its agent is stopped', async () => {
  // The stage's timer runs on the real clock: it is mocked here and moved by hand.
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    await withRig(
      {
        tasks: ONE,
        config: {
          retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 5, jitter: 0 },
          stages: DEFAULT_STAGES.map((s) => (s.name === 'implementation' ? { ...s, timeoutSeconds: 30 } : s)),
        },
        programs: { implementer: (_req, io) => io.hold() },
      },
      async (rig) => {
        await rig.start();
        await rig.whenStarted('implementer', 'TASK-001');
        mock.timers.tick(29_999);
        assert.equal(rig.task('TASK-001').status, 'working', 'not a millisecond early');
        mock.timers.tick(1);
        await rig.until('the task blocked', () => rig.task('TASK-001').status === 'blocked');
        const t = rig.task('TASK-001');
        assert.equal(t.blocked_reason, 'implementer timed out after 30 s in implementation (failed 1 of 1 attempts)');
        const [run] = rig.runner.runsOf('implementer');
        assert.ok(run!.stopped, 'the agent was stopped');
        assert.equal(run!.status, 'killed');
        assert.equal(rig.pipeline.state.agents.implementer!.status, 'idle');
      },
    );
  } finally {
    mock.timers.reset();
  }
});

void test('a failing stage check fails the attempt with its output kept; the retry is shown the output, passes, and merges', async () => {
  let checks = 0;
  await withRig(
    {
      tasks: ONE,
      config: { stages: DEFAULT_STAGES.map((s) => (s.name === 'implementation' ? { ...s, check: 'npm test' } : s)) },
      // The implementer commits its own work, as agents are told to.
      programs: (ws) => ({ implementer: committing(ws) }),
      checks: {
        'npm test': () => (++checks === 1 ? { code: 1, output: '1 failing: parser rejects empty input\n' } : 0),
      },
    },
    async (rig) => {
      const idle = await rig.run();
      assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] });
      const t = rig.task('TASK-001');
      const [fail] = entries(t, 'fail');
      assert.equal(fail!.note, 'the implementation check `npm test` failed');
      assert.deepEqual(
        rig.of('check:finished').map((c) => c.passed),
        [false, true],
      );
      const first = rig.of('check:finished')[0]!;
      assert.ok(existsSync(first.evidence));
      assert.match(
        readFileSync(first.evidence, 'utf8'),
        /^\$ npm test\n# in .*, exit 1\n1 failing: parser rejects empty input\n$/,
      );
      assert.deepEqual(
        rig.checks.runs.map((r) => [r.cwd, r.env.PIPELINE_TASK_ID]),
        [
          [rig.workspace.worktreePath('implementer'), 'TASK-001'],
          [rig.workspace.worktreePath('implementer'), 'TASK-001'],
        ],
      );
      const retry = await rig.taskFile('implementer', 'TASK-001', entries(t, 'assign').length - 1);
      assert.match(
        retry,
        /## The check failed last time\n\n```\n\$ npm test\n.*\n1 failing: parser rejects empty input/,
      );
    },
  );
});

void test('an attempt whose check failed, its work left uncommitted, does not keep the retry from starting', async () => {
  let checks = 0;
  await withRig(
    {
      tasks: ONE,
      config: { stages: DEFAULT_STAGES.map((s) => (s.name === 'implementation' ? { ...s, check: 'npm test' } : s)) },
      checks: { 'npm test': () => (++checks === 1 ? 1 : 0) },
    },
    async (rig) => {
      const idle = await rig.run();
      const t = rig.task('TASK-001');
      assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, `${story(t)}: ${t.blocked_reason ?? ''}`);
    },
  );
});

void test('an attempt that crashed after writing files does not keep the retry from starting; what it left is kept aside', async () => {
  await withRig({ tasks: ONE, programs: { implementer: failsAfterWriting() } }, async (rig) => {
    const idle = await rig.run();
    const t = rig.task('TASK-001');
    assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, `${story(t)}: ${t.blocked_reason ?? ''}`);
    const failed = entries(t, 'fail');
    assert.equal(failed.length, 1, story(t));
    const kept =
      /what implementer left uncommitted is kept at (refs\/pipeline\/set-aside\/TASK-001\/attempt-(\d+))\)/.exec(
        failed[0]!.note ?? '',
      );
    assert.ok(kept, `the failure names where the work was kept: ${failed[0]!.note ?? ''}`);
    assert.equal(rig.workspace.read(kept[1]!, 'src/TASK-001.js'), 'half done\n', 'the half-done file is kept');
    assert.match(
      rig.workspace.commit(kept[1]!).message,
      new RegExp(`^TASK-001 implementation: left uncommitted by implementer in attempt ${kept[2]!}`),
    );
  });
});

void test('a marker written off the task branch (a detached HEAD) fails the attempt, keeps the work aside, and the retry completes', async () => {
  let runs = 0;
  await withRig(
    {
      tasks: ONE,
      programs: (workspace) => ({
        implementer: async (req, io) => {
          await io.write(`src/${req.taskId}.js`, 'written while detached\n');
          if (++runs === 1) {
            workspace.detach(req.agentId);
            return io.complete();
          }
          return diligent(req, io);
        },
      }),
    },
    async (rig) => {
      const idle = await rig.run();
      const t = rig.task('TASK-001');
      assert.deepEqual(idle, { done: 1, blocked: [], waiting: [] }, `${story(t)}: ${t.blocked_reason ?? ''}`);
      const failed = entries(t, 'fail');
      assert.equal(failed.length, 1, story(t));
      assert.match(failed[0]!.note ?? '', /finished off the task's branch: .*detached HEAD/);
      const kept = /kept at (refs\/pipeline\/set-aside\/TASK-001\/attempt-\d+)\)/.exec(failed[0]!.note ?? '');
      assert.ok(kept, failed[0]!.note);
      assert.equal(rig.workspace.read(kept[1]!, 'src/TASK-001.js'), 'written while detached\n');
    },
  );
});

/** Writes its file, then crashes (exit 1) on its first run; diligent after. */
function failsAfterWriting(): ScriptedAgent {
  let runs = 0;
  return async (req, io) => {
    await io.write(`src/${req.taskId}.js`, 'half done\n');
    if (++runs === 1) return 1;
    return diligent(req, io);
  };
}
