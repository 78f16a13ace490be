import { isAncestor, requireBranch } from './branches';
import type { GitRepo } from './gitRepo';
import { runPlanned } from './lockPlan';
import { assertBranchName, branchRef } from './refNames';
import { canonicalPath } from './worktreeList';
import { holdersOf } from './worktreeRegistry';

/**
 * Deleting a task's branch once it is merged (configuration `deleteMergedBranches`, on by default),
 * so that `git branch` lists the work still under way rather than every task ever merged.
 *
 * A branch is deleted only when every one of its commits is in the branch it was merged into, and
 * by compare-and-swap on the tip that was checked: a branch someone committed to meanwhile is kept.
 * An agent's worktree that still has it checked out (the reviewer's, after the last stage) is
 * detached first, at the same commit, with its files as they are; a branch checked out anywhere
 * else (the user's own checkout) is kept.
 *
 * It locks the branch and the worktrees that have it checked out, not the repository: it runs after
 * every merge, and other agents' hand-offs (other branches, other worktrees) go on meanwhile. The
 * target branch is only read: it moves forward only, so a branch contained in it stays contained.
 */

export type BranchDeletion =
  | { readonly deleted: true; readonly branch: string; readonly sha: string; readonly detached: readonly string[] }
  | {
      readonly deleted: false;
      readonly branch: string;
      readonly reason: 'missing' | 'unmerged' | 'checked-out' | 'moved';
      readonly detail: string;
    };

/**
 * Deletes `branch` when it is fully merged into `into`. `agentWorktree(path)` says whether a
 * worktree at `path` is an agent's (which may be detached), as Worktrees.agentOf does.
 */
export async function deleteMergedBranch(
  repo: GitRepo,
  branch: string,
  into: string,
  agentWorktree: (path: string) => Promise<boolean>,
): Promise<BranchDeletion> {
  assertBranchName(branch, 'task branch');
  assertBranchName(into, 'target branch');
  // The worktrees that hold the branch, read from the registry on disk (no git process), planned
  // again under the locks (lockPlan.ts): a worktree that took the branch meanwhile is locked too.
  const plan = async () => {
    const holders = await holdersOf(repo.root, repo.commonDir, branch);
    return { scope: { branches: [branch], worktrees: holders.map((h) => h.path) }, data: holders };
  };
  return runPlanned(repo, plan, async (holders) => {
    // Usually one command: the branch is listed, with its tip, only when `into` contains it.
    let tip = await mergedTip(repo, branch, into);
    if (!tip) {
      tip = await repo.branchHead(branch);
      if (!tip) return { deleted: false, branch, reason: 'missing', detail: `${branch} does not exist` };
    }
    if (!(await isAncestor(repo, tip, await requireBranch(repo, into, 'target branch')))) {
      return {
        deleted: false,
        branch,
        reason: 'unmerged',
        detail: `${branch} has commits that ${into} lacks (its tip ${tip.slice(0, 12)} is not in ${into}); it was kept`,
      };
    }
    const detached: string[] = [];
    for (const w of holders) {
      if (w.main || !(await agentWorktree(w.path))) {
        return {
          deleted: false,
          branch,
          reason: 'checked-out',
          detail: `${branch} is checked out in ${w.path}; it was kept (delete it by hand once that checkout has moved on: git branch -d ${branch})`,
        };
      }
      // Same commit, same files, local changes kept: only the branch is let go.
      await repo.mutate(['switch', '--quiet', '--detach'], { cwd: w.path });
      detached.push(await canonicalPath(w.path));
    }
    try {
      await repo.mutate([
        'update-ref',
        '-m',
        `pipeline: delete ${branch}, merged into ${into}`,
        '-d',
        `refs/heads/${branch}`,
        tip,
      ]);
    } catch (e) {
      // Another process moved it between the check and the deletion: its new commits are kept.
      if ((await repo.branchHead(branch)) === tip) throw e;
      return {
        deleted: false,
        branch,
        reason: 'moved',
        detail: `${branch} moved while it was being deleted; it was kept`,
      };
    }
    return { deleted: true, branch, sha: tip, detached };
  });
}

/**
 * The tip of `branch` when `into` contains it, in one git command (`for-each-ref --merged`);
 * undefined when it does not, when either is missing, or when it cannot tell.
 */
async function mergedTip(repo: GitRepo, branch: string, into: string): Promise<string | undefined> {
  const ref = branchRef(branch, 'task branch');
  // Exit 129: `into` does not exist ("malformed object name").
  const r = await repo.readResult(
    [
      'for-each-ref',
      '--format=%(objectname) %(objecttype) %(refname)',
      `--merged=${branchRef(into, 'target branch')}`,
      ref,
    ],
    { okExitCodes: [0, 129] },
  );
  if (r.exitCode !== 0) return undefined;
  for (const line of r.stdout.split('\n')) {
    const [sha, type, name] = line.split(' ');
    // The pattern also matches refs below it (refs/heads/x/y): only the exact name counts.
    if (sha && type === 'commit' && name === ref) return sha;
  }
  return undefined;
}
