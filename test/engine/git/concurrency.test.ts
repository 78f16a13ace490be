import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { observeGit } from '../../../src/engine/git/gitMetrics';
import { GitWorkspace } from '../../../src/engine/git/gitWorkspace';
import { mergeTask } from '../../../src/engine/git/merge';
import { uncommittedFiles } from '../../../src/engine/git/worktreeState';
import { commitFiles, commitOnBranch, fixturePerFile, git, gitCode, write } from './gitFixture';

/**
 * Many agents at once on one repository, as the parallel pipeline drives it: each stage's agents
 * take tasks from a queue, check out the task branch (bringing it up to date with main, which other
 * tasks keep merging into), work, and hand the task on; the last stage merges it into main, which is
 * checked out in the main working tree. Meanwhile an editor polls `git status`. Nothing may fail on
 * git's lock files, no commit may be lost, and the repository must end consistent.
 */

const STAGES = ['architecture', 'tests', 'implementation', 'review'] as const;
const AGENTS_PER_STAGE = 2;
const TASKS = 6;

/** A queue agents wait on; closed once every task has passed. */
class Channel<T> {
  private readonly items: T[] = [];
  private readonly waiting: Array<(v: T | undefined) => void> = [];
  private closed = false;
  push(item: T): void {
    const w = this.waiting.shift();
    if (w) w(item);
    else this.items.push(item);
  }
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(undefined);
  }
  next(): Promise<T | undefined> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((r) => this.waiting.push(r));
  }
}

let ws: GitWorkspace;
const f = fixturePerFile({ 'README.md': '# concurrency\n', 'shared/base.txt': 'base\n' }, (fx) => {
  ws = new GitWorkspace(fx.worktrees);
});

void test('8 agents check out, commit, hand over and merge 6 tasks at once: no lock failure, nothing lost, consistent refs', async () => {
  const queues = STAGES.map(() => new Channel<string>());
  const passed = STAGES.map(() => 0);
  const commits: Array<{ task: string; sha: string }> = [];
  const failures: string[] = [];
  const merged: string[] = [];
  // Each git command as [start, end] (its event comes at its end), to see that they overlapped.
  const spans: Array<[number, number]> = [];
  // git lock files found held: only the editor's, on the main working tree's index, may be.
  const busy: string[] = [];
  const stopObserving = observeGit((e) => {
    if (e.type === 'command') spans.push([performance.now() - e.ms, performance.now()]);
    if (e.type === 'lock-busy' && e.lockFile !== join(f.repo.commonDir, 'index.lock')) busy.push(e.lockFile);
  });

  const agentLoop = async (stage: number, agentId: string): Promise<void> => {
    for (let taskId = await queues[stage]!.next(); taskId; taskId = await queues[stage]!.next()) {
      try {
        const prepared = await ws.prepare(agentId, taskId, 'main');
        assert.deepEqual(prepared.conflicts, []);
        const file = `${taskId}/${STAGES[stage]}.txt`;
        if (stage % 2 === 0) {
          // The agent commits its own work, as a real agent would, with its own git.
          const sha = await commitFiles(
            prepared.worktree,
            { [file]: `${taskId} ${agentId}\n` },
            `${taskId} ${STAGES[stage]}`,
          );
          commits.push({ task: taskId, sha });
          assert.equal(await ws.commitAll(agentId, 'nothing left'), false);
        } else {
          // The agent leaves its work uncommitted: the engine commits it.
          await write(prepared.worktree, file, `${taskId} ${agentId}\n`);
          assert.equal(await ws.commitAll(agentId, `${taskId} ${STAGES[stage]}: left uncommitted by ${agentId}`), true);
          commits.push({ task: taskId, sha: await git(prepared.worktree, 'rev-parse', 'HEAD') });
        }
        if (stage === STAGES.length - 1) {
          const r = await ws.merge(taskId, 'main', `Merge ${taskId}`);
          assert.ok(r.merged, `${taskId} merged`);
          merged.push(taskId);
        } else {
          queues[stage + 1]!.push(taskId);
        }
      } catch (e) {
        failures.push(`${agentId} on ${taskId}: ${e instanceof Error ? e.message : String(e)}`);
        // A failed task never reaches the later stages: count it as passed there, so they end.
        for (let later = stage + 1; later < STAGES.length; later++) {
          if (++passed[later]! === TASKS) queues[later]!.close();
        }
      } finally {
        if (++passed[stage]! === TASKS) queues[stage]!.close();
      }
    }
  };

  // An editor's git integration polling the main working tree: `git status` without
  // GIT_OPTIONAL_LOCKS takes its index.lock now and then, which our commands there wait out.
  let polling = true;
  let polls = 0;
  const poller = (async () => {
    while (polling) {
      await uncommittedFiles(f.repo, f.dir);
      await gitCode(f.dir, 'status', '--porcelain');
      polls++;
      // An editor polls now and then, not in a tight loop (this is not a wait for a condition).
      await new Promise((r) => setTimeout(r, 25));
    }
  })();

  // The worktrees exist before the run, as the monitor's start-up repair makes them.
  const agents = STAGES.flatMap((s, i) =>
    Array.from({ length: AGENTS_PER_STAGE }, (_, k) => ({ stage: i, id: `${s}-${k + 1}` })),
  );
  await ws.repair(agents.map((a) => a.id));
  for (let i = 1; i <= TASKS; i++) queues[0]!.push(`TASK-${String(i).padStart(3, '0')}`);
  try {
    await Promise.all(agents.map((a) => agentLoop(a.stage, a.id)));
  } finally {
    polling = false;
    await poller;
    stopObserving();
  }

  assert.deepEqual(failures, []);
  assert.deepEqual(busy, [], 'our own commands never met each other on a git lock');
  assert.equal(merged.length, TASKS);
  assert.ok(polls > 0);
  const edges = spans
    .flatMap(([a, b]) => [[a, 1] as const, [b, -1] as const])
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let running = 0;
  let mostRunning = 0;
  for (const [, d] of edges) mostRunning = Math.max(mostRunning, (running += d));
  assert.ok(mostRunning >= 2, `git commands ran side by side (at most ${mostRunning} at once)`);

  // Nothing lost: every agent commit is in main, and every file with the content its agent wrote.
  const main = await git(f.dir, 'rev-parse', 'main');
  for (const c of commits) {
    assert.equal(await gitCode(f.dir, 'merge-base', '--is-ancestor', c.sha, main), 0, `${c.task} ${c.sha} is in main`);
  }
  for (let i = 1; i <= TASKS; i++) {
    const taskId = `TASK-${String(i).padStart(3, '0')}`;
    for (const stage of STAGES) {
      assert.match(await git(f.dir, 'show', `main:${taskId}/${stage}.txt`), new RegExp(`^${taskId} ${stage}-\\d$`));
    }
    const branch = await git(f.dir, 'rev-parse', `pipeline/${taskId}`);
    assert.equal(await gitCode(f.dir, 'merge-base', '--is-ancestor', branch, main), 0, `pipeline/${taskId} is in main`);
  }
  // The main working tree followed main: HEAD, index and files all at main, nothing staged or changed.
  assert.equal(await git(f.dir, 'symbolic-ref', 'HEAD'), 'refs/heads/main');
  assert.equal(await git(f.dir, 'status', '--porcelain', '--untracked-files=no'), '');
  assert.equal(
    await readFile(join(f.dir, 'TASK-001', 'review.txt'), 'utf8'),
    await git(f.dir, 'show', 'main:TASK-001/review.txt').then((s) => `${s}\n`),
  );
  // Every worktree is registered, present, and on a branch or commit that exists; none is dirty.
  const list = await git(f.dir, 'worktree', 'list', '--porcelain');
  assert.ok(!list.includes('prunable'), list);
  for (const a of agents) {
    const wt = ws.worktreePath(a.id);
    assert.equal(await git(wt, 'status', '--porcelain'), '', `${a.id} is clean`);
    assert.match(await git(wt, 'rev-parse', 'HEAD'), /^[0-9a-f]{40}$/);
  }
  // At most one worktree has each task branch checked out (git enforces it; a race would show here).
  const branches = list
    .split('\n')
    .filter((l) => l.startsWith('branch '))
    .map((l) => l.slice('branch '.length));
  assert.equal(new Set(branches).size, branches.length, branches.join(', '));
  // git fsck and no lock files left: checked by the fixture after the file's tests.
});

void test('merges of main into task branches while main keeps moving: every merge has both parents', async () => {
  // Five task branches behind main; main moves by five merges while the five branches are brought
  // up to date at the same time.
  const ids = ['TASK-101', 'TASK-102', 'TASK-103', 'TASK-104', 'TASK-105'];
  for (const id of ids) {
    await git(f.dir, 'branch', `pipeline/${id}`, 'main');
    await git(f.dir, 'branch', `side/${id}`, 'main');
  }
  for (const id of ids) {
    const wt = ws.worktreePath('architecture-1');
    await ws.prepare('architecture-1', id, 'main');
    await commitFiles(wt, { [`${id}/own.txt`]: 'own\n' }, `${id} own work`);
  }
  const agents = ['tests-1', 'tests-2', 'implementation-1', 'implementation-2', 'review-1'];
  // Side work on other branches (as other tasks finishing), merged into main during the checkouts.
  for (const id of ids) await commitOnBranch(f.dir, `side/${id}`, { [`side-${id}.txt`]: 's\n' }, `side ${id}`);
  const sides = ids.map((id) => mergeTask(f.repo, `side/${id}`, 'main', `Merge side/${id}`));
  const checkouts = ids.map((id, i) => ws.prepare(agents[i]!, id, 'main'));
  const results = await Promise.all([...sides, ...checkouts]);
  assert.equal(results.length, 10);
  for (const id of ids) {
    const tip = await git(f.dir, 'rev-parse', `pipeline/${id}`);
    // The task's own commit is kept, and the branch contains main as it was when it was updated.
    assert.equal(await gitCode(f.dir, 'merge-base', '--is-ancestor', `${tip}`, 'main'), 1);
    assert.equal(await git(f.dir, 'show', `${tip}:${id}/own.txt`), 'own');
  }
  assert.equal(await git(f.dir, 'status', '--porcelain', '--untracked-files=no'), '');
  for (const id of ids) assert.equal(await git(f.dir, 'show', `main:side-${id}.txt`), 's');
});

void test('a hand-over while the previous agent starts its next task: both succeed, 10 times over', async () => {
  // architecture-1 holds each task branch in turn; tests-1 takes it over while architecture-1 is
  // being switched to the next task: both change architecture-1's worktree at the same moment.
  let previous = 'TASK-200';
  await ws.prepare('architecture-1', previous, 'main');
  await commitFiles(ws.worktreePath('architecture-1'), { 'TASK-200/a.txt': 'a\n' }, 'TASK-200 architecture');
  for (let i = 201; i <= 210; i++) {
    const next = `TASK-${i}`;
    const [handed, own] = await Promise.all([
      ws.prepare('tests-1', previous, 'main'),
      ws.prepare('architecture-1', next, 'main'),
    ]);
    assert.equal(await git(handed.worktree, 'symbolic-ref', '--short', 'HEAD'), `pipeline/${previous}`);
    assert.equal(await git(own.worktree, 'symbolic-ref', '--short', 'HEAD'), `pipeline/${next}`);
    await commitFiles(own.worktree, { [`${next}/a.txt`]: 'a\n' }, `${next} architecture`);
    previous = next;
  }
});
