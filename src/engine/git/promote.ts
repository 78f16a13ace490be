import { requireBranch } from './branches';
import { MergeConflictError } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { dryRunMerge, mergeTask, type MergeOptions } from './merge';
import { assertBranchName } from './refNames';

/**
 * Pilot promotion (`pipeline pilot promote`): in pilot mode the supervisor's merges land on the
 * pilot branch; a person promotes that branch into the target branch when satisfied. It is merged
 * exactly as a task is (merge.ts): a dry run with `git merge-tree` first, then a merge commit made
 * without touching any worktree, and the target moved by compare-and-swap. A conflict changes
 * nothing and names the files.
 *
 * The promotion is always one merge commit ("Promote pipeline/pilot into main: …"), never a
 * fast-forward, so the pilot's work arrives on the target as one step that can be reviewed or
 * reverted as one.
 */

export interface PromotionPlan {
  readonly source: string;
  readonly into: string;
  /** The commits on `source` that `into` lacks (0: nothing to promote). */
  readonly commits: number;
  /**
   * Tasks whose merges are among those commits, in merge order: named by a merge message, or by the
   * commit the pipeline recorded as the task's merge (a fast-forward merge leaves no message).
   */
  readonly tasks: readonly string[];
  /** Files that would conflict (empty when the merge is clean). */
  readonly conflicts: readonly string[];
}

export interface PromotionResult extends PromotionPlan {
  /** The target's new tip (the promotion's merge commit), or its unchanged tip when there was nothing to promote. */
  readonly sha: string;
  readonly promoted: boolean;
}

/** A task as the pipeline recorded its merge: the commit its branch was merged as. */
export interface MergedTask {
  readonly id: string;
  readonly commit: string;
}

/**
 * What promoting `source` into `into` would do, touching nothing. `merged` (the pipeline's record of
 * merged tasks) names the tasks whose merges were fast-forwards.
 */
export async function planPromotion(
  repo: GitRepo,
  source: string,
  into: string,
  merged: readonly MergedTask[] = [],
): Promise<PromotionPlan> {
  assertBranchName(source, 'pilot branch');
  assertBranchName(into, 'target branch');
  const theirs = await requireBranch(repo, source, 'pilot branch');
  const ours = await requireBranch(repo, into, 'target branch');
  const commits = (await repo.read(['log', '--format=%H %s', '--reverse', `${ours}..${theirs}`]))
    .split('\n')
    .filter((l) => l !== '');
  const byCommit = new Map<string, string[]>();
  for (const t of merged) byCommit.set(t.commit, [...(byCommit.get(t.commit) ?? []), t.id]);
  const tasks: string[] = [];
  const name = (id: string) => {
    if (!tasks.includes(id)) tasks.push(id);
  };
  for (const line of commits) {
    const sp = line.indexOf(' ');
    const sha = sp < 0 ? line : line.slice(0, sp);
    const subject = sp < 0 ? '' : line.slice(sp + 1);
    // The monitor's merge messages: "Merge pipeline/TASK-001: TASK-001 <title>".
    const m = /^Merge pipeline\/([A-Z][A-Z0-9]{0,15}-[0-9.]+): /.exec(subject);
    if (m?.[1]) name(m[1]);
    for (const id of byCommit.get(sha) ?? []) name(id);
  }
  if (commits.length === 0) return { source, into, commits: 0, tasks, conflicts: [] };
  const dry = await dryRunMerge(repo, source, into);
  return { source, into, commits: commits.length, tasks, conflicts: dry.conflicts };
}

/**
 * Promotes `source` into `into`: the plan (a dry run), then the merge as mergeTask does it. Throws
 * MergeConflictError, changing nothing, when the branches conflict. `options` reach mergeTask's
 * compare-and-swap: how many times to redo the merge when `into` moves meanwhile, and a hook called
 * just before `into` moves (tests move it there).
 */
export async function promoteBranch(
  repo: GitRepo,
  source: string,
  into: string,
  merged: readonly MergedTask[] = [],
  options: Pick<MergeOptions, 'maxAttempts' | 'beforeAdvance'> = {},
): Promise<PromotionResult> {
  const conflictFix = `Bring ${source} up to date with ${into} first: merge ${into} into ${source} in a worktree (git switch ${source} && git merge ${into}), resolve the files and commit, then promote again.`;
  return repo.exclusive(async () => {
    const plan = await planPromotion(repo, source, into, merged);
    if (plan.commits === 0) return { ...plan, sha: await requireBranch(repo, into, 'target branch'), promoted: false };
    if (plan.conflicts.length > 0) throw new MergeConflictError(source, into, plan.conflicts, conflictFix);
    const named =
      plan.tasks.slice(0, 20).join(', ') + (plan.tasks.length > 20 ? `, and ${plan.tasks.length - 20} more` : '');
    const what = plan.tasks.length ? named : `${plan.commits} commit(s)`;
    const r = await mergeTask(repo, source, into, `Promote ${source} into ${into}: ${what}`, {
      ...options,
      fastForward: false,
      conflictFix,
    });
    return { ...plan, sha: r.sha, promoted: r.kind !== 'up-to-date' };
  });
}
