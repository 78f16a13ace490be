import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PriorWork } from '../agents/taskFile';
import { PipelineError } from '../errors';
import { MergeConflictError } from '../git/gitErrors';
import type { GitRemote } from '../git/remote/gitRemote';
import { fetchBranches, pushBranch, trackingRef, withRemoteLocks } from '../git/remote/remoteRefs';
import { assertName, taskBranch } from '../model/ids';
import type { BranchCleanup, MergeOutcome, PreparedWorktree, WorkspacePort } from '../ports/workspacePort';

/**
 * The coordinator's WorkspacePort when agents run on workers: the git work of an attempt (receive,
 * commit, set aside, publish) happens in the worker's own clone, so here `prepare` only gives the
 * attempt a directory for the coordinator's copy of its task file; what earlier stages left is read
 * from the shared remote; merges are pushes to the remote that land only if the target has not
 * moved (GitRemote.merge).
 */
export class RemoteWorkspace implements WorkspacePort {
  /** The task branch's remote tip each merge took, for the branch's deletion that follows. */
  private readonly mergedTips = new Map<string, string>();

  constructor(
    private readonly remote: GitRemote,
    /** Where the coordinator keeps its copies of the attempts' task files, one directory per agent. */
    private readonly dir: string,
  ) {}

  worktreePath(agentId: string): string {
    return join(this.dir, assertName(agentId, 'agent id'));
  }

  async repair(agentIds: readonly string[]): Promise<string[]> {
    for (const id of agentIds) await mkdir(this.worktreePath(id), { recursive: true });
    return [];
  }

  async prepare(agentId: string): Promise<PreparedWorktree> {
    const worktree = this.worktreePath(agentId);
    await mkdir(worktree, { recursive: true });
    // The worker brings the branch up to date with the target (receive with mergeTarget) and puts
    // any conflicting files in the task file it gives its agent.
    return { worktree, conflicts: [] };
  }

  commitAll(): Promise<boolean> {
    // The worker commits what its agent left before it publishes the branch.
    return Promise.resolve(false);
  }

  setAside(): Promise<string | null> {
    // The worker sets aside what its agent left, in its own clone.
    return Promise.resolve(null);
  }

  async priorWork(taskId: string, base: string): Promise<PriorWork> {
    const r = this.remote.remote;
    const branch = taskBranch(taskId);
    return withRemoteLocks(r, { tracking: [branch, base] }, async () => {
      const tips = await fetchBranches(r, [branch, base], 'read prior work of');
      if (!tips.get(branch) || !tips.get(base)) return { commits: [], files: [], notes: [] };
      const range = `${trackingRef(r, base)}..${trackingRef(r, branch)}`;
      const log = await r.repo.read(['log', '--format=%h %s', range, '--']);
      const diff = await r.repo.read([
        'diff',
        '--name-only',
        `${trackingRef(r, base)}...${trackingRef(r, branch)}`,
        '--',
      ]);
      return {
        commits: log.split('\n').filter(Boolean),
        files: diff.split('\n').filter(Boolean),
        notes: [],
      };
    });
  }

  async ensureBranch(name: string, from: string): Promise<void> {
    const r = this.remote.remote;
    await withRemoteLocks(r, { tracking: [name, from] }, async () => {
      const tips = await fetchBranches(r, [name, from], 'create');
      const source = tips.get(from);
      if (tips.get(name)) return;
      if (!source)
        throw new PipelineError('git', `The remote ${r.name} has no branch ${from} to create ${name} from.`, {
          where: `${r.name} ${from}`,
          fix: `Push ${from} to ${r.name} (${r.url}).`,
        });
      await pushBranch(r, source, name, 'create', null);
    });
  }

  async merge(taskId: string, into: string, message: string): Promise<MergeOutcome> {
    try {
      const r = await this.remote.merge(taskId, into, message);
      this.mergedTips.set(taskId, r.merged);
      return { merged: true, commit: r.sha };
    } catch (e) {
      if (e instanceof MergeConflictError) return { merged: false, conflicts: [...e.files] };
      throw e;
    }
  }

  async deleteMergedBranch(taskId: string, into: string): Promise<BranchCleanup> {
    const merged = this.mergedTips.get(taskId);
    if (!merged)
      return { deleted: false, reason: 'moved', detail: 'this coordinator did not merge it; the branch is kept' };
    this.mergedTips.delete(taskId);
    const r = await this.remote.deleteMergedBranch(taskId, into, merged);
    return r === 'deleted'
      ? { deleted: true }
      : { deleted: false, reason: 'moved', detail: `${taskBranch(taskId)} gained commits after its merge: kept` };
  }
}
