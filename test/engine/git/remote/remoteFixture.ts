import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { GitRepo } from '../../../../src/engine/git/gitRepo';
import { initRepo } from '../../../../src/engine/git/initRepo';
import { GitRemote } from '../../../../src/engine/git/remote/gitRemote';
import { Worktrees } from '../../../../src/engine/git/worktrees';
import { assertRepoHealthy, commitFiles, git } from '../gitFixture';

/**
 * Several machines sharing one remote, in temporary directories: a bare `origin.git`, the user's own
 * clone (`user`, which made the first commit and pushes to main like a person would), and one clone
 * per machine with its agent worktrees next to it. Tests drive git directly to set up and check.
 */

export interface Machine {
  readonly name: string;
  /** The clone's main working tree. */
  readonly dir: string;
  readonly repo: GitRepo;
  readonly worktrees: Worktrees;
  readonly remote: GitRemote;
}

export interface Cluster {
  readonly base: string;
  readonly origin: string;
  /** The user's clone, with `main` checked out. */
  readonly user: string;
  readonly machines: Record<string, Machine>;
  cleanup(): Promise<void>;
}

async function identify(dir: string, name: string): Promise<void> {
  await git(dir, 'config', 'user.name', name);
  await git(dir, 'config', 'user.email', `${name}@localhost`);
  await git(dir, 'config', 'commit.gpgsign', 'false');
}

/** A clone of `origin` at `dir`, bound as a machine of the pipeline. */
export async function machine(base: string, origin: string, name: string): Promise<Machine> {
  const dir = join(base, name);
  await git(base, 'clone', '--quiet', origin, dir);
  await identify(dir, `machine-${name}`);
  const repo = await GitRepo.open(dir);
  const worktrees = new Worktrees(repo, `../${name}-worktrees`);
  return { name, dir, repo, worktrees, remote: await GitRemote.open(repo, worktrees, { merge: { backoffMs: 10 } }) };
}

export async function cluster(
  names: readonly string[] = ['a', 'b', 'c'],
  files: Record<string, string> = { 'README.md': '# shared\n', 'a.txt': 'a1\n' },
): Promise<Cluster> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-remote-'));
  const origin = join(base, 'origin.git');
  await git(base, 'init', '--quiet', '--bare', '--initial-branch=main', origin);
  const userRepo = await initRepo(join(base, 'user'), { files });
  const user = userRepo.root;
  await git(user, 'remote', 'add', 'origin', origin);
  await git(user, 'push', '--quiet', 'origin', 'main');
  await git(user, 'branch', '--quiet', '--set-upstream-to=origin/main');
  const machines: Record<string, Machine> = {};
  for (const n of names) machines[n] = await machine(base, origin, n);
  return {
    base,
    origin,
    user,
    machines,
    async cleanup() {
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** One cluster for a whole test file: every clone checked healthy (fsck, no lock file left) and removed after its tests. */
export function clusterPerFile(names?: readonly string[]): Cluster {
  const c = {} as Cluster;
  before(async () => {
    Object.assign(c, await cluster(names));
  });
  after(async () => {
    for (const m of Object.values(c.machines)) await assertRepoHealthy(m.repo);
    assert.equal(await git(c.origin, 'fsck', '--no-progress', '--no-dangling'), '');
    await c.cleanup();
  });
  return c;
}

/** The commit of `branch` in the bare origin, or '' when it has none. */
export async function originTip(c: Cluster, branch: string): Promise<string> {
  try {
    return await git(c.origin, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}`);
  } catch {
    return '';
  }
}

/** The user commits `files` on main in their clone and pushes it, as a person would. */
export async function userPushes(c: Cluster, files: Record<string, string>, message: string): Promise<string> {
  await git(c.user, 'pull', '--quiet', '--ff-only', 'origin', 'main');
  const sha = await commitFiles(c.user, files, message);
  await git(c.user, 'push', '--quiet', 'origin', 'main');
  return sha;
}
