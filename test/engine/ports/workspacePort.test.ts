import { execFile, spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GitWorkspace } from '../../../src/engine/git/gitWorkspace';
import { MemoryWorkspace } from '../../support/twins/memoryWorkspace';
import { assertRepoHealthy, cleanEnv, commitFiles, commitOnBranch, fixture, git } from '../git/gitFixture';
import { INITIAL_FILES, workspacePortConformance } from './workspacePort.conformance';

/** The WorkspacePort's one contract, passed by the real adapter on git and by the in-memory twin. */

const run = promisify(execFile);

async function gitOk(cwd: string, ...args: string[]): Promise<boolean> {
  return run('git', args, { cwd, env: cleanEnv() }).then(
    () => true,
    () => false,
  );
}

workspacePortConformance('GitWorkspace (git in a temporary repository)', async () => {
  const f = await fixture(INITIAL_FILES);
  const port = new GitWorkspace(f.worktrees);
  return {
    port,
    // main is checked out in the main working tree: commit there; other branches in a side worktree.
    commitOn: (branch, files, message) =>
      branch === 'main' ? commitFiles(f.dir, files, message) : commitOnBranch(f.dir, branch, files, message),
    head: async (branch) =>
      (await gitOk(f.dir, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}`))
        ? git(f.dir, 'rev-parse', `refs/heads/${branch}`)
        : undefined,
    show: async (branch, path) =>
      (await gitOk(f.dir, 'cat-file', '-e', `${branch}:${path}`))
        ? (await run('git', ['show', `${branch}:${path}`], { cwd: f.dir, env: cleanEnv() })).stdout
        : undefined,
    contains: (descendant, ancestor) => gitOk(f.dir, 'merge-base', '--is-ancestor', ancestor, descendant),
    // A fresh lock file, as a live git process holds it (not stale: far younger than staleLockMs). In
    // an agent's worktree its holder works there (a lock with nobody in the worktree is orphaned).
    holdLock: async (call, agentId) => {
      const dir =
        call === 'merge'
          ? join(f.repo.commonDir, 'refs', 'heads')
          : await git(port.worktreePath(agentId!), 'rev-parse', '--absolute-git-dir');
      const lock = join(dir, call === 'merge' ? 'main.lock' : 'index.lock');
      await writeFile(lock, '');
      const holder =
        call === 'merge' ? undefined : spawn('sleep', ['600'], { cwd: port.worktreePath(agentId!), stdio: 'ignore' });
      return async () => {
        if (holder) {
          holder.kill('SIGKILL');
          await new Promise((r) => holder.once('exit', r));
        }
        await rm(lock, { force: true });
      };
    },
    cleanup: async () => {
      try {
        await assertRepoHealthy(f.repo);
      } finally {
        await f.cleanup();
      }
    },
  };
});

workspacePortConformance('MemoryWorkspace (the in-memory twin)', async () => {
  const ws = await MemoryWorkspace.create({ files: INITIAL_FILES });
  return {
    port: ws,
    commitOn: (branch, files, message) => Promise.resolve(ws.commitOn(branch, files, message)),
    head: (branch) => Promise.resolve(ws.head(branch)),
    show: (branch, path) => Promise.resolve(ws.read(branch, path)),
    contains: (descendant, ancestor) => Promise.resolve(ws.contains(descendant, ancestor)),
    holdLock: (call) => {
      const held = ws.holdLock(call);
      return Promise.resolve(() => Promise.resolve(held.release()));
    },
    cleanup: () => ws.dispose(),
  };
});
