import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isPipelineError } from '../../../../src/engine/errors';
import { DirtyWorktreeError, MergeConflictError } from '../../../../src/engine/git/gitErrors';
import { PushRejectedError, UnpublishedWorkError } from '../../../../src/engine/git/remote/remoteErrors';
import { until } from '../../../support/waiting';
import { commitFiles, git, gitCode } from '../gitFixture';
import { clusterPerFile, originTip, userPushes, type Machine } from './remoteFixture';

const c = clusterPerFile(['a', 'b', 'c']);
const m = (name: string): Machine => c.machines[name]!;

async function isAncestor(dir: string, ancestor: string, descendant: string): Promise<boolean> {
  return (await gitCode(dir, 'merge-base', '--is-ancestor', ancestor, descendant)) === 0;
}

/** What the user's own checkouts look like: HEAD, local main and the status of every clone. */
async function checkouts(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const dir of [c.user, ...Object.values(c.machines).map((x) => x.dir)]) {
    out[dir] = [
      await git(dir, 'rev-parse', 'HEAD'),
      await git(dir, 'rev-parse', 'refs/heads/main'),
      await git(dir, 'symbolic-ref', 'HEAD'),
      await git(dir, 'status', '--porcelain'),
    ].join(' ');
  }
  return out;
}

void test('a task goes architect on A, tester on B, implementer on C, then merges into main by a push', async () => {
  const before = await checkouts();
  const mainAtStart = await originTip(c, 'main');

  // Architect on A: no task branch on the remote yet, so it starts at the remote main.
  const arch = await m('a').remote.receive('architect', 'TASK-1', 'main');
  assert.equal(arch.kind, 'created');
  assert.equal(arch.remoteTip, undefined);
  assert.equal(arch.head, mainAtStart);
  assert.equal(await git(arch.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-1');
  const design = await commitFiles(arch.worktree, { 'docs/design.md': 'design\n' }, 'TASK-1: design');
  assert.deepEqual(await m('a').remote.publish('TASK-1'), { branch: 'pipeline/TASK-1', sha: design, kind: 'created' });
  assert.equal(await originTip(c, 'pipeline/TASK-1'), design);

  // Main moves on meanwhile; the tester on B takes the target's new commit in (mergeTarget).
  const userWork = await userPushes(c, { 'user.txt': 'by a person\n' }, 'user work on main');
  const tester = await m('b').remote.receive('tester', 'TASK-1', 'main', { mergeTarget: true });
  assert.equal(tester.kind, 'created');
  assert.equal(tester.remoteTip, design);
  assert.equal(tester.update, 'merged');
  assert.equal(await git(tester.worktree, 'rev-parse', 'HEAD'), tester.head);
  assert.equal(await git(tester.worktree, 'rev-parse', 'HEAD^1'), design);
  assert.equal(await git(tester.worktree, 'rev-parse', 'HEAD^2'), userWork);
  assert.equal(await git(tester.worktree, 'status', '--porcelain'), '');
  const tests = await commitFiles(tester.worktree, { 'test/design.test.txt': 'tests\n' }, 'TASK-1: tests');
  assert.equal((await m('b').remote.publish('TASK-1')).kind, 'fast-forward');
  assert.equal(await originTip(c, 'pipeline/TASK-1'), tests);

  // Implementer on C: exactly the remote tip, nothing merged.
  const impl = await m('c').remote.receive('implementer', 'TASK-1', 'main');
  assert.equal(impl.head, tests);
  assert.equal(impl.update, 'up-to-date');
  assert.equal(await git(impl.worktree, 'rev-parse', 'HEAD'), tests);
  assert.equal(await git(impl.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-1');
  const code = await commitFiles(impl.worktree, { 'src/feature.txt': 'feature\n' }, 'TASK-1: implementation');
  assert.equal((await m('c').remote.publish('TASK-1')).kind, 'fast-forward');
  // Publishing again changes nothing.
  assert.equal((await m('c').remote.publish('TASK-1')).kind, 'up-to-date');

  // Main moves again, so the coordinator's merge (on A, whose clone never saw the tester's or the
  // implementer's commits) is a true merge commit.
  const userMore = await userPushes(c, { 'more.txt': 'more\n' }, 'more user work');
  const merged = await m('a').remote.merge('TASK-1', 'main', 'Merge TASK-1');
  assert.equal(merged.kind, 'merge');
  assert.equal(merged.attempts, 1);
  assert.equal(merged.merged, code);
  assert.equal(await originTip(c, 'main'), merged.sha);
  for (const sha of [design, tests, code, userWork, userMore]) {
    assert.ok(await isAncestor(c.origin, sha, 'main'), `${sha} is in the remote main`);
  }
  assert.equal(await git(c.origin, 'rev-parse', `${merged.sha}^1`), userMore);
  assert.equal(await git(c.origin, 'rev-parse', `${merged.sha}^2`), code);
  assert.equal(await git(m('a').dir, 'rev-parse', 'refs/remotes/origin/main'), merged.sha);
  // No clone's checkout moved: not the user's, not any machine's main working tree.
  const after = await checkouts();
  assert.equal(after[m('a').dir], before[m('a').dir]);
  assert.equal(after[m('b').dir], before[m('b').dir]);
  assert.equal(after[m('c').dir], before[m('c').dir]);

  // Merging again is up to date; the merged branch is then removed from the remote.
  assert.equal((await m('b').remote.merge('TASK-1', 'main', 'Merge TASK-1')).kind, 'up-to-date');
  assert.equal(await m('b').remote.deleteMergedBranch('TASK-1', 'main', code), 'deleted');
  assert.equal(await originTip(c, 'pipeline/TASK-1'), '');
  assert.equal(await git(c.origin, 'fsck', '--no-progress', '--no-dangling'), '');
});

void test('two machines merge different tasks into main at the same moment: one retries, both land', async () => {
  const start = await originTip(c, 'main');
  const work: Record<string, string> = {};
  for (const [name, task] of [
    ['a', 'TASK-2'],
    ['b', 'TASK-3'],
  ] as const) {
    const r = await m(name).remote.receive('implementer', task, 'main');
    assert.equal(r.head, start);
    work[task] = await commitFiles(r.worktree, { [`${task}.txt`]: `${task}\n` }, `${task}: work`);
    await m(name).remote.publish(task);
  }
  // Both compute their merge from the same main and push only once both have: one push must lose.
  const atPush = new Set<string>();
  const barrier = (name: string) => async (attempt: number) => {
    if (attempt !== 1) return;
    atPush.add(name);
    await until('both machines ready to push', 10_000, () => atPush.size === 2);
  };
  const [ra, rb] = await Promise.all([
    m('a').remote.merge('TASK-2', 'main', 'Merge TASK-2', { beforePush: barrier('a') }),
    m('b').remote.merge('TASK-3', 'main', 'Merge TASK-3', { beforePush: barrier('b') }),
  ]);
  assert.deepEqual([ra.attempts, rb.attempts].sort(), [1, 2], 'exactly one merge was recomputed');
  const [first, second] = ra.attempts === 1 ? [ra, rb] : [rb, ra];
  assert.equal(await originTip(c, 'main'), second.sha);
  assert.equal(second.kind, 'merge');
  // The retry built on the first merge: main's first-parent history holds both, nothing was lost.
  assert.equal(await git(c.origin, 'rev-parse', `${second.sha}^1`), first.sha);
  const history = (await git(c.origin, 'rev-list', '--first-parent', 'main')).split('\n');
  assert.ok(history.includes(first.sha) && history.includes(second.sha) && history.includes(start));
  for (const sha of [work['TASK-2']!, work['TASK-3']!, start]) assert.ok(await isAncestor(c.origin, sha, 'main'));
  assert.equal(await git(c.origin, 'fsck', '--no-progress', '--no-dangling'), '');
});

void test('receiving over unpublished local commits refuses, or keeps them aside and takes the remote tip', async () => {
  const arch = await m('a').remote.receive('architect', 'TASK-4', 'main');
  const design = await commitFiles(arch.worktree, { 'TASK-4.md': 'design\n' }, 'TASK-4: design');
  await m('a').remote.publish('TASK-4');

  // The tester on B commits but never publishes (its machine was cut off); the stage is redone on C.
  const lost = await m('b').remote.receive('tester', 'TASK-4', 'main');
  const unpublished = await commitFiles(lost.worktree, { 'TASK-4.test': 'b tests\n' }, 'TASK-4: tests on B');
  const redo = await m('c').remote.receive('tester', 'TASK-4', 'main');
  const redone = await commitFiles(redo.worktree, { 'TASK-4.test': 'c tests\n' }, 'TASK-4: tests on C');
  await m('c').remote.publish('TASK-4');

  // B's late publish is refused, naming both commits; the remote keeps C's work.
  await assert.rejects(m('b').remote.publish('TASK-4'), (e: unknown) => {
    assert.ok(e instanceof PushRejectedError, String(e));
    assert.equal(e.code, 'git');
    assert.match(e.message, new RegExp(`${unpublished.slice(0, 12)}.*${redone.slice(0, 12)}`));
    assert.match(e.message, /origin/);
    assert.match(e.message, /pipeline\/TASK-4/);
    return true;
  });
  assert.equal(await originTip(c, 'pipeline/TASK-4'), redone);

  // The implementer on B: the default refuses and changes nothing.
  await assert.rejects(m('b').remote.receive('implementer', 'TASK-4', 'main'), (e: unknown) => {
    assert.ok(e instanceof UnpublishedWorkError, String(e));
    assert.equal(e.localSha, unpublished);
    assert.equal(e.remoteSha, redone);
    assert.equal(e.commits, 1);
    assert.match(e.message, new RegExp(unpublished.slice(0, 12)));
    assert.equal(e.diverged, true);
    assert.match(e.details.fix ?? '', /set-aside/);
    return true;
  });
  assert.equal(await git(m('b').dir, 'rev-parse', 'refs/heads/pipeline/TASK-4'), unpublished);
  assert.equal(await git(lost.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-4');

  // A dirty worktree holding the branch is refused too, whatever the option.
  await writeFile(join(lost.worktree, 'scratch.txt'), 'not committed\n');
  await assert.rejects(
    m('b').remote.receive('implementer', 'TASK-4', 'main', { onUnpublished: 'set-aside' }),
    (e: unknown) => e instanceof DirtyWorktreeError && e.files.includes('scratch.txt'),
  );
  await git(lost.worktree, 'clean', '--quiet', '--force');

  // With set-aside: the work is kept under a ref, the tester's worktree is detached (same commit),
  // and the implementer's worktree is on exactly the remote tip.
  const r = await m('b').remote.receive('implementer', 'TASK-4', 'main', { onUnpublished: 'set-aside' });
  assert.equal(r.kind, 'replaced');
  assert.equal(r.previous, unpublished);
  assert.equal(r.head, redone);
  assert.match(r.setAside ?? '', /^refs\/pipeline\/set-aside\/TASK-4\/unpublished-/);
  assert.equal(await git(m('b').dir, 'rev-parse', r.setAside!), unpublished);
  assert.equal(await git(r.worktree, 'rev-parse', 'HEAD'), redone);
  assert.equal(await git(r.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-4');
  assert.equal(await git(r.worktree, 'status', '--porcelain'), '');
  assert.equal(await gitCode(lost.worktree, 'symbolic-ref', '--quiet', 'HEAD'), 1, 'the tester worktree is detached');
  assert.equal(await git(lost.worktree, 'rev-parse', 'HEAD'), unpublished);
  assert.ok(await isAncestor(m('b').dir, design, redone));
  // Receiving again is a no-op, and no second ref is made for the same work.
  const again = await m('b').remote.receive('implementer', 'TASK-4', 'main', { onUnpublished: 'set-aside' });
  assert.equal(again.kind, 'up-to-date');
  assert.equal(again.setAside, undefined);
  const refs = await git(m('b').dir, 'for-each-ref', '--format=%(refname)', 'refs/pipeline/set-aside/TASK-4');
  assert.deepEqual(refs.split('\n'), [r.setAside]);
  assert.equal(await git(m('b').dir, 'fsck', '--no-progress', '--no-dangling'), '');
});

void test('a publish from a clone that is behind the remote is refused and says to receive first', async () => {
  const a = await m('a').remote.receive('architect', 'TASK-5', 'main');
  const first = await commitFiles(a.worktree, { 'TASK-5.md': 'design\n' }, 'TASK-5: design');
  await m('a').remote.publish('TASK-5');
  assert.equal((await m('b').remote.receive('tester', 'TASK-5', 'main')).head, first);
  const ahead = await commitFiles(a.worktree, { 'TASK-5.md': 'more\n' }, 'TASK-5: more design');
  await m('a').remote.publish('TASK-5');
  // B never received the new commit: its branch is an ancestor of the remote's, not a fast-forward.
  await assert.rejects(m('b').remote.publish('TASK-5'), (e: unknown) => {
    assert.ok(e instanceof PushRejectedError, String(e));
    assert.equal(e.remoteSha, ahead);
    assert.match(e.details.fix ?? '', /behind.*receive/);
    return true;
  });
  assert.equal(await originTip(c, 'pipeline/TASK-5'), ahead);
});

void test('the merge of a conflicting task is reported as a conflict and pushes nothing', async () => {
  const r = await m('c').remote.receive('implementer', 'TASK-6', 'main');
  await commitFiles(r.worktree, { 'a.txt': 'task version\n' }, 'TASK-6: edits a.txt');
  await m('c').remote.publish('TASK-6');
  const main = await userPushes(c, { 'a.txt': 'user version\n' }, 'user edits a.txt');
  await assert.rejects(m('a').remote.merge('TASK-6', 'main', 'Merge TASK-6'), (e: unknown) => {
    assert.ok(e instanceof MergeConflictError, String(e));
    assert.deepEqual(e.files, ['a.txt']);
    return true;
  });
  assert.equal(await originTip(c, 'main'), main);
  // The receive with mergeTarget reports the same conflict and leaves the worktree at the remote tip.
  const again = await m('b').remote.receive('implementer', 'TASK-6', 'main', { mergeTarget: true });
  assert.equal(again.update, 'conflict');
  assert.deepEqual(again.conflicts, ['a.txt']);
  assert.equal(await git(again.worktree, 'rev-parse', 'HEAD'), await originTip(c, 'pipeline/TASK-6'));
});

void test('a first stage never published is unpublished work too: the fix says to publish it', async () => {
  const r = await m('a').remote.receive('architect', 'TASK-7', 'main');
  const local = await commitFiles(r.worktree, { 'TASK-7.md': 'design\n' }, 'TASK-7: design');
  // The remote has no TASK-7: the branch would start at the remote main, which lacks the design.
  await assert.rejects(m('a').remote.receive('architect', 'TASK-7', 'main'), (e: unknown) => {
    assert.ok(e instanceof UnpublishedWorkError, String(e));
    assert.equal(e.diverged, false);
    assert.equal(e.localSha, local);
    assert.match(e.details.fix ?? '', /publish it \(git -C .* push origin pipeline\/TASK-7\)/);
    return true;
  });
  await m('a').remote.publish('TASK-7');
  const again = await m('a').remote.receive('architect', 'TASK-7', 'main');
  assert.equal(again.kind, 'up-to-date');
  assert.equal(again.head, local);
});

void test('six merges from three machines at once all land on main, none lost', async () => {
  const tasks: Array<{ machine: string; task: string; sha: string }> = [];
  for (const [i, name] of ['a', 'b', 'c', 'a', 'b', 'c'].entries()) {
    const task = `TASK-${20 + i}`;
    const agent = i < 3 ? 'implementer' : 'supervisor';
    const r = await m(name).remote.receive(agent, task, 'main');
    tasks.push({
      machine: name,
      task,
      sha: await commitFiles(r.worktree, { [`${task}.txt`]: 'x\n' }, `${task}: work`),
    });
    await m(name).remote.publish(task);
  }
  const results = await Promise.all(
    tasks.map((t) => m(t.machine).remote.merge(t.task, 'main', `Merge ${t.task}`, { maxAttempts: 30 })),
  );
  const main = await originTip(c, 'main');
  for (const t of tasks) assert.ok(await isAncestor(c.origin, t.sha, main), `${t.task} is in main`);
  // Each landed merge is on main's first-parent line: no push replaced another.
  const firstParents = new Set((await git(c.origin, 'rev-list', '--first-parent', 'main')).split('\n'));
  for (const r of results) assert.ok(firstParents.has(r.sha), `${r.sha} on main's first-parent line`);
});

void test("a task branch checked out in a clone's own working tree is refused, and that checkout is left as it is", async () => {
  const r = await m('a').remote.receive('architect', 'TASK-8', 'main');
  await commitFiles(r.worktree, { 'TASK-8.md': 'design\n' }, 'TASK-8: design');
  await m('a').remote.publish('TASK-8');
  const dir = m('c').dir;
  await git(dir, 'fetch', '--quiet', 'origin', 'pipeline/TASK-8:pipeline/TASK-8');
  await git(dir, 'switch', '--quiet', 'pipeline/TASK-8');
  try {
    const before = await git(dir, 'rev-parse', 'HEAD');
    await assert.rejects(m('c').remote.receive('tester', 'TASK-8', 'main'), (e: unknown) => {
      assert.ok(isPipelineError(e), String(e));
      assert.match(e.message, /pipeline\/TASK-8 is checked out in .*, which is not an agent worktree/);
      assert.match(e.details.fix ?? '', /switch <branch>/);
      return true;
    });
    assert.equal(await git(dir, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-8');
    assert.equal(await git(dir, 'rev-parse', 'HEAD'), before);
  } finally {
    await git(dir, 'switch', '--quiet', 'main');
  }
  assert.equal((await m('c').remote.receive('tester', 'TASK-8', 'main')).kind, 'up-to-date');
});
