import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { existsQuiet } from '../store/fsUtil';
import { recoverMove, type MoveRecovery } from './pendingMove';
import { findLockFiles, removeStaleLocks, type LockFinding, type StaleLockOptions } from './staleLocks';
import { canonicalPath, listWorktrees } from './worktreeList';
import { readRegistry } from './worktreeRegistry';
import type { Worktrees } from './worktrees';
import { unfinishedOperation, type UnfinishedOperation } from './worktreeState';

/**
 * Start-up repair of the repository after a crash or a user's manual changes, so that the worktree
 * registry matches the disk and no lock is left behind (engineering.md, "Reliability" 6). Nothing
 * that could hold work is deleted: a missing agent worktree is re-created on its branch or commit,
 * a stale git lock (any `*.lock` of the git dir: an index, a ref, packed-refs, HEAD, config) is
 * removed only when it is old and no git process works in the repository (staleLocks.ts), a merge is aborted only
 * in an agent's worktree, and a rebase is only reported.
 */

export type { LockFinding } from './staleLocks';

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
  /**
   * Checkouts whose branch was being moved with them when the engine died (pendingMove.ts): the
   * files put back where the branch is, or left for a person when a local change was in the way.
   */
  readonly moves: ReadonlyArray<{ readonly path: string; readonly ref: string; readonly action: MoveRecovery }>;
}

export interface RepairOptions extends StaleLockOptions {
  /** The configured agents: their worktrees are created when missing. */
  readonly agents?: readonly string[];
}

/**
 * Every git lock file in the repository (the index and HEAD of each worktree, refs, packed-refs,
 * config), removed when stale. Where a git process of this repository could be working: the main
 * working tree, the git dir, the worktree root and every registered worktree.
 */
async function removeStaleLockFiles(worktrees: Worktrees, options: RepairOptions): Promise<LockFinding[]> {
  const repo = worktrees.repo;
  const locks = await findLockFiles(repo.commonDir);
  if (locks.length === 0) return [];
  const dirs = new Set([repo.root, repo.commonDir, worktrees.root]);
  for (const w of await readRegistry(repo.root, repo.commonDir)) dirs.add(w.path);
  return removeStaleLocks(locks, [...dirs], options);
}

export async function repairRepository(worktrees: Worktrees, options: RepairOptions = {}): Promise<RepairReport> {
  const repo = worktrees.repo;
  return repo.exclusive(async () => {
    const locks = await removeStaleLockFiles(worktrees, options);

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

    // Registered one after the other, their files checked out side by side (Worktrees.ensureWorktrees).
    const created = (await worktrees.ensureWorktrees(options.agents ?? []))
      .filter((w) => w.created)
      .map((w) => w.agentId);

    const unfinished: UnfinishedFinding[] = [];
    const moves: Array<{ path: string; ref: string; action: MoveRecovery }> = [];
    const live = (await listWorktrees(repo)).filter((e) => !e.prunable && !e.bare);
    for (const e of live) {
      const gitDir = e.main ? repo.commonDir : await repo.gitDirOf(e.path);
      const moved = await recoverMove(repo, e.path, gitDir);
      if (moved) moves.push({ path: e.path, ref: moved.move.ref, action: moved.action });
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
    if (await existsQuiet(worktrees.root)) {
      const registered = new Set<string>();
      for (const e of live) registered.add(await canonicalPath(e.path));
      for (const name of await readdir(worktrees.root)) {
        const p = join(worktrees.root, name);
        if (!registered.has(await canonicalPath(p))) strays.push(p);
      }
    }

    return { locks, recreated, pruned, created, unfinished, strays, moves };
  });
}
