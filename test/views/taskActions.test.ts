import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMMANDS, VIEWS } from '../../src/contributions';
import { isPipelineError } from '../../src/engine/errors';
import { TASK_STATUSES, type Task, type TaskStatus } from '../../src/engine/model/schema';
import { transitionTask, type TaskEvent } from '../../src/engine/model/taskLifecycle';
import { TASK_FLAGS, taskActions, taskContextValue, type TaskFlag } from '../../src/views/taskActions';

/**
 * The Tasks tree's actions come from the task lifecycle: for every status, the flags a task gets,
 * checked against a table written out here, against what the lifecycle's transition function
 * accepts, and through package.json's menus to the entries a person sees.
 */

const MANIFEST = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { menus: Record<string, { command: string; when?: string; group?: string }[]> };
};

/** What each status allows, written out by hand (hasTaskFile depends on the attempt, not the status). */
const EXPECTED: Record<TaskStatus, TaskFlag[]> = {
  pending: ['canBlock', 'canCancel', 'canReprioritise', 'canEdit'],
  queued: ['canBlock', 'canCancel', 'canReprioritise', 'canEdit'],
  working: ['canBlock', 'canCancel', 'canReprioritise', 'canEdit'],
  merging: ['canBlock', 'canCancel', 'canReprioritise', 'canEdit'],
  blocked: ['canRetry', 'canUnblock', 'canCancel', 'canReprioritise', 'canEdit'],
  done: [],
  cancelled: [],
};

function task(status: TaskStatus, attempt: number): Task {
  return {
    id: 'TASK-001',
    title: 't',
    description: '',
    prerequisites: [],
    priority: 'medium',
    paths: [],
    labels: [],
    status,
    stage: 'implementation',
    assigned_to: status === 'working' ? 'impl-1' : null,
    branch: 'pipeline/TASK-001',
    attempt,
    failures: 0,
    not_before: null,
    blocked_reason: status === 'blocked' ? 'why' : null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    seq: 0,
    merged_commit: null,
    history: [],
  };
}

function accepts(t: Task, event: TaskEvent): boolean {
  try {
    transitionTask(t, event, '2026-01-01T00:01:00.000Z');
    return true;
  } catch (e) {
    assert.ok(isPipelineError(e) && e.code === 'illegal-transition', `an illegal transition, not ${String(e)}`);
    return false;
  }
}

/** The task menu entries shown for a tree item with this context value, as `command@group`. */
function taskMenu(contextValue: string): string[] {
  const shown: string[] = [];
  for (const entry of MANIFEST.contributes.menus['view/item/context'] ?? []) {
    const terms = (entry.when ?? '').split('&&').map((x) => x.trim());
    if (!terms.includes(`view == ${VIEWS.tasks}`)) continue;
    const ok = terms.every((term) => {
      if (term === `view == ${VIEWS.tasks}`) return true;
      const re = /^viewItem =~ \/(.+)\/$/.exec(term);
      if (!re) throw new Error(`a task menu's "when" has a term this test cannot read: ${term}`);
      return new RegExp(re[1]!).test(contextValue);
    });
    if (ok) shown.push(`${entry.command}@${entry.group ?? ''}`);
  }
  return shown.sort();
}

void test('the expected table covers every status', () => {
  assert.deepEqual(Object.keys(EXPECTED).sort(), [...TASK_STATUSES].sort());
});

for (const status of TASK_STATUSES) {
  for (const attempt of [0, 2]) {
    void test(`a ${status} task at attempt ${attempt}: its flags, context value and menu`, () => {
      const t = task(status, attempt);
      const flags = [...EXPECTED[status], ...(attempt > 0 ? (['hasTaskFile'] as const) : [])];
      const actions = taskActions(t);
      assert.deepEqual(
        (Object.keys(TASK_FLAGS) as TaskFlag[]).filter((f) => actions[f]),
        (Object.keys(TASK_FLAGS) as TaskFlag[]).filter((f) => flags.includes(f)),
      );
      assert.equal(
        taskContextValue(t),
        ['task', ...(Object.keys(TASK_FLAGS) as TaskFlag[]).filter((f) => flags.includes(f))].join(' '),
      );

      // The transition function agrees with every flag that stands for a lifecycle event.
      assert.equal(actions.canBlock, accepts(t, { type: 'block', reason: 'a person' }), 'block');
      assert.equal(actions.canCancel, accepts(t, { type: 'cancel', reason: 'a person' }), 'cancel');
      assert.equal(actions.canUnblock, accepts(t, { type: 'unblock' }), 'unblock');
      assert.equal(actions.canRetry, accepts(t, { type: 'unblock' }), 'retry is an unblock');

      // What package.json's menus show for it: the diff always, each action exactly with its flag.
      const expected = [`${COMMANDS.showTaskDiff}@inline@2`, `${COMMANDS.showTaskDiff}@0_open@2`];
      if (flags.includes('hasTaskFile'))
        expected.push(`${COMMANDS.openTaskFile}@inline@1`, `${COMMANDS.openTaskFile}@0_open@1`);
      const action: [TaskFlag, string][] = [
        ['canRetry', COMMANDS.retryTask],
        ['canUnblock', COMMANDS.unblockTask],
        ['canBlock', COMMANDS.blockTask],
        ['canCancel', COMMANDS.cancelTask],
        ['canReprioritise', COMMANDS.reprioritiseTask],
        ['canEdit', COMMANDS.editTask],
      ];
      for (const [flag, command] of action) {
        const entry = MANIFEST.contributes.menus['view/item/context']!.find((e) => e.command === command);
        if (flags.includes(flag)) expected.push(`${command}@${entry?.group ?? ''}`);
      }
      assert.deepEqual(taskMenu(taskContextValue(t)), expected.sort());
    });
  }
}

void test('a task awaiting review (queued at a human stage) also offers Review, Approve and Request Changes', () => {
  for (const status of TASK_STATUSES) {
    const t = task(status, 3);
    // Only a queued task can await review; the flag never shows on another status, whatever the caller says.
    const review = status === 'queued';
    assert.equal(taskActions(t, true).canReview, review, status);
    assert.equal(taskActions(t, false).canReview, false, status);
    const extra = taskMenu(taskContextValue(t, true)).filter((e) => !taskMenu(taskContextValue(t)).includes(e));
    assert.deepEqual(
      extra,
      review
        ? [
            `${COMMANDS.approveReview}@0_review@2`,
            `${COMMANDS.requestChanges}@0_review@3`,
            `${COMMANDS.reviewTask}@0_review@1`,
            `${COMMANDS.reviewTask}@inline@0`,
          ]
        : [],
      status,
    );
  }
});

void test("no task menu restates the lifecycle: the menus test flags, never a status's name", () => {
  const whens = (MANIFEST.contributes.menus['view/item/context'] ?? [])
    .filter((e) => e.when?.includes(`view == ${VIEWS.tasks}`))
    .map((e) => e.when!);
  assert.ok(whens.length >= 9, 'the Tasks tree has its menu entries');
  for (const when of whens)
    for (const status of TASK_STATUSES) assert.doesNotMatch(when, new RegExp(`\\b${status}\\b`), when);
  const used = new Set(whens.flatMap((w) => [...w.matchAll(/\\b(\w+)\\b/g)].map((m) => m[1]!)));
  assert.deepEqual([...used].sort(), Object.values(TASK_FLAGS).sort(), 'every flag is used, and only flags');
  // A prerequisite row and a group offer no task action.
  assert.deepEqual(taskMenu('prerequisite'), []);
  assert.deepEqual(taskMenu('group'), []);
});
