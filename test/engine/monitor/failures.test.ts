import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMPLETED_LINE } from '../../../src/engine/agents/completionMarker';
import { Pipeline } from '../../../src/engine/pipeline';
import {
  assertAllMerged,
  assertGitHealthy,
  entries,
  readState,
  requireBuild,
  runMonitorQuietly,
  runUntilIdle,
  sandbox,
  until,
} from './monitorKit';

/**
 * What happens when agents fail: retries with back-off, blocking after the last attempt or at once
 * for a command that cannot start, the BLOCKED and CHANGES REQUESTED markers, and the rule that a
 * marker counts only in the task file of the current attempt.
 */

requireBuild();

void test('failed attempts are retried and then complete; a stage that always fails blocks after maxAttempts; run --until-idle exits non-zero', async () => {
  const sb = await sandbox({
    config: { retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 50, jitter: 0 } },
    tasks: [
      { id: 'TASK-001', title: 'Fails once', paths: ['a/**'], description: 'scripted: fail implementation 1' },
      { id: 'TASK-002', title: 'Always fails', paths: ['b/**'], description: 'scripted: fail implementation 9' },
      { id: 'TASK-003', title: 'Waits on the blocked one', paths: ['c/**'], prerequisites: ['TASK-002'] },
      {
        id: 'TASK-004',
        title: 'Crashes once, exits once without a marker',
        paths: ['d/**'],
        description: 'scripted: crash test 1\nscripted: exit-clean architect 1',
      },
    ],
  });
  try {
    const r = await runMonitorQuietly(sb.dir);
    assert.notEqual(r.code, 0, `run --until-idle exits non-zero when a task is blocked; printed:\n${r.output}`);
    assert.match(r.output, /blocked: TASK-002/);
    assert.match(r.output, /cannot go on: TASK-003/);
    const state = await readState(sb.dir);

    const t1 = state.tasks['TASK-001']!;
    assert.equal(t1.status, 'done');
    const f1 = entries(t1, 'fail');
    assert.equal(f1.length, 1);
    assert.equal(f1[0]!.stage, 'implementation');
    assert.match(f1[0]!.note!, /exited with code 1 without a completion marker/);
    assert.equal(
      entries(t1, 'assign').filter((h) => h.stage === 'implementation').length,
      2,
      'implementation ran twice',
    );

    const t2 = state.tasks['TASK-002']!;
    assert.equal(t2.status, 'blocked');
    assert.equal(t2.stage, 'implementation');
    assert.match(t2.blocked_reason!, /failed 2 of 2 attempts/);
    assert.match(t2.blocked_reason!, /exited with code 1/);
    assert.equal(entries(t2, 'assign').filter((h) => h.stage === 'implementation').length, 2, 'no third attempt');
    // The retry waited for its back-off: the second assignment is not before not_before.
    const [fail] = entries(t2, 'fail');
    const [, second] = entries(t2, 'assign').filter((h) => h.stage === 'implementation');
    assert.ok(Date.parse(second!.at) >= Date.parse(fail!.at) + 20, 'the retry came after its back-off');

    assert.equal(state.tasks['TASK-003']!.status, 'pending', 'a task behind a blocked prerequisite never starts');
    assert.equal(state.tasks['TASK-003']!.attempt, 0);

    const t4 = state.tasks['TASK-004']!;
    assert.equal(t4.status, 'done');
    const notes = entries(t4, 'fail').map((h) => `${h.stage}: ${h.note}`);
    assert.equal(notes.length, 2, notes.join('\n'));
    assert.match(notes[0]!, /^architect: .*exited with code 0 without a completion marker/);
    assert.match(notes[1]!, /^test: .*exited with code 1 without a completion marker/);

    await assertAllMerged(sb.dir, { ...state, tasks: { 'TASK-001': t1, 'TASK-004': t4 } });
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('a command that does not exist blocks the task at once: a permanent failure is not retried', async () => {
  const sb = await sandbox({
    agents: [
      ['architect', 'architect', 'no-such-agent-cmd {taskFile}'],
      ['tester', 'tester'],
      ['implementer', 'implementer'],
      ['supervisor', 'supervisor'],
    ],
    tasks: [{ id: 'TASK-001', title: 'Never starts' }],
  });
  try {
    const r = await runUntilIdle(sb.dir, { timeoutMs: 20_000 });
    assert.deepEqual(r.idle.blocked, ['TASK-001']);
    const t = r.state.tasks['TASK-001']!;
    assert.equal(t.status, 'blocked');
    assert.match(t.blocked_reason!, /no-such-agent-cmd/);
    assert.match(t.blocked_reason!, /not retried/);
    assert.equal(entries(t, 'assign').length, 1, 'one attempt only');
    assert.equal(entries(t, 'fail').length, 0);
    assert.equal(r.state.agents.architect!.status, 'idle', 'the agent is free again');
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test("BLOCKED blocks the task with the agent's reason; CHANGES REQUESTED sends it back to implementation, and it then merges", async () => {
  const sb = await sandbox({
    tasks: [
      {
        id: 'TASK-001',
        title: 'Blocks in test',
        paths: ['a/**'],
        description: 'scripted: block test the schema is ambiguous',
      },
      { id: 'TASK-002', title: 'Reviewed twice', paths: ['b/**'], description: 'scripted: request-changes 2' },
    ],
  });
  try {
    const r = await runUntilIdle(sb.dir);
    assert.deepEqual(r.idle.blocked, ['TASK-001']);

    const t1 = r.state.tasks['TASK-001']!;
    assert.equal(t1.status, 'blocked');
    assert.equal(t1.stage, 'test');
    assert.equal(t1.blocked_reason, 'tester (test): the schema is ambiguous');
    assert.equal(entries(t1, 'fail').length, 0, 'a BLOCKED marker is an answer, not a failure');
    assert.equal(entries(t1, 'assign').length, 2, 'architect and tester only');

    const t2 = r.state.tasks['TASK-002']!;
    assert.equal(t2.status, 'done');
    const reviews = entries(t2, 'changes_requested');
    assert.equal(reviews.length, 2);
    assert.match(reviews[0]!.note!, /add an edge-case test \(review 1\)/);
    // After each request: implementation again, then the supervisor again.
    const stages = entries(t2, 'assign').map((h) => h.stage);
    assert.deepEqual(stages, [
      'architect',
      'test',
      'implementation',
      'supervisor',
      'implementation',
      'supervisor',
      'implementation',
      'supervisor',
    ]);
    // The rework's task file tells the implementer what the reviewer asked.
    const attempt = t2.history.filter((h) => h.event === 'assign')[4]!;
    assert.equal(attempt.stage, 'implementation');
    const file = join(sb.worktreeRoot, 'implementer', '.pipeline-task', 'TASK-002.attempt-5.md');
    assert.match(await readFile(file, 'utf8'), /changes_requested: add an edge-case test \(review 1\)/);
    await assertAllMerged(sb.dir, { ...r.state, tasks: { 'TASK-002': t2 } });
    // The rework's commits are merged too.
    const files = await readdir(join(sb.dir, 'test'));
    assert.ok(files.includes('task-002.edge-1.test.js') && files.includes('task-002.edge-2.test.js'), files.join(', '));
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('a marker written into the task file of an earlier attempt does not complete the current attempt', async () => {
  const sb = await sandbox({
    config: { retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 50, jitter: 0 } },
    tasks: [{ id: 'TASK-001', title: 'Old markers' }],
  });
  // An implementer that fails its first attempt; on the second it marks every earlier attempt's
  // file completed, waits long enough for file events and a rescan, and ends without a marker.
  const agent = join(sb.base, 'old-marker-agent.js');
  await writeFile(
    agent,
    `const fs = require('fs'), path = require('path');
const file = process.argv[2];
const attempt = Number(/stage-attempt=(\\d+)/.exec(fs.readFileSync(file, 'utf8'))[1]);
if (attempt === 1) process.exit(1);
for (const n of fs.readdirSync(path.dirname(file))) if (n !== path.basename(file)) fs.appendFileSync(path.join(path.dirname(file), n), '\\n${COMPLETED_LINE}\\n');
setTimeout(() => process.exit(3), 500);
`,
  );
  const pl = await Pipeline.open({ cwd: sb.dir, role: 'lead' });
  try {
    await pl.removeAgent('implementer');
    await pl.addAgent({ id: 'implementer', role: 'implementer', command: `{node} ${agent} {taskFile}` });
  } finally {
    await pl.close();
  }
  try {
    const r = await runUntilIdle(sb.dir, {
      during: async (_p, m) => {
        // Once the old file carries its marker (the second attempt is still running), a rescan
        // reads the current attempt's file only.
        const dir = join(sb.worktreeRoot, 'implementer', '.pipeline-task');
        await until("an earlier attempt's file marked", 20_000, async () => {
          for (const n of await readdir(dir).catch(() => []))
            if ((await readFile(join(dir, n), 'utf8')).endsWith(`${COMPLETED_LINE}\n`)) return true;
          return false;
        });
        await m.rescanNow();
      },
    });
    const t = r.state.tasks['TASK-001']!;
    assert.equal(t.status, 'blocked', `history: ${t.history.map((h) => `${h.event}@${h.stage}`).join(' ')}`);
    assert.match(
      t.blocked_reason!,
      /exited with code 3 without a completion marker.* \(log: [^)]*\) \(failed 2 of 2 attempts\)$/,
    );
    // A history entry names the stage the task moves to, and the agent it leaves.
    assert.ok(
      !t.history.some((h) => h.event === 'complete' && h.agent === 'implementer'),
      'implementation never completed',
    );
    const dir = join(sb.worktreeRoot, 'implementer', '.pipeline-task');
    const impl = entries(t, 'assign').filter((h) => h.stage === 'implementation');
    assert.equal(impl.length, 2);
    const firstAttempt = t.attempt - 1;
    assert.ok(
      (await readFile(join(dir, `TASK-001.attempt-${firstAttempt}.md`), 'utf8')).endsWith(`${COMPLETED_LINE}\n`),
      'the old file does carry a marker',
    );
    await assertGitHealthy(sb);
  } finally {
    await sb.cleanup();
  }
});

void test('a task blocked by hand while its completion is being applied (the stage check runs) stays blocked, and the monitor goes on', async () => {
  const started = join(tmpdir(), `pipeline-check-started-${process.pid}-${Date.now()}`);
  const sb = await sandbox({
    config: {
      stages: [
        { name: 'architect', role: 'architect' },
        { name: 'test', role: 'tester' },
        { name: 'implementation', role: 'implementer', check: `touch ${started} && sleep 1` },
        { name: 'supervisor', role: 'supervisor' },
      ],
    },
    tasks: [
      { id: 'TASK-001', title: 'Blocked during its check', paths: ['a/**'] },
      { id: 'TASK-002', title: 'Goes on', paths: ['b/**'], prerequisites: ['TASK-001'] },
      { id: 'TASK-003', title: 'Independent', paths: ['c/**'] },
    ],
  });
  try {
    const r = await runUntilIdle(sb.dir, {
      during: async (p) => {
        await until('the implementation check of TASK-001 started', 30_000, () => existsSync(started));
        await p.blockTask('TASK-001', 'stopped by hand during the check');
      },
    });
    const t = r.state.tasks['TASK-001']!;
    assert.equal(t.status, 'blocked');
    assert.equal(t.blocked_reason, 'stopped by hand during the check');
    assert.equal(t.history.at(-1)!.event, 'block', 'nothing was applied after the block');
    assert.deepEqual(r.idle.blocked, ['TASK-001']);
    assert.equal(r.state.tasks['TASK-003']!.status, 'done', 'the monitor went on with the other work');
    assert.equal(r.state.agents.implementer!.status, 'idle');
    await assertGitHealthy(sb);
  } finally {
    await rm(started, { force: true });
    await sb.cleanup();
  }
});
