import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { TASK_DIR } from '../../../src/engine/agents/taskFile';
import { isPipelineError } from '../../../src/engine/errors';
import type { WorkspacePort } from '../../../src/engine/ports/workspacePort';

/**
 * The WorkspacePort's contract, as its doc comments promise it, for any adapter: the real one on
 * git (GitWorkspace) and the in-memory twin pass the same tests. Agents' files are written into the
 * worktree directory on disk, as agents write them, and what a person does at the repository (a
 * commit on main) goes through the subject's own means, outside the port.
 */
export interface WorkspaceSubject {
  readonly port: WorkspacePort;
  /** A commit on `branch` made outside the port (a person at the repository); returns its id. */
  commitOn(branch: string, files: Record<string, string>, message: string): Promise<string>;
  /** The commit a branch points at; undefined when there is no such branch. */
  head(branch: string): Promise<string | undefined>;
  /** A file at a branch's tip; undefined when it has none. */
  show(branch: string, path: string): Promise<string | undefined>;
  /** True when `ancestor` (a commit or branch) is reachable from `descendant`. */
  contains(descendant: string, ancestor: string): Promise<boolean>;
  /**
   * Another process takes a git lock and keeps it until the returned release: the one a merge into
   * `main` needs, or the one a commit in the agent's worktree needs.
   */
  holdLock(call: 'merge' | 'commitAll', agentId?: string): Promise<() => Promise<void>>;
  cleanup(): Promise<void>;
}

/** Every subject starts from one commit on `main` with these files. */
export const INITIAL_FILES = { 'a.txt': 'a1\n', 'b.txt': 'b1\n' };

async function put(worktree: string, path: string, content: string): Promise<void> {
  await mkdir(dirname(join(worktree, path)), { recursive: true });
  await writeFile(join(worktree, path), content);
}

async function onDisk(worktree: string, path: string): Promise<string | undefined> {
  return readFile(join(worktree, path), 'utf8').catch(() => undefined);
}

export function workspacePortConformance(name: string, make: () => Promise<WorkspaceSubject>): void {
  /** Runs `fn` on a fresh subject, cleaned up after. */
  const withSubject = (fn: (s: WorkspaceSubject, ws: WorkspacePort) => Promise<void> | void) => async () => {
    const s = await make();
    try {
      await fn(s, s.port);
    } finally {
      await s.cleanup();
    }
  };

  void describe(`WorkspacePort conformance: ${name}`, () => {
    void test(
      'worktreePath: one stable directory per agent, known before it exists',
      withSubject((_s, ws) => {
        const a = ws.worktreePath('architect');
        assert.equal(ws.worktreePath('architect'), a);
        assert.notEqual(ws.worktreePath('tester'), a);
        assert.equal(existsSync(a), false, 'nothing is created by asking');
        assert.throws(() => ws.worktreePath('../escape'), /Invalid agent id/);
      }),
    );

    void test(
      'repair creates the worktrees of the agents it is given, once; a worktree whose directory went is re-created',
      withSubject(async (_s, ws) => {
        assert.deepEqual(await ws.repair(['architect', 'tester']), [
          'created the worktree of architect',
          'created the worktree of tester',
        ]);
        assert.equal(await onDisk(ws.worktreePath('tester'), 'a.txt'), INITIAL_FILES['a.txt']);
        assert.deepEqual(await ws.repair(['architect', 'tester']), [], 'nothing to do the second time');
        await ws.prepare('tester', 'TASK-001', 'main');
        await rm(ws.worktreePath('tester'), { recursive: true, force: true });
        assert.deepEqual(await ws.repair(['architect', 'tester']), [
          `re-created the missing worktree of tester at ${ws.worktreePath('tester')} (pipeline/TASK-001)`,
        ]);
        assert.equal(await onDisk(ws.worktreePath('tester'), 'b.txt'), INITIAL_FILES['b.txt']);
        assert.deepEqual(await ws.repair([]), [], 'repair with no agents creates nothing');
      }),
    );

    void test(
      'prepare creates the task branch from the base and puts the worktree on it',
      withSubject(async (s, ws) => {
        const main = await s.head('main');
        const p = await ws.prepare('architect', 'TASK-001', 'main');
        assert.deepEqual(p, { worktree: ws.worktreePath('architect'), conflicts: [] });
        assert.equal(await s.head('pipeline/TASK-001'), main, 'the branch starts at the base');
        assert.equal(await s.head('main'), main, 'the base does not move');
        assert.equal(await onDisk(p.worktree, 'a.txt'), INITIAL_FILES['a.txt']);
        assert.deepEqual(await ws.priorWork('TASK-001', 'main'), { commits: [], files: [], notes: [] });
      }),
    );

    void test(
      'setAside keeps what was left as a commit under a new ref and cleans the worktree; the branch does not move; nothing is overwritten',
      withSubject(async (s, ws) => {
        const ref = 'refs/pipeline/set-aside/TASK-001/attempt-1';
        const p = await ws.prepare('implementer', 'TASK-001', 'main');
        assert.equal(await ws.setAside('implementer', ref, 'nothing'), null, 'a clean worktree keeps nothing');
        assert.equal(await ws.setAside('nobody', ref, 'nothing'), null, 'nor does an agent without a worktree');
        await put(p.worktree, join(TASK_DIR, 'TASK-001.attempt-1.md'), '# the task file\n');
        assert.equal(await ws.setAside('implementer', ref, 'task file only'), null, 'the task directory never counts');
        const branch = await s.head('pipeline/TASK-001');
        await put(p.worktree, 'a.txt', 'half changed\n');
        await put(p.worktree, 'src/new.js', 'half written\n');
        assert.equal(await ws.setAside('implementer', ref, 'TASK-001 implementation: left by attempt 1'), ref);
        assert.equal(await s.head('pipeline/TASK-001'), branch, 'the branch does not move');
        assert.equal(await s.show(ref, 'a.txt'), 'half changed\n');
        assert.equal(await s.show(ref, 'src/new.js'), 'half written\n');
        assert.equal(await s.show(ref, `${TASK_DIR}/TASK-001.attempt-1.md`), undefined);
        assert.ok(await s.contains(ref, branch!), 'its parent is what the worktree had checked out');
        assert.equal(await onDisk(p.worktree, 'a.txt'), INITIAL_FILES['a.txt'], 'the worktree is clean again');
        assert.equal(await onDisk(p.worktree, 'src/new.js'), undefined);
        assert.equal(await onDisk(p.worktree, join(TASK_DIR, 'TASK-001.attempt-1.md')), '# the task file\n');
        assert.equal(await ws.commitAll('implementer', 'nothing'), false);
        await put(p.worktree, 'b.txt', 'again\n');
        assert.equal(
          await ws.setAside('implementer', ref, 'again'),
          `${ref}-2`,
          'an existing ref is never overwritten',
        );
        assert.equal(await s.show(ref, 'b.txt'), INITIAL_FILES['b.txt']);
        // The agent can be given work again.
        assert.equal((await ws.prepare('implementer', 'TASK-002', 'main')).conflicts.length, 0);
      }),
    );

    void test(
      'commitAll commits what was left in the worktree (never the task directory); false when there is nothing',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('architect', 'TASK-001', 'main');
        assert.equal(await ws.commitAll('architect', 'nothing'), false, 'a fresh worktree is clean');
        await put(p.worktree, join(TASK_DIR, 'TASK-001.attempt-1.md'), '# the task file\n');
        assert.equal(await ws.commitAll('architect', 'task file only'), false, 'the task directory never counts');
        const before = await s.head('pipeline/TASK-001');
        await put(p.worktree, 'docs/design.md', 'the design\n');
        await put(p.worktree, 'a.txt', 'a changed\n');
        assert.equal(await ws.commitAll('architect', 'TASK-001 architect: left uncommitted'), true);
        const after = await s.head('pipeline/TASK-001');
        assert.notEqual(after, before);
        assert.ok(await s.contains(after!, before!), 'the commit is on top of the branch');
        assert.equal(await s.show('pipeline/TASK-001', 'docs/design.md'), 'the design\n');
        assert.equal(await s.show('pipeline/TASK-001', 'a.txt'), 'a changed\n');
        assert.equal(await s.show('pipeline/TASK-001', `${TASK_DIR}/TASK-001.attempt-1.md`), undefined);
        assert.equal(await s.show('main', 'docs/design.md'), undefined, 'the base is untouched');
        assert.equal(await ws.commitAll('architect', 'again'), false, 'clean again');
      }),
    );

    void test(
      'commitAll with release lets the branch go: the next agent takes it, a repeated call is a no-op, later writes are kept aside',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('architect', 'TASK-001', 'main');
        await put(p.worktree, 'c.txt', 'design\n');
        assert.equal(
          await ws.commitAll('architect', 'TASK-001 architect: c', 'pipeline/TASK-001', { release: true }),
          true,
        );
        const done = (await s.head('pipeline/TASK-001'))!;
        assert.equal(await s.show('pipeline/TASK-001', 'c.txt'), 'design\n');
        // Released: a commit in the worktree now would belong to no branch.
        await assert.rejects(ws.commitAll('architect', 'x', 'pipeline/TASK-001'), (e: unknown) => {
          assert.ok(isPipelineError(e) && e.code === 'off-branch', String(e));
          return true;
        });
        // The same completion applied again (a crash before it was recorded): nothing to do.
        assert.equal(await ws.commitAll('architect', 'again', 'pipeline/TASK-001', { release: true }), false);
        // Clean and released, with nothing to commit: released too.
        const q = await ws.prepare('tester', 'TASK-001', 'main');
        assert.equal(await ws.commitAll('tester', 'nothing', 'pipeline/TASK-001', { release: true }), false);
        assert.equal(await s.head('pipeline/TASK-001'), done, 'nothing committed, the branch did not move');
        // Each agent takes the branch over in turn, its files as the last stage left them.
        const r = await ws.prepare('implementer', 'TASK-001', 'main');
        assert.equal(await onDisk(r.worktree, 'c.txt'), 'design\n');
        await put(r.worktree, 'impl.txt', 'i\n');
        assert.equal(await ws.commitAll('implementer', 'TASK-001 implementation', 'pipeline/TASK-001'), true);
        // A write after the release (an agent still in its grace) is not the branch's: it is kept
        // aside, and the agent's worktree is clean for its next task.
        await put(q.worktree, 'late.txt', 'late\n');
        assert.equal(await s.show('pipeline/TASK-001', 'late.txt'), undefined);
        const kept = await ws.setAside('tester', 'refs/pipeline/set-aside/TASK-001/left-by-tester', 'late');
        assert.ok(kept, 'the late write is kept under a ref');
        assert.equal((await ws.prepare('tester', 'TASK-002', 'main')).conflicts.length, 0);
        assert.equal(await onDisk(q.worktree, 'late.txt'), undefined);
      }),
    );

    void test(
      'priorWork lists the commits since the base, newest first, and the files they changed',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('architect', 'TASK-001', 'main');
        await put(p.worktree, 'docs/design.md', 'd\n');
        await ws.commitAll('architect', 'TASK-001 architect: design');
        await put(p.worktree, 'a.txt', 'a2\n');
        await ws.commitAll('architect', 'TASK-001 architect: touch a\n\nwith a body');
        const head = (await s.head('pipeline/TASK-001'))!;
        const w = await ws.priorWork('TASK-001', 'main');
        assert.equal(w.commits.length, 2);
        assert.equal(w.commits[0], `${head.slice(0, 10)} TASK-001 architect: touch a`);
        assert.match(w.commits[1]!, /^[0-9a-f]{10} TASK-001 architect: design$/);
        assert.deepEqual(w.files, ['a.txt', 'docs/design.md']);
        assert.deepEqual(w.notes, []);
      }),
    );

    void test(
      "prepare brings the task branch up to date with the base, keeping the task's work; the next agent takes the branch over",
      withSubject(async (s, ws) => {
        const p = await ws.prepare('architect', 'TASK-001', 'main');
        await put(p.worktree, 'c.txt', 'task\n');
        await ws.commitAll('architect', 'TASK-001 architect: c');
        const taskHead = (await s.head('pipeline/TASK-001'))!;
        const mainHead = await s.commitOn('main', { 'b.txt': 'b2\n' }, 'main moves on');
        const q = await ws.prepare('tester', 'TASK-001', 'main');
        assert.deepEqual(q, { worktree: ws.worktreePath('tester'), conflicts: [] });
        assert.ok(await s.contains('pipeline/TASK-001', mainHead), 'the branch contains the base');
        assert.ok(await s.contains('pipeline/TASK-001', taskHead), "and the task's own work");
        assert.equal(await onDisk(q.worktree, 'b.txt'), 'b2\n');
        assert.equal(await onDisk(q.worktree, 'c.txt'), 'task\n');
        assert.equal(await s.head('main'), mainHead, 'the base does not move');
        assert.deepEqual((await ws.priorWork('TASK-001', 'main')).files, ['c.txt']);
        // The branch is the tester's now: its commits go on the branch.
        await put(q.worktree, 'test.txt', 't\n');
        assert.equal(await ws.commitAll('tester', 'TASK-001 test: t'), true);
        assert.equal(await s.show('pipeline/TASK-001', 'test.txt'), 't\n');
      }),
    );

    void test(
      'prepare reports conflicting files and leaves the branch as it was, the worktree on it',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('implementer', 'TASK-001', 'main');
        await put(p.worktree, 'a.txt', 'task\n');
        await ws.commitAll('implementer', 'TASK-001 implementation: a');
        const taskHead = await s.head('pipeline/TASK-001');
        const mainHead = await s.commitOn('main', { 'a.txt': 'main\n' }, 'main edits a');
        const q = await ws.prepare('supervisor', 'TASK-001', 'main');
        assert.deepEqual(q, { worktree: ws.worktreePath('supervisor'), conflicts: ['a.txt'] });
        assert.equal(await s.head('pipeline/TASK-001'), taskHead, 'the branch did not move');
        assert.equal(await s.head('main'), mainHead, 'nor did the base');
        assert.equal(await onDisk(q.worktree, 'a.txt'), 'task\n', "the worktree has the branch's side, no markers");
        assert.equal(await ws.commitAll('supervisor', 'nothing'), false, 'and nothing half-merged to commit');
      }),
    );

    void test(
      'prepare refuses a worktree with uncommitted changes and leaves them in place',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('implementer', 'TASK-001', 'main');
        await put(p.worktree, 'left.txt', 'uncommitted\n');
        await assert.rejects(ws.prepare('implementer', 'TASK-002', 'main'), /uncommitted changes.*left\.txt/);
        assert.equal(await onDisk(p.worktree, 'left.txt'), 'uncommitted\n');
        assert.equal(await s.head('pipeline/TASK-002'), undefined, 'no branch was created for the new task');
      }),
    );

    void test(
      'a git lock another process holds fails the call with code git-lock and changes nothing; released, the call succeeds',
      withSubject(async (s, ws) => {
        const isLock = (e: unknown) => isPipelineError(e) && e.code === 'git-lock';
        const p = await ws.prepare('implementer', 'TASK-001', 'main');
        await put(p.worktree, 'a.txt', 'task\n');
        const before = await s.head('pipeline/TASK-001');
        let release = await s.holdLock('commitAll', 'implementer');
        await assert.rejects(ws.commitAll('implementer', 'TASK-001: a'), isLock);
        assert.equal(await s.head('pipeline/TASK-001'), before, 'the branch did not move');
        assert.equal(await onDisk(p.worktree, 'a.txt'), 'task\n', 'the work is still there');
        await release();
        assert.equal(await ws.commitAll('implementer', 'TASK-001: a'), true);
        const main = await s.head('main');
        release = await s.holdLock('merge');
        await assert.rejects(ws.merge('TASK-001', 'main', 'Merge TASK-001'), isLock);
        assert.equal(await s.head('main'), main, 'main did not move');
        await release();
        const r = await ws.merge('TASK-001', 'main', 'Merge TASK-001');
        assert.equal(r.merged, true);
        assert.equal(await s.show('main', 'a.txt'), 'task\n');
      }),
    );

    void test(
      'ensureBranch creates a branch from another when it is missing, and leaves an existing one alone',
      withSubject(async (s, ws) => {
        const main = await s.head('main');
        await ws.ensureBranch('pipeline/pilot', 'main');
        assert.equal(await s.head('pipeline/pilot'), main);
        await s.commitOn('main', { 'b.txt': 'b2\n' }, 'main moves on');
        await ws.ensureBranch('pipeline/pilot', 'main');
        assert.equal(await s.head('pipeline/pilot'), main, 'not reset to the new tip');
      }),
    );

    void test(
      'merge of a clean task lands its work on the target, as a fast-forward or a merge commit; merging again changes nothing',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('implementer', 'TASK-001', 'main');
        await put(p.worktree, 'c.txt', 'one\n');
        await ws.commitAll('implementer', 'TASK-001 implementation: c');
        const r = await ws.merge('TASK-001', 'main', 'Merge pipeline/TASK-001: one');
        assert.ok(r.merged);
        assert.equal(r.commit, await s.head('main'), 'the commit is the target tip');
        assert.equal(await s.show('main', 'c.txt'), 'one\n');
        assert.ok(await s.contains('main', 'pipeline/TASK-001'));

        const again = await ws.merge('TASK-001', 'main', 'Merge pipeline/TASK-001: one');
        assert.deepEqual(again, { merged: true, commit: r.commit }, 'idempotent: a redone merge finds it merged');

        // Main moved on meanwhile (different files): a merge commit with both sides.
        const q = await ws.prepare('implementer', 'TASK-002', 'main');
        await put(q.worktree, 'd.txt', 'two\n');
        await ws.commitAll('implementer', 'TASK-002 implementation: d');
        const moved = await s.commitOn('main', { 'b.txt': 'b2\n' }, 'main moves on');
        const m = await ws.merge('TASK-002', 'main', 'Merge pipeline/TASK-002: two');
        assert.ok(m.merged);
        assert.equal(m.commit, await s.head('main'));
        assert.ok(await s.contains('main', moved), "the target's own commit is kept");
        assert.ok(await s.contains('main', 'pipeline/TASK-002'));
        assert.equal(await s.show('main', 'd.txt'), 'two\n');
        assert.equal(await s.show('main', 'b.txt'), 'b2\n');
      }),
    );

    void test(
      'merge of a conflicting task changes nothing and names the files',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('implementer', 'TASK-001', 'main');
        await put(p.worktree, 'a.txt', 'task\n');
        await put(p.worktree, 'b.txt', 'task b\n');
        await put(p.worktree, 'c.txt', 'only here\n');
        await ws.commitAll('implementer', 'TASK-001 implementation: a, b, c');
        const task = await s.head('pipeline/TASK-001');
        const main = await s.commitOn('main', { 'a.txt': 'main\n', 'b.txt': 'main b\n' }, 'main edits a and b');
        assert.deepEqual(await ws.merge('TASK-001', 'main', 'Merge'), {
          merged: false,
          conflicts: ['a.txt', 'b.txt'],
        });
        assert.equal(await s.head('main'), main, 'the target did not move');
        assert.equal(await s.head('pipeline/TASK-001'), task, 'nor did the branch');
        assert.equal(await s.show('main', 'c.txt'), undefined);
      }),
    );

    void test(
      'deleteMergedBranch: kept while it has commits the target lacks; deleted once merged, from under the worktree that had it',
      withSubject(async (s, ws) => {
        const p = await ws.prepare('supervisor', 'TASK-001', 'main');
        await put(p.worktree, 'c.txt', 'one\n');
        await ws.commitAll('supervisor', 'TASK-001 review: c');
        const tip = await s.head('pipeline/TASK-001');
        const unmerged = await ws.deleteMergedBranch('TASK-001', 'main');
        assert.equal(unmerged.deleted, false);
        assert.equal(!unmerged.deleted && unmerged.reason, 'unmerged');
        assert.equal(await s.head('pipeline/TASK-001'), tip, 'an unmerged branch is kept');

        const r = await ws.merge('TASK-001', 'main', 'Merge pipeline/TASK-001: one');
        assert.ok(r.merged);
        assert.deepEqual(await ws.deleteMergedBranch('TASK-001', 'main'), { deleted: true });
        assert.equal(await s.head('pipeline/TASK-001'), undefined, 'the merged branch is gone');
        assert.equal(await s.show('main', 'c.txt'), 'one\n', 'its work is on the target');
        assert.equal(await onDisk(p.worktree, 'c.txt'), 'one\n', 'the worktree that had it keeps its files');
        const again = await ws.deleteMergedBranch('TASK-001', 'main');
        assert.equal(!again.deleted && again.reason, 'missing');

        // The agent whose worktree had the branch takes its next task as usual.
        const q = await ws.prepare('supervisor', 'TASK-002', 'main');
        assert.deepEqual(q.conflicts, []);
        assert.equal(await onDisk(q.worktree, 'c.txt'), 'one\n', 'the next branch starts from the merged target');
      }),
    );

    void test(
      'pilot mode: work merged into a branch made by ensureBranch leaves the target alone',
      withSubject(async (s, ws) => {
        const main = await s.head('main');
        await ws.ensureBranch('pipeline/pilot', 'main');
        const p = await ws.prepare('implementer', 'TASK-001', 'pipeline/pilot');
        await put(p.worktree, 'c.txt', 'pilot\n');
        await ws.commitAll('implementer', 'TASK-001 implementation: c');
        const r = await ws.merge('TASK-001', 'pipeline/pilot', 'Merge pipeline/TASK-001');
        assert.ok(r.merged);
        assert.equal(r.commit, await s.head('pipeline/pilot'));
        assert.equal(await s.head('main'), main);
        assert.equal(await s.show('pipeline/pilot', 'c.txt'), 'pilot\n');
      }),
    );
  });
}
