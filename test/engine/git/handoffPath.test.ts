import assert from 'node:assert/strict';
import { mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { refsIfContains } from '../../../src/engine/git/branches';
import { taskChanges, taskWork } from '../../../src/engine/git/changes';
import { DirtyWorktreeError } from '../../../src/engine/git/gitErrors';
import type { GitRepo } from '../../../src/engine/git/gitRepo';
import { GitWorkspace } from '../../../src/engine/git/gitWorkspace';
import { TASK_DIR } from '../../../src/engine/agents/taskFile';
import { worktreeStatus } from '../../../src/engine/git/worktreeState';
import { commitFiles, commitOnBranch, fixturePerFile, git, gitCode } from './gitFixture';

/**
 * The handoff path (completion marker → next agent started) runs git a few times per stage; the
 * budget is 150 ms end to end. These tests pin what the shortcuts on that path must keep: the same
 * answers as the long way, the same refusals, and (as a regression guard) how many git commands a
 * handoff takes.
 */

let ws: GitWorkspace;
const f = fixturePerFile(
  { 'a.txt': 'a1\na2\na3\n', 'b.txt': 'b1\n', 'old-name.txt': 'a file long enough to be recognised as renamed\n' },
  (fx) => {
    ws = new GitWorkspace(fx.worktrees);
  },
);

/** Records the git commands `repo` runs while `fn` runs. */
async function commandsOf<T>(repo: GitRepo, fn: () => Promise<T>): Promise<{ result: T; commands: string[] }> {
  const commands: string[] = [];
  const r = repo as unknown as Record<
    'readResult' | 'mutateResult',
    (args: readonly string[], ...rest: unknown[]) => Promise<unknown>
  >;
  const read = r.readResult;
  const mutate = r.mutateResult;
  r.readResult = function (args, ...rest) {
    commands.push(args.join(' '));
    return read.call(this, args, ...rest);
  };
  r.mutateResult = function (args, ...rest) {
    commands.push(args.join(' '));
    return mutate.call(this, args, ...rest);
  };
  try {
    return { result: await fn(), commands };
  } finally {
    r.readResult = read;
    r.mutateResult = mutate;
  }
}

void test('a handoff from stage to stage: the same outcome in at most 6 git commands', async () => {
  // The monitor creates every agent's worktree when it starts (repair).
  await f.worktrees.ensureWorktree('tester');
  const first = await ws.prepare('architect', 'TASK-001', 'main');
  await commitFiles(first.worktree, { 'design.md': 'design\n' }, 'TASK-001 design');
  await mkdir(join(first.worktree, TASK_DIR), { recursive: true });
  await writeFile(join(first.worktree, TASK_DIR, 'TASK-001.attempt-1.md'), '# task\n## Status: COMPLETED ✅\n');

  const { result, commands } = await commandsOf(f.repo, async () => {
    const committed = await ws.commitAll('architect', 'left over', 'pipeline/TASK-001', { release: true });
    const prepared = await ws.prepare('tester', 'TASK-001', 'main');
    const prior = await ws.priorWork('TASK-001', 'main');
    return { committed, prepared, prior };
  });
  assert.equal(result.committed, false, 'the agent committed its own work; the task file is not work');
  assert.deepEqual(result.prepared, { worktree: ws.worktreePath('tester'), conflicts: [] });
  assert.deepEqual(result.prior.files, ['design.md']);
  assert.match(result.prior.commits[0] ?? '', /^[0-9a-f]{10} TASK-001 design$/);
  // The guarantees behind the shortcuts: the next agent is on the branch, the previous one was
  // detached (not changed), and nothing is left uncommitted.
  assert.equal(await git(result.prepared.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-001');
  assert.equal(await gitCode(first.worktree, 'symbolic-ref', '-q', 'HEAD'), 1);
  assert.equal(
    await git(first.worktree, 'rev-parse', 'HEAD'),
    await git(result.prepared.worktree, 'rev-parse', 'HEAD'),
  );
  assert.equal(await git(first.worktree, 'status', '--porcelain'), '');
  // commitAll 1 (status; the worktree is let go of the branch by writing its HEAD), prepare 3
  // (merge-base, status here, switch; the worktree registry is read from its files, and the previous
  // agent's worktree holds the branch no more), priorWork 2 (log, diff, run during the switch). It
  // was 29, then 9 with `git worktree list`, then 8 before the completion released the branch.
  assert.ok(commands.length <= 6, `${commands.length} git commands:\n${commands.join('\n')}`);
});

void test('commitAll: nothing uncommitted is one command; leftovers are committed; refusals stay', async () => {
  const wt = (await f.worktrees.checkoutTask('worker-1', 'TASK-002', 'main')).path;
  const clean = await commandsOf(f.repo, () => f.worktrees.commitAll('worker-1', 'nothing'));
  assert.equal(clean.result, undefined);
  assert.equal(clean.commands.length, 1, clean.commands.join('\n'));

  await writeFile(join(wt, 'left over.txt'), 'x\n');
  await git(wt, 'mv', 'old-name.txt', 'renamed.txt');
  const sha = await f.worktrees.commitAll('worker-1', 'Left by worker-1');
  assert.equal(sha, await git(f.dir, 'rev-parse', 'pipeline/TASK-002'));
  assert.equal(await git(wt, 'status', '--porcelain'), '');

  // A change staged and then undone in the worktree shows in status but leaves nothing to commit.
  await writeFile(join(wt, 'a.txt'), 'staged\n');
  await git(wt, 'add', 'a.txt');
  await writeFile(join(wt, 'a.txt'), 'a1\na2\na3\n');
  assert.equal(await f.worktrees.commitAll('worker-1', 'nothing really'), undefined);
  assert.equal(await git(f.dir, 'rev-parse', 'pipeline/TASK-002'), sha);

  // A task file someone force-added is tracked, so it shows as changed; it is still not committed.
  await mkdir(join(wt, TASK_DIR), { recursive: true });
  await writeFile(join(wt, TASK_DIR, 'forced.md'), 'v1\n');
  await git(wt, 'add', '--force', join(TASK_DIR, 'forced.md'));
  await git(wt, 'commit', '--quiet', '-m', 'force-added a task file');
  const forced = await git(wt, 'rev-parse', 'HEAD');
  await writeFile(join(wt, TASK_DIR, 'forced.md'), 'v2\n');
  assert.equal(await f.worktrees.commitAll('worker-1', 'only the task file changed'), undefined);
  assert.equal(await git(f.dir, 'rev-parse', 'pipeline/TASK-002'), forced);
  await git(wt, 'checkout', '--', join(TASK_DIR, 'forced.md'));

  // An unfinished merge with nothing left to resolve still refuses: it is not the agent's work.
  await git(f.dir, 'branch', 'side', 'main');
  const other = await commitOnBranch(f.dir, 'side', { 'side.txt': 's\n' }, 'side work');
  assert.equal(await gitCode(wt, 'merge', '--no-commit', '--no-ff', '--quiet', other), 0);
  await git(wt, 'rm', '--quiet', '--force', 'side.txt');
  assert.equal(await gitCode(wt, 'rev-parse', '-q', '--verify', 'MERGE_HEAD'), 0);
  assert.deepEqual((await worktreeStatus(f.repo, wt)).files, []);
  await assert.rejects(
    f.worktrees.commitAll('worker-1', 'x'),
    (e: unknown) => e instanceof DirtyWorktreeError && /middle of a merge/.test(e.message),
  );
  await git(wt, 'merge', '--abort');
  await git(f.dir, 'branch', '-D', 'side');

  // Off a branch: refused, as before.
  await f.worktrees.detach('worker-1');
  await writeFile(join(wt, 'more.txt'), 'y\n');
  await assert.rejects(f.worktrees.commitAll('worker-1', 'x'), /on no branch/);
  await rm(join(wt, 'more.txt'));
});

void test('worktreeStatus: branch, commit and paths (spaces, renames, untracked) in one command', async () => {
  const wt = (await f.worktrees.checkoutTask('worker-2', 'TASK-003', 'main')).path;
  const head = await git(wt, 'rev-parse', 'HEAD');
  assert.deepEqual(await worktreeStatus(f.repo, wt), { branch: 'pipeline/TASK-003', head, files: [] });

  await writeFile(join(wt, 'with space.txt'), 'x\n');
  await mkdir(join(wt, 'deep', 'er'), { recursive: true });
  await writeFile(join(wt, 'deep', 'er', 'new.txt'), 'x\n');
  await writeFile(join(wt, 'b.txt'), 'changed\n');
  await git(wt, 'mv', 'old-name.txt', 'new name.txt');
  const s = await worktreeStatus(f.repo, wt);
  assert.equal(s.branch, 'pipeline/TASK-003');
  assert.deepEqual([...s.files].sort(), ['b.txt', 'deep/er/new.txt', 'new name.txt', 'with space.txt']);
  assert.deepEqual(
    [...s.files].sort(),
    (await f.worktrees.uncommitted('worker-2')).sort(),
    'the same paths as uncommittedFiles',
  );

  await git(wt, 'reset', '--quiet', '--hard');
  await git(wt, 'clean', '--quiet', '-fd');
  await git(wt, 'switch', '--quiet', '--detach');
  assert.deepEqual(await worktreeStatus(f.repo, wt), { branch: undefined, head, files: [] });
  // "(detached)" is also a legal branch name: git is asked in that case.
  await git(wt, 'switch', '--quiet', '-c', '(detached)');
  assert.equal((await worktreeStatus(f.repo, wt)).branch, '(detached)');
  await git(wt, 'switch', '--quiet', '--detach');
  await git(f.dir, 'branch', '-D', '(detached)');
});

void test('refsIfContains: one answer for the usual case, undefined for every other', async () => {
  await f.worktrees.checkoutTask('worker-3', 'TASK-004', 'main');
  const main = await git(f.dir, 'rev-parse', 'main');
  assert.deepEqual(await refsIfContains(f.repo, 'pipeline/TASK-004', 'main'), { target: main, branch: main });
  const ahead = await commitFiles(f.worktrees.pathOf('worker-3'), { 't4.txt': 'x\n' }, 'TASK-004 work');
  assert.deepEqual(await refsIfContains(f.repo, 'pipeline/TASK-004', 'main'), { target: main, branch: ahead });
  // A branch below the task branch's name does not count as it (pattern matching in for-each-ref).
  await git(f.dir, 'branch', 'main-x', 'main');
  assert.deepEqual(await refsIfContains(f.repo, 'pipeline/TASK-004', 'main'), { target: main, branch: ahead });
  await git(f.dir, 'branch', '-D', 'main-x');
  // Behind, missing branch, missing target.
  await commitFiles(f.dir, { 'main-moves.txt': 'm\n' }, 'Main moves on');
  assert.equal(await refsIfContains(f.repo, 'pipeline/TASK-004', 'main'), undefined);
  assert.equal(await refsIfContains(f.repo, 'pipeline/TASK-404', 'main'), undefined);
  assert.equal(await refsIfContains(f.repo, 'pipeline/TASK-004', 'no-such-target'), undefined);
});

void test("taskWork gives taskChanges' commits and files; its errors are taskChanges'", async () => {
  // TASK-004 is behind main (previous test) and has work of its own; TASK-005 has none.
  await f.worktrees.checkoutTask('worker-4', 'TASK-005', 'main');
  const wt = f.worktrees.pathOf('worker-3');
  await rm(join(wt, 'b.txt'));
  await git(wt, 'mv', 'old-name.txt', 'moved.txt');
  await git(wt, 'add', '--all');
  await git(wt, 'commit', '--quiet', '-m', 'Delete b, move old-name');
  for (const id of ['TASK-004', 'TASK-005']) {
    const long = await taskChanges(f.repo, id, 'main');
    const short = await taskWork(f.repo, id, 'main');
    assert.deepEqual(short, { commits: long.commits, files: long.files }, id);
  }
  assert.equal((await taskWork(f.repo, 'TASK-004', 'main')).commits.length, 2);
  await assert.rejects(taskWork(f.repo, 'TASK-404', 'main'), /pipeline\/TASK-404 does not exist/);
  await assert.rejects(taskWork(f.repo, 'TASK-004', 'no-such-target'), /target branch no-such-target does not exist/);
  const emptyTree = await git(f.dir, 'hash-object', '-t', 'tree', '-w', '/dev/null');
  await git(f.dir, 'branch', 'unrelated', await git(f.dir, 'commit-tree', '-m', 'root', emptyTree));
  await git(f.dir, 'branch', 'pipeline/TASK-006', 'unrelated');
  await assert.rejects(taskWork(f.repo, 'TASK-006', 'main'), /share no history/);
  await git(f.dir, 'branch', '-D', 'unrelated', 'pipeline/TASK-006');
});

void test('checkoutTask: an up-to-date branch, a behind one and a re-created worktree all end on the branch tip', async () => {
  // Behind main (TASK-004 from above): merged, and head is the merge.
  await f.worktrees.detach('worker-3');
  const merged = await f.worktrees.checkoutTask('worker-5', 'TASK-004', 'main');
  assert.equal(merged.update, 'merged');
  assert.equal(merged.head, await git(f.dir, 'rev-parse', 'pipeline/TASK-004'));
  assert.equal(merged.head, await git(merged.path, 'rev-parse', 'HEAD'));
  assert.deepEqual(merged.releasedFrom, []);
  // Handed on while up to date: no update, the holder is released.
  const handed = await f.worktrees.checkoutTask('worker-6', 'TASK-004', 'main');
  assert.equal(handed.update, 'up-to-date');
  assert.deepEqual(handed.releasedFrom, ['worker-5']);
  assert.equal(handed.head, merged.head);
  assert.equal(handed.created, true);
  // The same agent again: nothing to switch, the same answer.
  const again = await f.worktrees.checkoutTask('worker-6', 'TASK-004', 'main');
  assert.deepEqual({ ...again, created: true }, { ...handed, releasedFrom: [] });
  // The worktree's directory was deleted: re-created on its branch, then used.
  await rm(handed.path, { recursive: true, force: true });
  const back = await f.worktrees.checkoutTask('worker-6', 'TASK-004', 'main');
  assert.equal(back.created, true);
  assert.equal(back.head, handed.head);
  assert.equal(await git(back.path, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-004');
});

void test("gitDirOf reads the worktree's .git file, and asks git where there is none", async () => {
  const wt = f.worktrees.pathOf('worker-6');
  const askGit = async (cwd: string) => realpath(await git(cwd, 'rev-parse', '--path-format=absolute', '--git-dir'));
  assert.equal(await realpath(await f.repo.gitDirOf(wt)), await askGit(wt));
  assert.equal(await realpath(await f.repo.gitDirOf(f.dir)), await askGit(f.dir));
  await mkdir(join(wt, 'sub'), { recursive: true });
  assert.equal(await realpath(await f.repo.gitDirOf(join(wt, 'sub'))), await askGit(wt));
});

void test('the exclude file is located once per repository and read each time', async () => {
  const file = join(f.repo.commonDir, 'info', 'exclude');
  const asked = await commandsOf(f.repo, () => f.repo.excludeFile(f.worktrees.pathOf('worker-6')));
  assert.equal(await realpath(asked.result), await realpath(file));
  assert.deepEqual(asked.commands, [], 'asked before, by the first checkout');
  // Someone removes the rule: the next operation puts it back.
  const before = await readFile(file, 'utf8');
  await writeFile(
    file,
    before
      .split('\n')
      .filter((l) => l !== `/${TASK_DIR}/`)
      .join('\n'),
  );
  await f.worktrees.commitAll('worker-6', 'nothing');
  assert.equal((await readFile(file, 'utf8')).split('\n').filter((l) => l === `/${TASK_DIR}/`).length, 1);
});
