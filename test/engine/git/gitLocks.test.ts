import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DirtyWorktreeError, GitLockError, isGitLockError } from '../../../src/engine/git/gitErrors';
import { gitProcessesIn } from '../../../src/engine/git/gitProcesses';
import { GitRepo } from '../../../src/engine/git/gitRepo';
import { GitWorkspace } from '../../../src/engine/git/gitWorkspace';
import { mergeTask } from '../../../src/engine/git/merge';
import type { LockFinding } from '../../../src/engine/git/staleLocks';
import { commitFiles, commitOnBranch, fixturePerFile, git, gitCode } from './gitFixture';

/**
 * git lock files held by someone else (another git process, or one that crashed and left its lock):
 * a merge into the target branch must leave the user's main working tree as it was, lock contention
 * is a GitLockError (transient, code `git-lock`), and a stale lock is removed only when it is old and
 * no git process is alive. With real git, in a temporary repository.
 */

const f = fixturePerFile();

/** A task branch with its own file, and main moved on in another file: a true merge is due. */
async function divergedTask(id: string): Promise<string> {
  const branch = `pipeline/${id}`;
  await git(f.dir, 'branch', branch, 'main');
  await commitOnBranch(f.dir, branch, { [`${id}.txt`]: `${id}\n` }, `${id} work`);
  await commitFiles(f.dir, { [`main-${id}.txt`]: 'main\n' }, `main moves on (${id})`);
  return branch;
}

/** Everything the user could see of the main working tree: HEAD, the index, the files, the status. */
async function mainCheckout(): Promise<Record<string, string>> {
  return {
    main: await git(f.dir, 'rev-parse', 'main'),
    head: await git(f.dir, 'symbolic-ref', 'HEAD'),
    index: await git(f.dir, 'ls-files', '--stage'),
    status: await git(f.dir, 'status', '--porcelain', '--untracked-files=all'),
    files: await git(f.dir, 'ls-files', '--others', '--cached'),
  };
}

async function oldFile(path: string): Promise<void> {
  await writeFile(path, '');
  const past = new Date(Date.now() - 60_000);
  await utimes(path, past, past);
}

/** Resolves once `cond` holds, asking again after each turn of the event loop. */
async function until(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setImmediate(r));
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

void test('a ref lock held on the target during a merge: GitLockError, nothing changed, and the next merge goes through', async () => {
  const branch = await divergedTask('TASK-001');
  const lock = join(f.repo.commonDir, 'refs', 'heads', 'main.lock');
  // As in the field: `: > .git/refs/heads/main.lock`, then a run.
  await writeFile(lock, '');
  const before = await mainCheckout();
  const tip = await git(f.dir, 'rev-parse', branch);
  await assert.rejects(mergeTask(f.repo, branch, 'main', 'Merge TASK-001'), (e: unknown) => {
    assert.ok(e instanceof GitLockError, String(e));
    assert.ok(isGitLockError(e));
    assert.equal(e.code, 'git-lock');
    assert.equal(e.lockFile, lock);
    assert.match(e.details.fix ?? '', /tries again later/);
    return true;
  });
  // The user's checkout is exactly as it was: no file of the task, nothing staged, main not moved.
  assert.deepEqual(await mainCheckout(), before);
  assert.equal(await exists(join(f.dir, 'TASK-001.txt')), false);
  assert.equal(await git(f.dir, 'rev-parse', branch), tip);
  // A fresh lock may belong to a live git command: kept.
  assert.equal(await exists(lock), true);
  // The port gives the same error, not a conflict: the monitor retries it.
  const ws = new GitWorkspace(f.worktrees);
  await assert.rejects(ws.merge('TASK-001', 'main', 'Merge TASK-001'), GitLockError);

  // Once the lock is gone, the merge goes through: nothing was left half done to refuse it.
  await rm(lock);
  const r = await mergeTask(f.repo, branch, 'main', 'Merge TASK-001');
  assert.equal(r.kind, 'merge');
  assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
  assert.equal(await readFile(join(f.dir, 'TASK-001.txt'), 'utf8'), 'TASK-001\n');
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');
  // No record of a move in progress is left behind (pendingMove.ts).
  assert.equal(await exists(join(f.repo.commonDir, 'PIPELINE_MOVE')), false);
  // The reflog says what moved main.
  assert.match(
    await git(f.dir, 'reflog', '-1', '--format=%gs', 'main'),
    /pipeline: merge pipeline\/TASK-001 into main/,
  );
});

void test('a stale ref lock (old, no git process alive) is removed during the run; one a live git process may own is kept', async () => {
  const lock = join(f.repo.commonDir, 'refs', 'heads', 'main.lock');
  const findings: LockFinding[] = [];
  const repo = await GitRepo.open(f.dir, { onStaleLock: (x) => findings.push(x) });

  // Another program's git process is working in the repository (started through a shell, so it is
  // not our child): the lock may be its own, so it is kept.
  const branch = await divergedTask('TASK-002');
  await oldFile(lock);
  const busy = spawn('sh', ['-c', 'git cat-file --batch; true'], { cwd: f.dir, stdio: ['pipe', 'ignore', 'ignore'] });
  await until(async () => ((await gitProcessesIn([f.dir])) ?? []).length > 0);
  try {
    await assert.rejects(mergeTask(repo, branch, 'main', 'Merge TASK-002'), GitLockError);
    assert.deepEqual(
      findings.map((x) => x.action),
      ['kept'],
    );
    assert.match(findings[0]?.reason ?? '', /git process is running/);
    assert.equal(await exists(lock), true);
  } finally {
    busy.stdin.end();
    await new Promise((r) => busy.once('exit', r));
  }

  // Nothing alive but a git command of our own (the layer's locks keep our commands from holding a
  // lock another of ours waits for): the lock is stale, removed, and the merge goes through.
  const ours = spawn('git', ['cat-file', '--batch'], { cwd: f.dir, stdio: ['pipe', 'ignore', 'ignore'] });
  let r;
  try {
    r = await mergeTask(repo, branch, 'main', 'Merge TASK-002');
  } finally {
    ours.stdin.end();
    await new Promise((res) => ours.once('exit', res));
  }
  assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
  assert.deepEqual(
    findings.map((x) => [x.path, x.action]),
    [
      [lock, 'kept'],
      [lock, 'removed'],
    ],
  );
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');

  // Told never to remove one: kept, however old.
  const never = await GitRepo.open(f.dir, { staleLocks: { staleLockMs: Infinity } });
  const third = await divergedTask('TASK-003');
  await oldFile(lock);
  await assert.rejects(mergeTask(never, third, 'main', 'Merge TASK-003'), GitLockError);
  await rm(lock);
});

void test("the main working tree's index.lock held during a merge: nothing changes, no ref lock is left", async () => {
  const branch = await divergedTask('TASK-004');
  const indexLock = join(f.repo.commonDir, 'index.lock');
  await writeFile(indexLock, '');
  const before = await mainCheckout();
  await assert.rejects(mergeTask(f.repo, branch, 'main', 'Merge TASK-004'), (e: unknown) => {
    assert.ok(e instanceof GitLockError, String(e));
    assert.equal(e.lockFile, indexLock);
    return true;
  });
  await rm(indexLock);
  assert.deepEqual(await mainCheckout(), before);
  assert.equal(await exists(join(f.repo.commonDir, 'PIPELINE_MOVE')), false);
  // The ref's lock (taken by the transaction before the files were to move) was released.
  assert.equal(await exists(join(f.repo.commonDir, 'refs', 'heads', 'main.lock')), false);

  // Held briefly (an editor refreshing the index): waited out, and the merge goes through.
  await writeFile(indexLock, '');
  const release = setTimeout(() => void rm(indexLock, { force: true }), 150);
  try {
    const r = await mergeTask(f.repo, branch, 'main', 'Merge TASK-004');
    assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
    assert.equal(await readFile(join(f.dir, 'TASK-004.txt'), 'utf8'), 'TASK-004\n');
  } finally {
    clearTimeout(release);
    await rm(indexLock, { force: true });
  }
});

void test('a local change the merge would overwrite: refused before the ref moves, the checkout as it was', async () => {
  const branch = `pipeline/TASK-005`;
  await git(f.dir, 'branch', branch, 'main');
  await commitOnBranch(f.dir, branch, { 'b.txt': 'b from the task\n', 'new-005.txt': 'new\n' }, 'TASK-005 work');
  await commitFiles(f.dir, { 'main-005.txt': 'main\n' }, 'main moves on (TASK-005)');
  await writeFile(join(f.dir, 'b.txt'), 'the user is editing b\n');
  // An untracked file where the merge would put one of its own.
  await writeFile(join(f.dir, 'new-005.txt'), 'the user made this\n');
  const before = await mainCheckout();
  const refused = async (files: string[]) =>
    assert.rejects(mergeTask(f.repo, branch, 'main', 'Merge TASK-005'), (e: unknown) => {
      assert.ok(e instanceof DirtyWorktreeError, String(e));
      assert.deepEqual(e.files, files);
      assert.match(e.message, /Nothing was changed/);
      return true;
    });
  // git names the first file in the way.
  await refused(['b.txt']);
  assert.deepEqual(await mainCheckout(), before);
  assert.equal(await readFile(join(f.dir, 'b.txt'), 'utf8'), 'the user is editing b\n');
  assert.equal(await readFile(join(f.dir, 'new-005.txt'), 'utf8'), 'the user made this\n');
  assert.equal(await exists(join(f.repo.commonDir, 'refs', 'heads', 'main.lock')), false);
  await git(f.dir, 'checkout', '--', 'b.txt');
  await refused(['new-005.txt']);
  assert.equal(await readFile(join(f.dir, 'new-005.txt'), 'utf8'), 'the user made this\n');
  assert.equal(await git(f.dir, 'rev-parse', 'main'), before.main);
  await rm(join(f.dir, 'new-005.txt'));

  // A file saved unchanged (a new mtime, the same content) is no local change: the merge goes through.
  await writeFile(join(f.dir, 'b.txt'), await readFile(join(f.dir, 'b.txt')));
  const past = new Date(Date.now() + 5_000);
  await utimes(join(f.dir, 'b.txt'), past, past);
  const r = await mergeTask(f.repo, branch, 'main', 'Merge TASK-005');
  assert.equal(await git(f.dir, 'rev-parse', 'main'), r.sha);
  assert.equal(await readFile(join(f.dir, 'b.txt'), 'utf8'), 'b from the task\n');
  assert.equal(await git(f.dir, 'status', '--porcelain'), '');
});

void test("index.lock in an agent's worktree during commit and checkout: GitLockError, the worktree as it was", async () => {
  const ws = new GitWorkspace(f.worktrees);
  const prepared = await ws.prepare('implementer', 'TASK-010', 'main');
  const wt = prepared.worktree;
  const gitDir = await f.repo.gitDirOf(wt);
  const indexLock = join(gitDir, 'index.lock');
  // The other process that holds the locks works in the worktree (an editor, a person's shell): a
  // lock there with nobody working in the worktree would be removed at once as orphaned.
  const holder = spawn('sleep', ['600'], { cwd: wt, stdio: 'ignore' });
  try {
    await lockedAgentWorktree(ws, wt, gitDir, indexLock);
  } finally {
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
  }
  // Without them, the same checkout goes through.
  const next = await ws.prepare('implementer', 'TASK-011', 'main');
  assert.equal(await git(next.worktree, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-011');
  assert.equal(await gitCode(wt, 'diff', '--quiet', 'HEAD'), 0);
});

async function lockedAgentWorktree(ws: GitWorkspace, wt: string, gitDir: string, indexLock: string): Promise<void> {
  // Commit: refused with the lock held; the work stays in the worktree, uncommitted.
  await writeFile(join(wt, 'work.txt'), 'work\n');
  const tip = await git(f.dir, 'rev-parse', 'pipeline/TASK-010');
  await writeFile(indexLock, '');
  await assert.rejects(ws.commitAll('implementer', 'TASK-010 work'), (e: unknown) => {
    assert.ok(isGitLockError(e), String(e));
    assert.equal((e as GitLockError).lockFile, indexLock);
    return true;
  });
  assert.equal(await git(f.dir, 'rev-parse', 'pipeline/TASK-010'), tip);
  assert.equal(await readFile(join(wt, 'work.txt'), 'utf8'), 'work\n');
  // Released while the commit waits: it goes through.
  const release = setTimeout(() => void rm(indexLock, { force: true }), 150);
  try {
    assert.equal(await ws.commitAll('implementer', 'TASK-010 work'), true);
  } finally {
    clearTimeout(release);
  }
  assert.equal(await git(wt, 'status', '--porcelain'), '');
  const committed = await git(wt, 'rev-parse', 'HEAD');

  // Checkout: the index lock held, then HEAD's: the worktree stays on its branch, files untouched.
  for (const name of ['index.lock', 'HEAD.lock']) {
    const lock = join(gitDir, name);
    await writeFile(lock, '');
    await assert.rejects(ws.prepare('implementer', 'TASK-011', 'main'), (e: unknown) => {
      assert.ok(e instanceof GitLockError, `${name}: ${String(e)}`);
      assert.equal(e.lockFile, lock);
      return true;
    });
    await rm(lock);
    assert.equal(await git(wt, 'symbolic-ref', '--short', 'HEAD'), 'pipeline/TASK-010', name);
    assert.equal(await git(wt, 'rev-parse', 'HEAD'), committed);
    assert.equal(await git(wt, 'status', '--porcelain'), '', name);
    assert.equal(await readFile(join(wt, 'work.txt'), 'utf8'), 'work\n');
  }
}
