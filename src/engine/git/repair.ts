import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gitProcessesIn, type GitProcess } from './gitProcesses';
import { canonicalPath, listWorktrees } from './worktreeList';
import type { Worktrees } from './worktrees';
import { unfinishedOperation, type UnfinishedOperation } from './worktreeState';

/**
 * Start-up repair of the repository after a crash or a user's manual changes, so that the worktree
 * registry matches the disk and no lock is left behind (engineering.md, "Reliability" 6). Nothing
 * that could hold work is deleted: a missing agent worktree is re-created on its branch or commit,
 * a stale lock is removed only when no git process works in the repository, a merge is aborted only
 * in an agent's worktree, and a rebase is only reported.
 */

export interface LockFinding {
  readonly path: string;
  readonly action: 'removed' | 'kept';
  readonly reason: string;
}

export interface UnfinishedFinding {
  readonly path: string;
  /** The agent that owns the worktree; undefined for the user's main working tree or others. */
  readonly agentId: string | undefined;
  readonly operation: UnfinishedOperation;
  readonly action: 'aborted' | 'reported';
}

export interface RepairReport {
  readonly locks: readonly LockFinding[];
  /** Agent worktrees whose directory had gone, re-created on their branch (or commit). */
  readonly recreated: ReadonlyArray<{ readonly agentId: string; readonly path: string; readonly ref: string }>;
  /** Other worktrees whose directory had gone; `git worktree prune` dropped their registration. */
  readonly pruned: readonly string[];
  /** Worktrees of `RepairOptions.agents` that did not exist and were created. */
  readonly created: readonly string[];
  readonly unfinished: readonly UnfinishedFinding[];
  /** Directories in the worktree root that are not registered worktrees: reported, left alone. */
  readonly strays: readonly string[];
}

export interface RepairOptions {
  /** The configured agents: their worktrees are created when missing. */
  readonly agents?: readonly string[];
  /** A lock younger than this may belong to a git command that is just starting: kept. Default 10 s. */
  readonly staleLockMs?: number;
  /** Finds live git processes in the given directories (the /proc scan by default). */
  readonly gitProcesses?: (dirs: readonly string[]) => Promise<GitProcess[] | undefined>;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function removeStaleLocks(worktrees: Worktrees, options: RepairOptions): Promise<LockFinding[]> {
  const repo = worktrees.repo;
  const gitDirs = [repo.commonDir];
  try {
    for (const name of await readdir(join(repo.commonDir, 'worktrees')))
      gitDirs.push(join(repo.commonDir, 'worktrees', name));
  } catch {
    // No linked worktrees yet.
  }
  const findings: LockFinding[] = [];
  let processes: GitProcess[] | undefined | null = null;
  for (const dir of gitDirs) {
    const lock = join(dir, 'index.lock');
    let age: number;
    try {
      age = Date.now() - (await stat(lock)).mtimeMs;
    } catch {
      continue;
    }
    if (age < (options.staleLockMs ?? 10_000)) {
      findings.push({
        path: lock,
        action: 'kept',
        reason: `it is only ${Math.round(age)} ms old; a git command may be writing it`,
      });
      continue;
    }
    // One scan for all locks: it reads every process's /proc entries.
    if (processes === null) {
      processes = await (options.gitProcesses ?? gitProcessesIn)([repo.root, repo.commonDir, worktrees.root]);
    }
    if (processes === undefined) {
      findings.push({
        path: lock,
        action: 'kept',
        reason: 'cannot tell whether a git process is running here (no /proc); delete it by hand if none is',
      });
    } else if (processes.length > 0) {
      findings.push({
        path: lock,
        action: 'kept',
        reason: `a git process is running: ${processes.map((p) => p.reason).join('; ')}`,
      });
    } else {
      await rm(lock, { force: true });
      findings.push({
        path: lock,
        action: 'removed',
        reason: `no git process works in the repository; the lock was ${Math.round(age / 1000)} s old`,
      });
    }
  }
  return findings;
}

export async function repairRepository(worktrees: Worktrees, options: RepairOptions = {}): Promise<RepairReport> {
  const repo = worktrees.repo;
  return repo.exclusive(async () => {
    const locks = await removeStaleLocks(worktrees, options);

    const entries = await listWorktrees(repo);
    const recreated: Array<{ agentId: string; path: string; ref: string }> = [];
    const pruned: string[] = [];
    for (const e of entries) {
      if (!e.prunable) continue;
      const agentId = await worktrees.agentOf(e.path);
      if (agentId) {
        // Before any prune: the registration remembers the branch or commit to re-create it on.
        await worktrees.recreate(e, entries);
        recreated.push({ agentId, path: e.path, ref: (await repo.currentBranch(e.path)) ?? e.head });
      } else {
        pruned.push(e.path);
      }
    }
    await repo.mutate(['worktree', 'prune']);

    const created: string[] = [];
    for (const agentId of options.agents ?? []) {
      if ((await worktrees.ensureWorktree(agentId)).created) created.push(agentId);
    }

    const unfinished: UnfinishedFinding[] = [];
    const live = (await listWorktrees(repo)).filter((e) => !e.prunable && !e.bare);
    for (const e of live) {
      const gitDir = e.main ? repo.commonDir : await repo.gitDirOf(e.path);
      const operation = await unfinishedOperation(gitDir);
      if (!operation) continue;
      const agentId = e.main ? undefined : await worktrees.agentOf(e.path);
      // Only our own worktrees' merges are aborted; the user's main working tree is theirs.
      if (operation === 'merge' && agentId) {
        await repo.mutate(['merge', '--abort'], { cwd: e.path });
        unfinished.push({ path: e.path, agentId, operation, action: 'aborted' });
      } else {
        unfinished.push({ path: e.path, agentId, operation, action: 'reported' });
      }
    }

    const strays: string[] = [];
    if (await exists(worktrees.root)) {
      const registered = new Set<string>();
      for (const e of live) registered.add(await canonicalPath(e.path));
      for (const name of await readdir(worktrees.root)) {
        const p = join(worktrees.root, name);
        if (!registered.has(await canonicalPath(p))) strays.push(p);
      }
    }

    return { locks, recreated, pruned, created, unfinished, strays };
  });
}
