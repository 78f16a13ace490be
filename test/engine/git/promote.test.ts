import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { MergeConflictError } from '../../../src/engine/git/gitErrors';
import { mergeTask } from '../../../src/engine/git/merge';
import { planPromotion, promoteBranch } from '../../../src/engine/git/promote';
import { commitFiles, commitOnBranch, fixture, git } from './gitFixture';

/** Pilot promotion: the pilot branch merged into the target as task merges are, or nothing changed. */

const PILOT = 'pipeline/pilot';

/** A pilot branch from main with two task merges on it, as pilot mode leaves it. */
async function pilotWithTasks(dir: string, repo: Parameters<typeof mergeTask>[0]): Promise<void> {
  await git(dir, 'branch', PILOT, 'main');
  for (const [id, file] of [
    ['TASK-001', 'one.txt'],
    ['TASK-002', 'two.txt'],
  ] as const) {
    await git(dir, 'branch', `pipeline/${id}`, PILOT);
    await commitOnBranch(dir, `pipeline/${id}`, { [file]: `${id}\n` }, `${id} work`);
    await mergeTask(repo, `pipeline/${id}`, PILOT, `Merge pipeline/${id}: ${id} the title`, { fastForward: false });
  }
}

void test('promote: one merge commit on the target naming the tasks; the checkout of main follows; again: nothing to do', async () => {
  const f = await fixture();
  try {
    await pilotWithTasks(f.dir, f.repo);
    await commitFiles(f.dir, { 'b.txt': 'b1\nmain moved\n' }, 'main moves on');
    const mainBefore = await git(f.dir, 'rev-parse', 'main');
    const pilotTip = await git(f.dir, 'rev-parse', PILOT);

    const plan = await planPromotion(f.repo, PILOT, 'main');
    assert.deepEqual(plan.tasks, ['TASK-001', 'TASK-002']);
    assert.equal(plan.commits, 4, 'two task commits and their two merges');
    assert.deepEqual(plan.conflicts, []);
    assert.equal(await git(f.dir, 'rev-parse', 'main'), mainBefore, 'planning changes nothing');

    const r = await promoteBranch(f.repo, PILOT, 'main');
    assert.equal(r.promoted, true);
    assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
    assert.deepEqual((await git(f.dir, 'rev-list', '--parents', '-n', '1', r.sha)).split(' ').slice(1), [
      mainBefore,
      pilotTip,
    ]);
    assert.equal(
      await git(f.dir, 'log', '-1', '--format=%s', r.sha),
      'Promote pipeline/pilot into main: TASK-001, TASK-002',
    );
    assert.equal(await readFile(join(f.dir, 'two.txt'), 'utf8'), 'TASK-002\n', 'the checkout of main moved with it');
    assert.equal(await git(f.dir, 'status', '--porcelain'), '');
    assert.equal(await git(f.dir, 'rev-parse', PILOT), pilotTip, 'the pilot branch stays as it was');

    const again = await promoteBranch(f.repo, PILOT, 'main');
    assert.deepEqual([again.promoted, again.commits, again.sha], [false, 0, r.sha]);
  } finally {
    await f.cleanup();
  }
});

void test('promote when main has not moved is still a merge commit, never a fast-forward', async () => {
  const f = await fixture();
  try {
    await pilotWithTasks(f.dir, f.repo);
    const mainBefore = await git(f.dir, 'rev-parse', 'main');
    const r = await promoteBranch(f.repo, PILOT, 'main');
    assert.equal((await git(f.dir, 'rev-list', '--parents', '-n', '1', r.sha)).split(' ').length, 3);
    assert.notEqual(r.sha, await git(f.dir, 'rev-parse', PILOT));
    assert.equal(await git(f.dir, 'rev-parse', `${r.sha}^1`), mainBefore);
  } finally {
    await f.cleanup();
  }
});

void test('tasks merged by fast-forward (no merge message) are named from the record of their merges', async () => {
  const f = await fixture();
  try {
    // The monitor fast-forwards the pilot branch when it has not moved: only the task's own commits.
    await git(f.dir, 'branch', PILOT, 'main');
    const one = await commitOnBranch(f.dir, PILOT, { 'one.txt': '1\n' }, 'design the parser');
    const two = await commitOnBranch(f.dir, PILOT, { 'two.txt': '2\n' }, 'write the formatter');
    const merged = [
      { id: 'TASK-002', commit: two },
      { id: 'TASK-001', commit: one },
      // Merged into main long ago, or somewhere else: not part of this promotion.
      { id: 'TASK-000', commit: await git(f.dir, 'rev-parse', 'main') },
    ];
    assert.deepEqual((await planPromotion(f.repo, PILOT, 'main')).tasks, [], 'the messages alone name no task');
    const plan = await planPromotion(f.repo, PILOT, 'main', merged);
    assert.deepEqual([plan.commits, plan.tasks], [2, ['TASK-001', 'TASK-002']], 'in merge order');
    const r = await promoteBranch(f.repo, PILOT, 'main', merged);
    assert.equal(
      await git(f.dir, 'log', '-1', '--format=%s', r.sha),
      'Promote pipeline/pilot into main: TASK-001, TASK-002',
    );
  } finally {
    await f.cleanup();
  }
});

void test('a conflict changes nothing and names the files; the plan says so beforehand', async () => {
  const f = await fixture();
  try {
    await pilotWithTasks(f.dir, f.repo);
    await commitOnBranch(f.dir, PILOT, { 'a.txt': 'pilot a\n' }, 'pilot edits a');
    await commitFiles(f.dir, { 'a.txt': 'main a\n', 'one.txt': 'main one\n' }, 'main edits a and one');
    const before = {
      main: await git(f.dir, 'rev-parse', 'main'),
      pilot: await git(f.dir, 'rev-parse', PILOT),
      status: await git(f.dir, 'status', '--porcelain'),
    };
    const plan = await planPromotion(f.repo, PILOT, 'main');
    assert.deepEqual([...plan.conflicts].sort(), ['a.txt', 'one.txt']);
    await assert.rejects(promoteBranch(f.repo, PILOT, 'main'), (e: unknown) => {
      assert.ok(e instanceof MergeConflictError, String(e));
      assert.deepEqual([...e.files].sort(), ['a.txt', 'one.txt']);
      assert.match(e.message, /Nothing was changed/);
      assert.match(e.details.fix ?? '', /merge main into pipeline\/pilot/);
      return true;
    });
    assert.deepEqual(
      {
        main: await git(f.dir, 'rev-parse', 'main'),
        pilot: await git(f.dir, 'rev-parse', PILOT),
        status: await git(f.dir, 'status', '--porcelain'),
      },
      before,
    );
  } finally {
    await f.cleanup();
  }
});

void test('compare-and-swap: a commit landing on main while the promotion is made is kept, the merge redone on it', async () => {
  const f = await fixture();
  try {
    await pilotWithTasks(f.dir, f.repo);
    const pilotTip = await git(f.dir, 'rev-parse', PILOT);
    let intruder = '';
    const r = await promoteBranch(f.repo, PILOT, 'main', [], {
      beforeAdvance: async (attempt) => {
        // A person commits on main after the merge commit was made and before main moves to it.
        if (attempt === 1) intruder = await commitFiles(f.dir, { 'person.txt': 'by hand\n' }, 'a commit meanwhile');
      },
    });
    assert.equal(r.promoted, true);
    assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
    assert.deepEqual(
      (await git(f.dir, 'rev-list', '--parents', '-n', '1', r.sha)).split(' ').slice(1),
      [intruder, pilotTip],
      "the promotion's merge commit sits on the commit that landed meanwhile, not on main's old tip",
    );
    assert.equal(await git(f.dir, 'show', `${r.sha}:person.txt`), 'by hand', 'the commit made meanwhile is kept');
    assert.equal(await git(f.dir, 'show', `${r.sha}:two.txt`), 'TASK-002', "and the pilot's work arrives");
    assert.equal(await git(f.dir, 'status', '--porcelain'), '');

    // A main that never stops moving is refused after the attempts allowed, the pilot branch unchanged.
    await commitOnBranch(f.dir, PILOT, { 'three.txt': 'three\n' }, 'more pilot work');
    const pilotAgain = await git(f.dir, 'rev-parse', PILOT);
    await assert.rejects(
      promoteBranch(f.repo, PILOT, 'main', [], {
        maxAttempts: 2,
        beforeAdvance: async (attempt) => {
          await commitFiles(f.dir, { [`busy-${attempt}.txt`]: 'b\n' }, `busy ${attempt}`);
        },
      }),
      /main moved during each of 2 attempts/,
    );
    assert.equal(
      await git(f.dir, 'log', '-1', '--format=%s', 'main'),
      'busy 2',
      "main holds only the person's commits",
    );
    assert.equal(await git(f.dir, 'rev-parse', PILOT), pilotAgain);
  } finally {
    await f.cleanup();
  }
});

void test('compare-and-swap: a conflicting commit landing on main meanwhile makes the promotion a conflict that changes nothing', async () => {
  const f = await fixture();
  try {
    await pilotWithTasks(f.dir, f.repo);
    const pilotTip = await git(f.dir, 'rev-parse', PILOT);
    const plan = await planPromotion(f.repo, PILOT, 'main');
    assert.deepEqual(plan.conflicts, [], 'clean when planned');
    let intruder = '';
    await assert.rejects(
      promoteBranch(f.repo, PILOT, 'main', [], {
        beforeAdvance: async (attempt) => {
          if (attempt === 1) intruder = await commitFiles(f.dir, { 'one.txt': 'main one\n' }, 'main writes one.txt');
        },
      }),
      (e: unknown) => {
        assert.ok(e instanceof MergeConflictError, String(e));
        assert.deepEqual([...e.files], ['one.txt']);
        assert.match(e.details.fix ?? '', /merge main into pipeline\/pilot/);
        return true;
      },
    );
    assert.equal(await git(f.dir, 'rev-parse', 'main'), intruder, "main is the person's commit, nothing more");
    assert.equal(await git(f.dir, 'rev-parse', PILOT), pilotTip);
    assert.equal(await readFile(join(f.dir, 'one.txt'), 'utf8'), 'main one\n');
    assert.equal(await git(f.dir, 'status', '--porcelain'), '');
  } finally {
    await f.cleanup();
  }
});

void test('a missing pilot branch is a clear error naming it', async () => {
  const f = await fixture();
  try {
    await assert.rejects(promoteBranch(f.repo, PILOT, 'main'), /pilot branch pipeline\/pilot does not exist/);
  } finally {
    await f.cleanup();
  }
});
