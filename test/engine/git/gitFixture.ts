import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { initRepo } from '../../../src/engine/git/initRepo';
import type { GitRepo } from '../../../src/engine/git/gitRepo';
import { Worktrees } from '../../../src/engine/git/worktrees';

/**
 * Real repositories in temporary directories. The tests drive git directly (execFile, not the
 * layer under test) to set up situations and to check results, so a bug in the layer cannot hide
 * behind itself.
 */

const run = promisify(execFile);

/** The environment without GIT_* variables, so a test never acts on the repository it runs in. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toUpperCase().startsWith('GIT_')) env[k] = v;
  env.GIT_TERMINAL_PROMPT = '0';
  return env;
}

/** Runs git in `cwd` and returns its stdout, trimmed. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Runs git and returns its exit code instead of throwing. */
export async function gitCode(cwd: string, ...args: string[]): Promise<number> {
  try {
    await run('git', args, { cwd, env: cleanEnv() });
    return 0;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'number' ? code : -1;
  }
}

export async function write(dir: string, file: string, content: string): Promise<void> {
  await mkdir(dirname(join(dir, file)), { recursive: true });
  await writeFile(join(dir, file), content);
}

/** Writes files and commits them, and only them, in `cwd` (on whatever is checked out there). */
export async function commitFiles(cwd: string, files: Record<string, string>, message: string): Promise<string> {
  for (const [f, c] of Object.entries(files)) await write(cwd, f, c);
  await git(cwd, 'add', '--', ...Object.keys(files));
  await git(cwd, 'commit', '--quiet', '--no-verify', '-m', message);
  return git(cwd, 'rev-parse', 'HEAD');
}

/** Commits files on `branch` without checking it out (a temporary worktree does the work). */
export async function commitOnBranch(
  repoDir: string,
  branch: string,
  files: Record<string, string>,
  message: string,
): Promise<string> {
  const tmp = await mkdtemp(join(tmpdir(), 'pipeline-side-'));
  const wt = join(tmp, 'wt');
  await git(repoDir, 'worktree', 'add', '--quiet', wt, branch);
  try {
    return await commitFiles(wt, files, message);
  } finally {
    await git(repoDir, 'worktree', 'remove', '--force', wt);
    await rm(tmp, { recursive: true, force: true });
  }
}

export interface Fixture {
  readonly base: string;
  readonly repo: GitRepo;
  readonly worktrees: Worktrees;
  /** The main working tree. */
  readonly dir: string;
  cleanup(): Promise<void>;
}

/** A repository with `a.txt` and `b.txt` on `main`, and a worktree root next to it. */
export async function fixture(
  files: Record<string, string> = { 'a.txt': 'a1\na2\na3\n', 'b.txt': 'b1\n' },
): Promise<Fixture> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-git-'));
  const repo = await initRepo(join(base, 'repo'), { files });
  const worktrees = new Worktrees(repo, '../.pipeline-worktrees');
  return {
    base,
    repo,
    worktrees,
    dir: repo.root,
    async cleanup() {
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** `git fsck` finds nothing wrong and no git lock file is left anywhere in the git dir. */
export async function assertRepoHealthy(repo: GitRepo): Promise<void> {
  const { stdout, stderr } = await run('git', ['fsck', '--no-progress', '--no-dangling'], {
    cwd: repo.root,
    env: cleanEnv(),
  });
  assert.equal(`${stdout}${stderr}`.trim(), '', 'git fsck output');
  const locks: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'objects') await walk(p);
      } else if (e.name.endsWith('.lock')) locks.push(p);
    }
  };
  await walk(repo.commonDir);
  assert.deepEqual(locks, [], 'lock files left behind');
}

/**
 * One fixture for a whole test file: made before its tests (then `ready` runs, for what the file
 * builds on it), checked healthy and removed after them.
 */
export function fixturePerFile(files?: Record<string, string>, ready?: (f: Fixture) => Promise<void> | void): Fixture {
  const f = {} as Fixture;
  before(async () => {
    Object.assign(f, await fixture(files));
    await ready?.(f);
  });
  after(async () => {
    await assertRepoHealthy(f.repo);
    await f.cleanup();
  });
  return f;
}
