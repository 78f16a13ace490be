// src/engine/git/ — git for the pipeline: worktrees, task branches, merges by compare-and-swap, repair,
// the per-repository lock. Main file: this one (the WorkspacePort on real git). It imports the model, the
// ports and the agents' task-file names; nothing above it.
import type { PriorWork } from '../agents/taskFile';
import { taskBranch } from '../model/ids';
import type { BranchCleanup, MergeOutcome, PreparedWorktree, WorkspacePort } from '../ports/workspacePort';
import { ensureBranch } from './branches';
import { taskWork } from './changes';
import { MergeConflictError } from './gitErrors';
import { GitRepo, type GitRepoOptions } from './gitRepo';
import { mergeTask } from './merge';
import { deleteMergedBranch } from './mergedBranches';
import { repairRepository, type RepairReport } from './repair';
import { Worktrees } from './worktrees';

/**
 * The monitor's WorkspacePort on the real git layer. Conflicts are outcomes here, not errors: the
 * monitor sends a conflicting task back to rework, with the files in the next task file.
 */
export class GitWorkspace implements WorkspacePort {
  constructor(readonly worktrees: Worktrees) {}

  /** The repository containing `repoDir`, with agent worktrees under `worktreeRoot` (relative to its root). */
  static async open(repoDir: string, worktreeRoot: string, options: GitRepoOptions = {}): Promise<GitWorkspace> {
    return new GitWorkspace(new Worktrees(await GitRepo.open(repoDir, options), worktreeRoot));
  }

  get repo(): GitRepo {
    return this.worktrees.repo;
  }

  worktreePath(agentId: string): string {
    return this.worktrees.pathOf(agentId);
  }

  async repair(agentIds: readonly string[]): Promise<string[]> {
    return describeRepair(await repairRepository(this.worktrees, { agents: agentIds }));
  }

  async prepare(agentId: string, taskId: string, base: string): Promise<PreparedWorktree> {
    // On a conflict the agent still gets its branch (unmerged, no markers) and the files to resolve.
    const co = await this.worktrees.checkoutTask(agentId, taskId, base, { onConflict: 'checkout' });
    return { worktree: co.path, conflicts: [...co.conflicts] };
  }

  async commitAll(agentId: string, message: string): Promise<boolean> {
    return (await this.worktrees.commitAll(agentId, message)) !== undefined;
  }

  setAside(agentId: string, ref: string, message: string): Promise<string | null> {
    return this.worktrees.setAside(agentId, ref, message);
  }

  async priorWork(taskId: string, base: string): Promise<PriorWork> {
    const c = await taskWork(this.repo, taskId, base);
    return {
      commits: c.commits.map((x) => `${x.sha.slice(0, 10)} ${x.subject}`),
      files: c.files.map((x) => (x.from ? `${x.from} → ${x.path}` : x.path)),
      notes: [],
    };
  }

  async ensureBranch(name: string, from: string): Promise<void> {
    await ensureBranch(this.repo, name, from);
  }

  async merge(taskId: string, into: string, message: string): Promise<MergeOutcome> {
    try {
      const r = await mergeTask(this.repo, taskBranch(taskId), into, message);
      return { merged: true, commit: r.sha };
    } catch (e) {
      if (e instanceof MergeConflictError) return { merged: false, conflicts: [...e.files] };
      throw e;
    }
  }

  async deleteMergedBranch(taskId: string, into: string): Promise<BranchCleanup> {
    const r = await deleteMergedBranch(this.repo, taskBranch(taskId), into, async (p) =>
      Boolean(await this.worktrees.agentOf(p)),
    );
    return r.deleted ? { deleted: true } : { deleted: false, reason: r.reason, detail: r.detail };
  }
}

/** One line per thing found or done, for the monitor's warnings; empty when all was well. */
export function describeRepair(r: RepairReport): string[] {
  const lines: string[] = [];
  for (const l of r.locks)
    lines.push(`${l.action === 'removed' ? 'removed stale lock' : 'kept lock'} ${l.path}: ${l.reason}`);
  for (const w of r.recreated) lines.push(`re-created the missing worktree of ${w.agentId} at ${w.path} (${w.ref})`);
  for (const p of r.pruned) lines.push(`pruned the registration of missing worktree ${p}`);
  for (const a of r.created) lines.push(`created the worktree of ${a}`);
  for (const u of r.unfinished) {
    lines.push(
      u.action === 'aborted'
        ? `aborted an unfinished ${u.operation} in the worktree of ${u.agentId ?? '?'} (${u.path})`
        : `unfinished ${u.operation} in ${u.path}: finish or abort it there (git ${u.operation} --continue or --abort)`,
    );
  }
  for (const s of r.strays) lines.push(`${s} is in the worktree root but is not a worktree; left alone`);
  return lines;
}
