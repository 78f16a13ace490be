// src/engine/git/ — git for the pipeline: worktrees, task branches, merges by compare-and-swap, repair,
// the per-repository lock; remote/ across machines. Main file: this one (the WorkspacePort on real git).
// It imports the model, ../errors, the ports, the agents' task-file names and the store's file helpers;
// nothing above it. gitRepo.ts runs every command (gitCommand.ts) under the locks, worktrees.ts keeps
// the agents' worktrees, taskCheckout.ts gives one a task.
import type { PriorWork } from '../agents/taskFile';
import { taskBranch } from '../model/ids';
import type {
  BranchCleanup,
  CommitAllOptions,
  MergeOutcome,
  PreparedWorktree,
  WorkspacePort,
} from '../ports/workspacePort';
import { ensureBranch } from './branches';
import { taskWork } from './changes';
import { MergeConflictError } from './gitErrors';
import { GitRepo, type GitRepoOptions } from './gitRepo';
import { MergeTrains } from './mergeTrain';
import { deleteMergedBranch } from './mergedBranches';
import { repairRepository, type RepairReport } from './repair';
import { readLooseRef } from './worktreeRegistry';
import { Worktrees } from './worktrees';

/** How long prior work read during `prepare` is kept for the `priorWork` call after it. */
const PREFETCH_TTL_MS = 10_000;

/**
 * The monitor's WorkspacePort on the real git layer. Conflicts are outcomes here, not errors: the
 * monitor sends a conflicting task back to rework, with the files in the next task file.
 */
export class GitWorkspace implements WorkspacePort {
  /** Prior work read during `prepare`, by task and base, for the `priorWork` call that follows it. */
  private readonly prefetched = new Map<string, { at: number; head: string; work: Promise<PriorWork> }>();

  /** Merges into a target that arrive while one runs leave together (mergeTrain.ts). */
  private readonly trains: MergeTrains;

  constructor(readonly worktrees: Worktrees) {
    this.trains = new MergeTrains(worktrees.repo);
  }

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
    const key = `${taskId}\u0000${base}`;
    this.prefetched.delete(key);
    for (const [k, p] of this.prefetched) if (Date.now() - p.at > PREFETCH_TTL_MS) this.prefetched.delete(k);
    // On a conflict the agent still gets its branch (unmerged, no markers) and the files to resolve.
    const co = await this.worktrees.checkoutTask(agentId, taskId, base, {
      onConflict: 'checkout',
      // The monitor asks for the branch's prior work right after this: read it during the switch.
      onBranchReady: (head) => {
        const work = this.readPriorWork(taskId, base);
        work.catch(() => undefined);
        this.prefetched.set(key, { at: Date.now(), head, work });
      },
    });
    return { worktree: co.path, conflicts: [...co.conflicts] };
  }

  async commitAll(agentId: string, message: string, branch?: string, options?: CommitAllOptions): Promise<boolean> {
    return (await this.worktrees.commitAll(agentId, message, branch, options)) !== undefined;
  }

  setAside(agentId: string, ref: string, message: string): Promise<string | null> {
    return this.worktrees.setAside(agentId, ref, message);
  }

  /**
   * What earlier stages left on the task's branch. Read while `prepare` switched the worktree, when
   * it just did and the branch is still where it was then (its loose ref, read without git; the
   * target moving on does not change what is on the branch since it left the target), else now.
   */
  async priorWork(taskId: string, base: string): Promise<PriorWork> {
    const key = `${taskId}\u0000${base}`;
    const fetched = this.prefetched.get(key);
    this.prefetched.delete(key);
    if (
      fetched &&
      Date.now() - fetched.at <= PREFETCH_TTL_MS &&
      (await readLooseRef(this.repo.commonDir, `refs/heads/${taskBranch(taskId)}`)) === fetched.head
    ) {
      try {
        return await fetched.work;
      } catch {
        // Read again below, for the error of the moment.
      }
    }
    return this.readPriorWork(taskId, base);
  }

  private async readPriorWork(taskId: string, base: string): Promise<PriorWork> {
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
    const r = await this.trains.merge(taskBranch(taskId), into, message);
    if (r.ok) return { merged: true, commit: r.result.sha };
    if (r.error instanceof MergeConflictError) return { merged: false, conflicts: [...r.error.files] };
    throw r.error;
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
  for (const m of r.moves) {
    lines.push(
      m.action === 'left'
        ? `${m.path}: an update of ${m.ref} with its files was cut short and a local change is in the way; check its files against ${m.ref} (git -C "${m.path}" status)`
        : m.action === 'busy'
          ? `${m.path}: an update of ${m.ref} with its files was cut short and its index is locked (its git may still be running); it is settled before ${m.ref} moves again`
          : m.action === 'rolled-back'
            ? `${m.path}: an update of ${m.ref} was cut short; its files were put back where ${m.ref} is`
            : `${m.path}: an update of ${m.ref} had completed`,
    );
  }
  return lines;
}
