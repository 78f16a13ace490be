import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPipelineError, type PipelineError } from '../../../../src/engine/errors';
import { awaitingReview } from '../../../../src/engine/model/humanStage';
import { DEFAULT_STAGES, type StageConfig } from '../../../../src/engine/model/configSchema';
import { type TaskSpec } from '../../../../src/engine/model/schema';
import { Pipeline } from '../../../../src/engine/pipeline';
import { dispatchMutation } from '../../../../src/engine/mutations/mutationTable';
import { assignedStages, entries, story, withRig, type Rig, type RigOptions } from './policyKit';

/**
 * A person as a stage: the supervisor stage's role is `human`. A task that reaches it waits,
 * awaiting review, with no agent started; a person's answer (the `reviewTask` mutation) is applied
 * as the agent's marker would be: approve merges, changes go back to implementation, block blocks.
 */

const HUMAN_SUPERVISOR: StageConfig[] = DEFAULT_STAGES.map((s) =>
  s.name === 'supervisor' ? { name: 'supervisor', role: 'human' } : s,
);
const AGENTS: Array<[string, string]> = [
  ['architect', 'architect'],
  ['tester', 'tester'],
  ['implementer', 'implementer'],
];
const ONE: TaskSpec[] = [{ id: 'TASK-001', title: 'Reviewed by a person', paths: ['src/one/**'] }];

function rigOptions(o: Partial<RigOptions> = {}): RigOptions {
  return { tasks: ONE, agents: AGENTS, config: { stages: HUMAN_SUPERVISOR }, ...o };
}

/** Runs until idle and checks the task waits for its review at the supervisor stage. */
async function untilAwaitingReview(rig: Rig, id = 'TASK-001'): Promise<void> {
  const idle = await rig.run();
  assert.ok(idle.waiting.includes(id), `${id} waits for the person (waiting: ${idle.waiting.join(', ')})`);
  const t = rig.task(id);
  assert.deepEqual([t.status, t.stage, t.assigned_to], ['queued', 'supervisor', null]);
  assert.ok(awaitingReview(t, rig.pipeline.config));
}

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<PipelineError> {
  let error: PipelineError | undefined;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isPipelineError(e), `a PipelineError, not ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    error = e;
    return true;
  });
  return error!;
}

void test('a task reaching a human stage waits for its review: no agent starts, status and explain say so', async () => {
  await withRig(rigOptions(), async (rig) => {
    await untilAwaitingReview(rig);
    const p = rig.pipeline;
    assert.deepEqual(
      rig.of('agent:started').map((e) => e.stage),
      ['architect', 'test', 'implementation'],
      'no agent was started for the human stage',
    );
    assert.deepEqual(p.status().awaiting_review, ['TASK-001']);
    assert.deepEqual(p.status().queues.supervisor, ['TASK-001']);
    assert.match(
      p.scheduler.explain('TASK-001', p.state, Date.now()),
      /^TASK-001 is awaiting your review at supervisor/,
    );
    assert.deepEqual(p.dryRun().plan.assignments, [], 'nothing would be assigned');
    const check = p.rolloutCheck(null);
    assert.ok(check.passed.includes('stage supervisor is reviewed by a person'), check.reasons.join('; '));
    assert.ok(!check.reasons.some((r) => r.includes('supervisor')), check.reasons.join('; '));
  });
});

void test('approve: the task is merged by the running monitor, its history reads like an agent stage', async () => {
  await withRig(rigOptions(), async (rig) => {
    await untilAwaitingReview(rig);
    const after = await rig.pipeline.reviewTask('TASK-001', { verdict: 'approve' });
    assert.equal(after.status, 'merging');
    await rig.until('TASK-001 merged', () => rig.task('TASK-001').status === 'done');
    const t = rig.task('TASK-001');
    assert.deepEqual(assignedStages(t), ['architect', 'test', 'implementation', 'supervisor']);
    assert.equal(entries(t, 'assign').at(-1)!.agent, 'human');
    assert.equal(entries(t, 'complete').at(-1)!.note, 'supervisor done by human');
    assert.ok(rig.workspace.contains('main', t.merged_commit!), 'the merge is on main');
    assert.deepEqual(await rig.run(), { done: 1, blocked: [], waiting: [] });
  });
});

void test('changes: back to implementation with the request in the task file, then approved and merged', async () => {
  await withRig(rigOptions(), async (rig) => {
    await untilAwaitingReview(rig);
    const after = await rig.pipeline.reviewTask('TASK-001', { verdict: 'changes', text: 'Handle empty input.' });
    assert.deepEqual([after.status, after.stage], ['queued', 'implementation']);
    await untilAwaitingReview(rig);
    const t = rig.task('TASK-001');
    assert.equal(
      story(t)
        .split(' ')
        .filter((s) => s === 'assign@implementation').length,
      2,
    );
    assert.equal(entries(t, 'changes_requested')[0]!.note, 'Handle empty input.');
    // The implementer's second attempt was told what the person asked for.
    const rework = entries(t, 'assign').filter((h) => h.stage === 'implementation')[1]!;
    const attempt = t.history.filter((h) => h.event === 'assign').indexOf(rework) + 1;
    assert.match(await rig.taskFile('implementer', 'TASK-001', attempt), /Handle empty input\./);
    await rig.pipeline.reviewTask('TASK-001', { verdict: 'approve' });
    assert.deepEqual(await rig.run(), { done: 1, blocked: [], waiting: [] });
  });
});

void test('block: the task is blocked with the reviewer and the reason', async () => {
  await withRig(rigOptions(), async (rig) => {
    await untilAwaitingReview(rig);
    const after = await rig.pipeline.reviewTask('TASK-001', { verdict: 'block', reason: 'needs a product decision' });
    assert.deepEqual([after.status, after.blocked_reason], ['blocked', 'human (supervisor): needs a product decision']);
    assert.deepEqual(await rig.run(), { done: 0, blocked: ['TASK-001'], waiting: [] });
  });
});

void test('an answer for a task not awaiting review, or without its words, is a clear error and changes nothing', async () => {
  await withRig(
    rigOptions({
      tasks: [...ONE, { id: 'TASK-002', title: 'Still pending', prerequisites: ['TASK-001'] }],
    }),
    async (rig) => {
      const p = rig.pipeline;
      await rejects(
        p.reviewTask('TASK-002', { verdict: 'approve' }),
        'illegal-transition',
        /^TASK-002 is not awaiting review: it is pending\.$/,
      );
      await untilAwaitingReview(rig);
      const seq = p.state.next_seq;
      const before = structuredClone(rig.task('TASK-001'));
      await rejects(p.reviewTask('TASK-001', { verdict: 'changes', text: '  ' }), 'usage', /Say what should change/);
      await rejects(p.reviewTask('TASK-001', { verdict: 'block', reason: '' }), 'usage', /Say why the task is blocked/);
      await rejects(p.reviewTask('TASK-404', { verdict: 'approve' }), 'unknown-task', /TASK-404/);
      // From another process, an answer that is not one of the three never reaches the mutation.
      await rejects(
        dispatchMutation(p, 'reviewTask', ['TASK-001', { verdict: 'maybe' }]),
        'usage',
        /Malformed arguments for reviewTask/,
      );
      assert.deepEqual(rig.task('TASK-001'), before, 'the task is as it was');
      assert.equal(p.state.next_seq, seq);
      await p.reviewTask('TASK-001', { verdict: 'approve' });
      // Answered once: a second answer finds nothing to review.
      await rejects(p.reviewTask('TASK-001', { verdict: 'approve' }), 'illegal-transition', /not awaiting review/);
    },
  );
});

void test('without a human stage, a review answer says how to configure one', async () => {
  await withRig({ tasks: ONE }, async (rig) => {
    const e = await rejects(
      rig.pipeline.reviewTask('TASK-001', { verdict: 'approve' }),
      'illegal-transition',
      /not awaiting/,
    );
    assert.match(e.details.fix ?? '', /No stage of .*config\.json is worked by people: .*"role": "human"/);
  });
});

void test('a human stage in the middle: approve moves on to the next stage; changes are refused there', async () => {
  const stages: StageConfig[] = [
    { name: 'architect', role: 'architect' },
    { name: 'design-review', role: 'human' },
    { name: 'implementation', role: 'implementer' },
    { name: 'supervisor', role: 'supervisor' },
  ];
  await withRig(
    {
      tasks: ONE,
      agents: [
        ['architect', 'architect'],
        ['implementer', 'implementer'],
        ['supervisor', 'supervisor'],
      ],
      config: { stages, conflictStages: ['implementation'] },
    },
    async (rig) => {
      const idle = await rig.run();
      assert.deepEqual(idle.waiting, ['TASK-001']);
      assert.equal(rig.task('TASK-001').stage, 'design-review');
      await rejects(
        rig.pipeline.reviewTask('TASK-001', { verdict: 'changes', text: 'x' }),
        'usage',
        /only at the last stage \(supervisor\); TASK-001 is at design-review/,
      );
      await rig.pipeline.reviewTask('TASK-001', { verdict: 'approve' });
      assert.deepEqual(await rig.run(), { done: 1, blocked: [], waiting: [] });
      assert.deepEqual(assignedStages(rig.task('TASK-001')), [
        'architect',
        'design-review',
        'implementation',
        'supervisor',
      ]);
    },
  );
});

void test('sequential mode: the next task waits while the current one awaits review', async () => {
  await withRig(
    rigOptions({
      orchestration: 'sequential',
      tasks: [...ONE, { id: 'TASK-002', title: 'Next in line', paths: ['src/two/**'] }],
    }),
    async (rig) => {
      const idle = await rig.run();
      assert.deepEqual(idle.waiting.sort(), ['TASK-001', 'TASK-002']);
      assert.equal(rig.task('TASK-002').attempt, 0, 'TASK-002 has not started');
      assert.equal(rig.pipeline.state.current_task, 'TASK-001');
      await rig.pipeline.reviewTask('TASK-001', { verdict: 'approve' });
      await untilAwaitingReview(rig, 'TASK-002');
      assert.equal(rig.task('TASK-001').status, 'done');
    },
  );
});

void test('a follower’s review answer is forwarded to the leader, which moves the task on', async () => {
  await withRig(rigOptions(), async (rig) => {
    await untilAwaitingReview(rig);
    const follower = await Pipeline.open({ cwd: rig.dir, role: 'follow', label: 'a person at the CLI' });
    try {
      assert.equal(follower.isLeader, false);
      const after = await follower.reviewTask('TASK-001', { verdict: 'approve' });
      assert.equal(after.status, 'merging');
    } finally {
      await follower.close();
    }
    await rig.until('TASK-001 merged by the leader', () => rig.task('TASK-001').status === 'done');
  });
});

void test('no agent can play the human role or take its name', async () => {
  await withRig(rigOptions(), async (rig) => {
    await rejects(rig.pipeline.addAgent({ id: 'alice', role: 'human', command: 'x' }), 'usage', /kept for people/);
    await rejects(rig.pipeline.addAgent({ id: 'human', role: 'tester', command: 'x' }), 'usage', /kept for people/);
  });
});

void test('a review answer torn by a crash after its assign is requeued at restart, to be answered again', async () => {
  await withRig(rigOptions(), async (rig) => {
    await untilAwaitingReview(rig);
    await rig.restart({
      whileDown: async () => {
        // What a torn write leaves: the answer's assign without its outcome.
        const p = await Pipeline.open({ cwd: rig.dir, role: 'lead', label: 'torn write' });
        try {
          const b = p.newBatch();
          b.transition('TASK-001', { type: 'assign', agent: 'human', attempt: p.state.tasks['TASK-001']!.attempt + 1 });
          await p.commit(b);
        } finally {
          await p.close();
        }
      },
    });
    await untilAwaitingReview(rig);
    assert.match(entries(rig.task('TASK-001'), 'requeue').at(-1)!.note!, /cut short by a crash/);
    await rig.pipeline.reviewTask('TASK-001', { verdict: 'approve' });
    await rig.until('TASK-001 merged', () => rig.task('TASK-001').status === 'done');
  });
});
