import { PipelineError } from '../../errors';
import { isAncestor } from '../branches';
import { MergeConflictError } from '../gitErrors';
import type { GitRepo } from '../gitRepo';
import { withMessageFile } from '../messageFile';
import { assertBranchName } from '../refNames';
import { PushRejectedError, RemoteBranchMissingError } from './remoteErrors';
import { context, fetchBranches, pushBranch, withRemoteLocks, type Remote } from './remoteRefs';

/**
 * The merge of a task branch into the target across machines, done as merge.ts does it on one
 * machine but against the remote: fetch both, dry-run merge (`git merge-tree --write-tree`, no
 * worktree touched), the merge commit made with `commit-tree` (or a fast-forward), then a push of the
 * target with `--force-with-lease=refs/heads/<target>:<the tip merged into>`: it lands only if the
 * remote target is still that commit. When another machine pushed meanwhile, everything is fetched
 * and recomputed from the new tip, after a back-off, a bounded number of times. Nothing in this
 * clone but objects and remote-tracking refs changes: no local branch, no checkout (the user's
 * working tree stays as it is).
 */

export interface RemoteMergeOptions {
  /** Fast-forward the target when it is an ancestor of the task branch (default), instead of a merge commit. */
  readonly fastForward?: boolean;
  /** Attempts when the remote target moves between the fetch and the push. Default 5. */
  readonly maxAttempts?: number;
  /** The first back-off, doubled at each attempt, with jitter. Default 50 ms. */
  readonly backoffMs?: number;
  /** Called after the new commit is computed and before the push, with the attempt number (tests, tracing). */
  readonly beforePush?: (attempt: number) => Promise<void>;
  /** The fix sentence of the MergeConflictError, when the caller knows better than the default. */
  readonly conflictFix?: string;
}

export interface RemoteMergeResult {
  /** The remote target's new tip: the merge commit, the fast-forwarded commit, or the unchanged tip. */
  readonly sha: string;
  readonly kind: 'up-to-date' | 'fast-forward' | 'merge';
  /** How many times the merge was computed (more than 1 when the remote target moved meanwhile). */
  readonly attempts: number;
  /** The task branch's remote tip that was merged. */
  readonly merged: string;
}

/**
 * The merge of `theirs` into `ours` as a commit (parents ours, theirs) made without touching any
 * worktree, or the conflicting files. The commit is only in the object database until a ref points
 * at it.
 */
export async function mergeCommit(
  repo: GitRepo,
  ours: string,
  theirs: string,
  message: string,
): Promise<{ readonly sha: string; readonly conflicts?: undefined } | { readonly conflicts: readonly string[] }> {
  const r = await repo.readResult(['merge-tree', '--write-tree', '--name-only', '--no-messages', '-z', ours, theirs], {
    okExitCodes: [0, 1],
  });
  const [tree, ...rest] = r.stdout.split('\0');
  if (r.exitCode !== 0 || !tree) return { conflicts: [...new Set(rest.filter((f) => f !== ''))] };
  const sha = await withMessageFile(message, async (file) =>
    (await repo.mutate(['commit-tree', tree, '-p', ours, '-p', theirs, '-F', file])).trim(),
  );
  return { sha };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Merges the remote `branch` into the remote `into` (see the file comment). A conflict throws
 * MergeConflictError with the files, as merge.ts does, and pushes nothing. The remote target moving
 * at every one of `maxAttempts` attempts throws (code `git`); an unreachable remote throws
 * RemoteUnreachableError (transient) and a declined push PushRejectedError.
 */
export async function mergeIntoRemote(
  remote: Remote,
  branch: string,
  into: string,
  message: string,
  options: RemoteMergeOptions = {},
): Promise<RemoteMergeResult> {
  assertBranchName(branch, 'branch to merge');
  assertBranchName(into, 'target branch');
  const { repo } = remote;
  const maxAttempts = options.maxAttempts ?? 5;
  const backoffMs = options.backoffMs ?? 50;
  // Messages read "Cannot merge pipeline/TASK-1 into main: …".
  const action = `merge ${branch} into`;
  return withRemoteLocks(remote, { tracking: [branch, into] }, async () => {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const tips = await fetchBranches(remote, [branch, into], action, into);
      const theirs = tips.get(branch);
      const ours = tips.get(into);
      if (!theirs) throw new RemoteBranchMissingError(context(remote, branch, 'merge'));
      if (!ours) throw new RemoteBranchMissingError(context(remote, into, action));
      // One merge-base answers both questions: it is `theirs` when there is nothing to merge, `ours`
      // when the target can fast-forward.
      const mb = await repo.readResult(['merge-base', ours, theirs], { okExitCodes: [0, 1] });
      const base = mb.exitCode === 0 ? mb.stdout.trim() : undefined;
      if (base === theirs) return { sha: ours, kind: 'up-to-date', attempts: attempt, merged: theirs };

      let next: string;
      let kind: RemoteMergeResult['kind'];
      if ((options.fastForward ?? true) && base === ours) {
        next = theirs;
        kind = 'fast-forward';
      } else {
        const made = await mergeCommit(repo, ours, theirs, message);
        if (made.conflicts) {
          throw new MergeConflictError(
            branch,
            into,
            made.conflicts,
            options.conflictFix ??
              `Bring ${branch} up to date with ${remote.name}/${into} and resolve the conflicts there (the pipeline sends the task back to rework), then merge again.`,
          );
        }
        next = made.sha;
        kind = 'merge';
      }

      await options.beforePush?.(attempt);
      const pushed = await pushBranch(remote, next, into, action, ours);
      if (pushed.kind === 'pushed') return { sha: next, kind, attempts: attempt, merged: theirs };
      if (pushed.kind === 'declined') {
        throw new PushRejectedError(
          context(remote, into, action),
          next,
          undefined,
          pushed.reason,
          `The remote ${remote.name} declined the merge of ${branch} (a hook or branch protection): allow the pipeline to push to ${into} there, or merge by hand.`,
        );
      }
      // Another machine pushed to the target first: wait a little (longer each time, with jitter so
      // two machines that collided do not collide again), then recompute from its new tip.
      if (attempt < maxAttempts) await sleep(backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
    }
    throw new PipelineError(
      'git',
      `Could not merge ${branch} into ${into} on ${remote.name} (${remote.url}): ${into} moved on the remote during each of ${maxAttempts} attempts.`,
      {
        where: `${remote.name} ${into}`,
        fix: `Other machines keep pushing to ${into}; the coordinator tries the merge again later, or pause them and merge again.`,
      },
    );
  });
}

/**
 * Deletes the remote `branch` after its merge: only while it is still at `merged` (a lease) and only
 * when the remote `into` contains that commit, so a branch that gained commits meanwhile, or whose
 * merge did not land, is kept. 'kept' says it was not deleted; a branch already gone counts as deleted.
 */
export async function deleteRemoteBranch(
  remote: Remote,
  branch: string,
  into: string,
  merged: string,
): Promise<'deleted' | 'kept'> {
  const action = 'delete';
  return withRemoteLocks(remote, { tracking: [branch, into] }, async () => {
    const tips = await fetchBranches(remote, [branch, into], action);
    const tip = tips.get(branch);
    const target = tips.get(into);
    if (tip === undefined) return 'deleted';
    if (tip !== merged || target === undefined || !(await isAncestor(remote.repo, merged, target))) return 'kept';
    const pushed = await pushBranch(remote, null, branch, action, merged);
    return pushed.kind === 'pushed' ? 'deleted' : 'kept';
  });
}
