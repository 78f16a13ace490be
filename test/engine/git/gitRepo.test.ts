import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { gitEnvironment } from '../../../src/engine/git/gitEnv';
import { GitCommandError } from '../../../src/engine/git/gitErrors';
import { GitRepo, isRepo } from '../../../src/engine/git/gitRepo';
import { fixturePerFile, git } from './gitFixture';

const f = fixturePerFile();

void test('initRepo: a first commit on main, with a local identity', async () => {
  assert.equal(await f.repo.currentBranch(), 'main');
  assert.match((await f.repo.headOf('main')) ?? '', /^[0-9a-f]{40}$/);
  assert.equal(await f.repo.headOf('no-such-branch'), undefined);
  assert.equal(await git(f.dir, 'config', '--local', 'user.email'), 'agent-pipeline@localhost');
  assert.equal(await git(f.dir, 'ls-files'), 'a.txt\nb.txt');
});

void test('isRepo and open: a repository, a plain directory, a missing one', async () => {
  const plain = await mkdtemp(join(tmpdir(), 'pipeline-plain-'));
  try {
    assert.equal(await isRepo(f.dir), true);
    assert.equal(await isRepo(plain), false);
    assert.equal(await isRepo(join(plain, 'missing')), false);
    await assert.rejects(
      GitRepo.open(plain),
      (e: unknown) =>
        isPipelineError(e) && e.code === 'git' && /not inside a git repository/.test(e.message) && !!e.details.fix,
    );
    await assert.rejects(GitRepo.open(join(plain, 'missing')), /does not exist/);
  } finally {
    await rm(plain, { recursive: true, force: true });
  }
});

void test('a failed command names the command, the repository and git stderr', async () => {
  await assert.rejects(f.repo.read(['rev-parse', '--verify', 'nope']), (e: unknown) => {
    assert.ok(e instanceof GitCommandError);
    assert.equal(e.code, 'git');
    assert.equal(e.exitCode, 128);
    assert.match(e.message, /git rev-parse --verify nope failed \(exit 128\)/);
    assert.ok(e.message.includes(f.dir), e.message);
    assert.match(e.stderr, /fatal/);
    assert.ok(e.details.fix);
    return true;
  });
});

void test('a command that stays silent is killed by the timeout', async () => {
  const slow = await GitRepo.open(f.dir, { timeoutMs: 300 });
  // cat-file --batch waits for object names on stdin, which nobody sends.
  await assert.rejects(
    slow.read(['cat-file', '--batch']),
    (e: unknown) => e instanceof GitCommandError && e.exitCode === -1 && /no output for 300 ms/.test(e.message),
  );
});

void test('environment: no prompts, no optional locks on reads, no GIT_* leaking from our own process', async () => {
  const read = gitEnvironment(true, { PATH: '/bin', GIT_DIR: '/elsewhere', EDITOR: 'vi' });
  assert.equal(read.GIT_TERMINAL_PROMPT, '0');
  assert.equal(read.GIT_OPTIONAL_LOCKS, '0');
  assert.equal(read.GIT_DIR, undefined);
  assert.equal(read.EDITOR, undefined);
  assert.equal(gitEnvironment(false, {}).GIT_OPTIONAL_LOCKS, undefined);

  // As under a git hook: GIT_DIR and GIT_INDEX_FILE set in our process must not redirect our calls.
  const saved = { dir: process.env.GIT_DIR, index: process.env.GIT_INDEX_FILE };
  process.env.GIT_DIR = '/nonexistent/.git';
  process.env.GIT_INDEX_FILE = '/nonexistent/index';
  try {
    const repo = await GitRepo.open(f.dir);
    assert.equal(await repo.currentBranch(), 'main');
    await repo.mutate(['update-index', '--refresh']);
  } finally {
    if (saved.dir === undefined) delete process.env.GIT_DIR;
    else process.env.GIT_DIR = saved.dir;
    if (saved.index === undefined) delete process.env.GIT_INDEX_FILE;
    else process.env.GIT_INDEX_FILE = saved.index;
  }
});

void test('the exclusive lock: shared by every instance of one repository, FIFO, re-entrant', async () => {
  await git(f.dir, 'worktree', 'add', '--quiet', '--detach', join(f.base, 'side'));
  const fromWorktree = await GitRepo.open(join(f.base, 'side'));
  assert.equal(fromWorktree.commonDir, f.repo.commonDir);
  assert.equal(fromWorktree.root, f.repo.root);

  let inside = 0;
  let most = 0;
  const order: number[] = [];
  const section = (repo: GitRepo, n: number) =>
    repo.exclusive(async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((r) => setTimeout(r, 5));
      // Re-entrant: a locked helper called inside a locked section does not deadlock.
      await repo.exclusive(async () => repo.mutate(['update-index', '--refresh']));
      // The whole repository covers every finer lock of it.
      await repo.locked({ branches: ['main'], worktrees: [f.dir] }, () => Promise.resolve());
      order.push(n);
      inside--;
    });
  await Promise.all([0, 1, 2, 3, 4, 5].map((n) => section(n % 2 ? fromWorktree : f.repo, n)));
  assert.equal(most, 1);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);

  // A failing holder releases the lock.
  await assert.rejects(
    f.repo.exclusive(() => Promise.reject(new Error('boom'))),
    /boom/,
  );
  assert.equal(await f.repo.exclusive(() => Promise.resolve(7)), 7);
  await git(f.dir, 'worktree', 'remove', join(f.base, 'side'));
});

void test('a mutating command waits for an index.lock another process holds briefly', async () => {
  const lock = join(f.repo.commonDir, 'index.lock');
  await writeFile(lock, '');
  const release = setTimeout(() => void rm(lock, { force: true }), 120);
  const started = Date.now();
  try {
    await f.repo.mutate(['add', '--', 'a.txt']);
    assert.ok(Date.now() - started >= 100, 'it succeeded only once the lock was gone');
  } finally {
    clearTimeout(release);
    await rm(lock, { force: true });
  }
});
