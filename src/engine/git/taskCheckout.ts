import { PipelineError } from '../errors';
import { taskBranch } from '../model/ids';
import { branchTips, createBranchAt, looseBranchTips, refsIfContains, requireBranch } from './branches';
import { MergeConflictError } from './gitErrors';
import { runPlanned } from './lockPlan';
import { mergeTask } from './merge';
import { assertBranchName } from './refNames';
import { excludeTaskDir } from './taskDirExclude';
import { listWorktrees } from './worktreeList';
import { branchOfGitDir, holdersOf, lockPath, worktreeAt, type RegisteredWorktree } from './worktreeRegistry';
import { unfinishedOperation } from './worktreeState';
import { assertClean, commitOrStash, detachClean, switchWorktree } from './worktreeGuards';
import type { AgentWorktree, Worktrees } from './worktrees';

/**
 * Giving an agent a task: its worktree put on the task's branch, brought up to date with the
 * target, the branch taken over from the previous stage's agent. The agent worktrees themselves are
 * in worktrees.ts, whose `checkoutTask` runs this.
 */

/** How the task branch was brought up to date; 'conflict' only with `onConflict: 'checkout'`. */
export type BranchUpdate = 'up-to-date' | 'fast-forward' | 'merged' | 'conflict';

export interface CheckoutOptions {
  /**
   * When the target does not merge cleanly into the task branch: 'throw' (default) throws
   * MergeConflictError and changes nothing; 'checkout' switches the worktree to the task branch as
   * it is (not merged, no conflict markers) and returns the files, so an agent can do the merge.
   */
  readonly onConflict?: 'throw' | 'checkout';
  /**
   * Called once the task branch is where this checkout leaves it (created, brought up to date, or
   * left as it is on a conflict), while the worktree is being switched to it: a caller may start
   * reading the branch then (what earlier stages left) instead of after the switch.
   */
  readonly onBranchReady?: (head: string) => void;
}

export interface TaskCheckout extends AgentWorktree {
  readonly branch: string;
  /** The task branch was created from the target by this call. */
  readonly createdBranch: boolean;
  /** How the task branch was brought up to date with the target. */
  readonly update: BranchUpdate;
  /** Agent worktrees that had the task branch checked out and were detached to hand it over. */
  readonly releasedFrom: readonly string[];
  /** Files that conflict between the task branch and the target (update 'conflict'). */
  readonly conflicts: readonly string[];
}

/**
 * Puts the agent's worktree on the task's branch (`pipeline/<taskId>`, created from the target
 * branch when missing), brought up to date with the target. Refuses when the worktree has
 * uncommitted changes or an unfinished merge. When the target cannot be merged cleanly into the
 * task branch, throws MergeConflictError with the files (the merge is computed with merge-tree
 * first: no half-merged tree is ever left behind, and neither the branch nor this worktree moves;
 * only a previous agent's clean worktree may have been detached from the branch), or with
 * `onConflict: 'checkout'` puts the worktree on the unmerged branch and returns the files.
 */
export async function checkoutTask(
  wt: Worktrees,
  agentId: string,
  taskId: string,
  targetBranch: string,
  options: CheckoutOptions = {},
): Promise<TaskCheckout> {
  const branch = taskBranch(taskId);
  assertBranchName(targetBranch, 'target branch');
  const path = wt.pathOf(agentId);
  const self = await lockPath(path);
  // The task branch is locked throughout, so no other operation of ours checks it out, creates it
  // or moves it meanwhile. Worktrees are locked only while they change (this one, then each that
  // holds the branch), so the previous agent's worktree is held for two commands, not the whole
  // checkout: that agent may be starting its own next task.
  const planCheckout = async () => {
    const mine = await worktreeAt(path, wt.repo.commonDir);
    // Adding or re-creating the agent's worktree changes the registry.
    return { scope: { exclusive: !mine, branches: [branch] }, data: undefined };
  };
  return runPlanned(wt.repo, planCheckout, async () => {
    // Both tips from their loose ref files when git keeps them so (as it does for refs it has just
    // written): no process. The update below then says with one merge-base whether the branch
    // already contains the target. Else, usually one command: both tips, and whether the branch
    // contains the target (no update due); one more for both tips when it does not (the target has
    // moved on since the branch last took it in, the usual case while other tasks merge).
    const loose = await looseBranchTips(wt.repo, [branch, targetBranch]);
    const fast = loose ? undefined : await refsIfContains(wt.repo, branch, targetBranch);
    const tips = loose ?? (fast ? undefined : await branchTips(wt.repo, [branch, targetBranch]));
    const targetHead =
      fast?.target ?? tips?.get(targetBranch) ?? (await requireBranch(wt.repo, targetBranch, 'target branch'));
    let mine = await worktreeAt(path, wt.repo.commonDir);
    let created = false;
    if (!mine) {
      // Under the repository's exclusive lock (the plan asked for it).
      created = (await wt.ensureWorktreeIn(await listWorktrees(wt.repo), agentId, targetHead)).worktree.created;
      mine = await wt.registered(path);
    } else {
      await excludeTaskDir(wt.repo, path);
    }
    if (!mine) {
      throw new PipelineError('git', `The worktree of ${agentId} at ${path} is not registered in ${wt.repo.root}.`, {
        where: path,
        fix: 'Run the pipeline again: it re-creates the worktrees of its agents at start.',
      });
    }
    const gitDir = mine.gitDir;
    const what = `switch the worktree of ${agentId} to ${branch}`;
    // The branch is locked: its tip is still the one read above.
    let head = fast ? fast.branch : tips?.get(branch);
    // Release first: the update below then moves a branch that no worktree has checked out.
    const holders: RegisteredWorktree[] = [];
    for (const e of await holdersOf(wt.repo.root, wt.repo.commonDir, branch)) {
      if ((await lockPath(e.path)) !== self) holders.push(e);
    }
    // This worktree is checked (refused when dirty, before the branch moves) while the holders are
    // released: different worktrees under their own locks, so the two run side by side. Nothing
    // else of ours changes this worktree until the switch below (no agent runs in it while it is
    // being given a task); a refusal here may leave a holder detached, which changes no file.
    const checks = Promise.allSettled([
      wt.repo.locked({ worktrees: [path] }, () =>
        assertClean(wt.repo, path, what, commitOrStash(agentId, path), gitDir),
      ),
      releaseBranchFrom(wt, branch, holders),
    ]);
    const passed = async (): Promise<string[]> => {
      const [checked, released] = await checks;
      if (checked.status === 'rejected') throw checked.reason;
      if (released.status === 'rejected') throw released.reason;
      return released.value;
    };
    // merge-tree computes the merge before anything moves: a conflict throws with the files and
    // leaves no half-merged tree; a clean merge becomes a commit on the branch (mergeTask). A
    // branch that contains the target (or was just created from it) is up to date as it is. The
    // merge is computed while the checks above run (it only reads and writes objects); the branch
    // moves only once they have passed, and their refusal comes before a conflict.
    let update: BranchUpdate = 'up-to-date';
    let conflicts: readonly string[] = [];
    let createdBranch = false;
    let releasedFrom: string[];
    if (!head) {
      // Created only once the worktree is known to be clean: a refused checkout leaves no branch.
      releasedFrom = await passed();
      const made = await createBranchAt(wt.repo, branch, targetHead, targetBranch);
      head = made.head;
      createdBranch = made.created;
    } else if (!fast) {
      try {
        const merged = await mergeTask(wt.repo, targetBranch, branch, `Merge ${targetBranch} into ${branch}`, {
          tips: { branch: targetHead, into: head },
          conflictFix: `Resolve it on ${branch}: merge ${targetBranch} into it in a worktree, fix the files and commit, then hand the task on again.`,
          beforeAdvance: async () => {
            await passed();
          },
        });
        update = merged.kind === 'merge' ? 'merged' : merged.kind;
        head = merged.sha;
      } catch (e) {
        await passed();
        if (!(e instanceof MergeConflictError) || options.onConflict !== 'checkout') throw e;
        update = 'conflict';
        conflicts = e.files;
      }
      releasedFrom = await passed();
    } else {
      releasedFrom = await passed();
    }
    options.onBranchReady?.(head);
    await wt.repo.locked({ worktrees: [path] }, async () => {
      // Read again under the lock: another checkout may have detached this worktree meanwhile.
      if ((await branchOfGitDir(gitDir)) === branch) return;
      const operation = await unfinishedOperation(gitDir);
      if (operation) await assertClean(wt.repo, path, what, commitOrStash(agentId, path), gitDir);
      await switchWorktree(wt.repo, path, gitDir, ['switch', '--quiet', branch]);
    });
    // HEAD is now the branch's tip, which this call read or made (a conflict moves nothing).
    return { agentId, path, branch, head, created, createdBranch, update, releasedFrom, conflicts };
  });
}

/**
 * A branch can be checked out in one worktree only. When another agent's worktree still holds the
 * task branch (the previous stage's agent), it is detached (same commit, same files) so this
 * agent can take the branch over. A dirty holder, or the user's own worktree, is an error. The
 * caller holds the branch's lock, so no other worktree takes the branch meanwhile.
 */
async function releaseBranchFrom(
  wt: Worktrees,
  branch: string,
  holders: readonly RegisteredWorktree[],
): Promise<string[]> {
  if (holders.length === 0) return [];
  return wt.repo.locked({ worktrees: holders.map((h) => h.path) }, async () => {
    const released: string[] = [];
    for (const e of holders) {
      // Read again under its lock: it may have switched to its own next task meanwhile.
      if ((await branchOfGitDir(e.gitDir)) !== branch) continue;
      const agent = e.main ? undefined : await wt.agentOf(e.path);
      if (!agent) {
        throw new PipelineError('git', `${branch} is checked out in ${e.path}, which is not an agent worktree.`, {
          where: e.path,
          fix: `Check out another branch there (git -C "${e.path}" switch <branch>), then try again.`,
        });
      }
      await assertClean(wt.repo, e.path, `hand ${branch} over from ${agent}`, commitOrStash(agent, e.path), e.gitDir);
      await detachClean(wt.repo, e.path, e.gitDir, branch);
      released.push(agent);
    }
    return released;
  });
}
