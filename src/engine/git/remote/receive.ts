import { PipelineError } from '../../errors';
import { taskBranch } from '../../model/ids';
import { advanceBranch, isAncestor } from '../branches';
import type { GitRepo } from '../gitRepo';
import { branchOfGitDir, holdersOf, lockPath, worktreeAt } from '../worktreeRegistry';
import type { Worktrees } from '../worktrees';
import { assertClean } from '../worktreeGuards';
import { mergeCommit } from './remoteMerge';
import { RemoteBranchMissingError, UnpublishedWorkError } from './remoteErrors';
import { context, fetchBranches, withRemoteLocks, zeroOid, type Remote } from './remoteRefs';

/** What to do about uncommitted changes in a worktree that is to receive a task branch. */
const RECEIVE_FIX = 'Commit them (the engine does when the stage ends) or set them aside, then receive again.';

export interface ReceiveOptions {
  /**
   * When the local task branch holds commits the remote's does not: 'refuse' (default) throws
   * UnpublishedWorkError and changes nothing; 'set-aside' keeps the local tip under
   * `refs/pipeline/set-aside/<task>/unpublished-<commit>` and puts the worktree on the remote tip.
   */
  readonly onUnpublished?: 'refuse' | 'set-aside';
  /**
   * Also bring the task branch up to date with the remote target, as `prepare` does on one machine:
   * when the branch lacks the target's tip, a merge commit made without touching any file (merge-tree)
   * is added on top of the remote tip, to be published with the stage's work; a conflict leaves the
   * branch at the remote tip and reports the files. Default false: the worktree is exactly at the
   * remote tip.
   */
  readonly mergeTarget?: boolean;
}

export interface Received {
  readonly agentId: string;
  readonly worktree: string;
  readonly branch: string;
  /** Where the worktree is now: the remote tip, or the merge of the target on top of it. */
  readonly head: string;
  /** The remote task branch's tip; undefined when the remote had none (the branch starts at the target). */
  readonly remoteTip: string | undefined;
  /** The local branch before this call; undefined when it did not exist. */
  readonly previous: string | undefined;
  /** What happened to the local branch: created, already there, moved forward, or replaced (work set aside). */
  readonly kind: 'created' | 'up-to-date' | 'fast-forward' | 'replaced';
  /** The ref that keeps the unpublished local work (kind 'replaced'). */
  readonly setAside: string | undefined;
  /** With `mergeTarget`: how the branch was brought up to date with the target. */
  readonly update: 'up-to-date' | 'merged' | 'conflict';
  /** Files that conflict between the branch and the target (update 'conflict'). */
  readonly conflicts: readonly string[];
}

const ACTION = 'receive';

/**
 * Before a stage on this machine: fetches the task branch (and the target) from the remote, and puts
 * the agent's worktree on the task branch at exactly the remote tip, creating the local branch when
 * missing; when the remote has no task branch yet (the first stage), the branch starts at the remote
 * target's tip. Another agent worktree of this clone that still has the branch checked out is
 * detached (same commit, same files) first; the user's own checkout holding it is an error.
 *
 * Refused, changing nothing: the agent's worktree (or one holding the branch) has uncommitted changes
 * or an unfinished merge (DirtyWorktreeError; the engine commits or sets aside an agent's leftovers
 * when its stage ends), or the local branch has commits the remote does not (UnpublishedWorkError,
 * unless `onUnpublished: 'set-aside'`).
 */
export async function receiveTask(
  remote: Remote,
  worktrees: Worktrees,
  agentId: string,
  taskId: string,
  target: string,
  options: ReceiveOptions = {},
): Promise<Received> {
  const { repo } = remote;
  const branch = taskBranch(taskId);
  const path = worktrees.pathOf(agentId);
  // Adding the worktree may need the whole repository, which cannot be asked for under the locks below.
  await worktrees.ensureWorktree(agentId);
  const placed = await withRemoteLocks(remote, { heads: [branch], tracking: [branch, target] }, async () => {
    const tips = await fetchBranches(remote, [branch, target], ACTION);
    const remoteTip = tips.get(branch);
    const targetTip = tips.get(target);
    const expected = remoteTip ?? targetTip;
    if (!expected) throw new RemoteBranchMissingError(context(remote, target, ACTION));
    const previous = await repo.branchHead(branch);

    let kind: Received['kind'];
    let setAside: string | undefined;
    if (previous === undefined) kind = 'created';
    else if (previous === expected) kind = 'up-to-date';
    else if (await isAncestor(repo, previous, expected)) kind = 'fast-forward';
    else {
      const commits = Number((await repo.read(['rev-list', '--count', `${expected}..${previous}`])).trim());
      if ((options.onUnpublished ?? 'refuse') === 'refuse') {
        const diverged = !(await isAncestor(repo, expected, previous));
        throw new UnpublishedWorkError(context(remote, branch, ACTION), previous, expected, commits, path, diverged);
      }
      kind = 'replaced';
      setAside = await keepAside(repo, taskId, previous);
    }
    await putOnBranch(repo, worktrees, agentId, path, branch, expected, previous);
    return { remoteTip, targetTip, previous, kind, setAside, head: expected };
  });

  let head = placed.head;
  let update: Received['update'] = 'up-to-date';
  let conflicts: readonly string[] = [];
  if (options.mergeTarget && placed.targetTip && !(await isAncestor(repo, placed.targetTip, head))) {
    const merged = await mergeCommit(repo, head, placed.targetTip, `Merge ${remote.name}/${target} into ${branch}`);
    if (merged.conflicts) conflicts = merged.conflicts;
    else {
      // The worktree has the branch checked out: advanceBranch moves its files with the ref.
      const outcome = await advanceBranch(repo, branch, merged.sha, head, `pipeline: merge ${target} into ${branch}`);
      if (outcome !== 'advanced') {
        throw new PipelineError('git', `${branch} moved while ${target} was being merged into it in ${path}.`, {
          where: path,
          fix: 'Something else works on this task branch in this clone: stop it, then receive again.',
        });
      }
      head = merged.sha;
    }
    update = merged.conflicts ? 'conflict' : 'merged';
  }
  return {
    agentId,
    worktree: path,
    branch,
    head,
    remoteTip: placed.remoteTip,
    previous: placed.previous,
    kind: placed.kind,
    setAside: placed.setAside,
    update,
    conflicts,
  };
}

/**
 * Keeps `commit` under `refs/pipeline/set-aside/<task>/unpublished-<commit>`, created only if absent
 * (a ref is never overwritten); the same commit kept before keeps its ref.
 */
async function keepAside(repo: GitRepo, taskId: string, commit: string): Promise<string> {
  const base = `refs/pipeline/set-aside/${taskId}/unpublished-${commit.slice(0, 12)}`;
  for (let n = 1; ; n++) {
    const ref = n === 1 ? base : `${base}-${n}`;
    const at = await repo.headOf(ref);
    if (at === commit) return ref;
    if (at !== undefined) continue;
    await repo.mutate(['update-ref', '-m', 'pipeline: unpublished work set aside', ref, commit, zeroOid(commit)]);
    return ref;
  }
}

/**
 * Puts the worktree at `path` on `branch` at `expected` (the branch at `previous`, or missing). The
 * caller holds the branch's lock. Every step leaves a state a repeated call completes: holders are
 * detached (same commit, same files), the ref moves by compare-and-swap, then the worktree switches.
 */
async function putOnBranch(
  repo: GitRepo,
  worktrees: Worktrees,
  agentId: string,
  path: string,
  branch: string,
  expected: string,
  previous: string | undefined,
): Promise<void> {
  const self = await lockPath(path);
  const holders = await holdersOf(repo.root, repo.commonDir, branch);
  await repo.locked({ worktrees: [path, ...holders.map((h) => h.path)] }, async () => {
    const mine = await worktreeAt(path, repo.commonDir);
    if (!mine) {
      throw new PipelineError('git', `The worktree of ${agentId} at ${path} is not registered in ${repo.root}.`, {
        where: path,
        fix: 'Run the pipeline again: it re-creates the worktrees of its agents at start.',
      });
    }
    await assertClean(repo, path, `receive ${branch} in the worktree of ${agentId}`, RECEIVE_FIX, mine.gitDir);
    if (mine.branch === branch && previous === expected) return;
    for (const h of holders) {
      // Read again under its lock: it may have switched to its own next task meanwhile.
      if ((await lockPath(h.path)) === self || (await branchOfGitDir(h.gitDir)) !== branch) continue;
      const owner = h.main ? undefined : await worktrees.agentOf(h.path);
      if (!owner) {
        throw new PipelineError('git', `${branch} is checked out in ${h.path}, which is not an agent worktree.`, {
          where: h.path,
          fix: `Check out another branch there (git -C "${h.path}" switch <branch>), then try again.`,
        });
      }
      await assertClean(repo, h.path, `hand ${branch} over from ${owner}`, RECEIVE_FIX, h.gitDir);
      await repo.mutate(['switch', '--quiet', '--detach'], { cwd: h.path });
    }
    if (mine.branch === branch) await repo.mutate(['switch', '--quiet', '--detach'], { cwd: path });
    if (previous !== expected) {
      await repo.mutate([
        'update-ref',
        '-m',
        `pipeline: receive ${branch}`,
        `refs/heads/${branch}`,
        expected,
        previous ?? zeroOid(expected),
      ]);
    }
    await repo.mutate(['switch', '--quiet', branch], { cwd: path });
  });
}
