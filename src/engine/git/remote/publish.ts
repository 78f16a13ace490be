import { isAncestor, requireBranch } from '../branches';
import { PushRejectedError, short } from './remoteErrors';
import { context, fetchBranches, pushBranch, withRemoteLocks, type Remote } from './remoteRefs';

export interface Published {
  readonly branch: string;
  /** The commit the remote branch is at now: the local branch's tip. */
  readonly sha: string;
  /** What the push did on the remote. */
  readonly kind: 'created' | 'fast-forward' | 'up-to-date';
}

const ACTION = 'publish';

/**
 * Publishes the local `branch` (a task branch after a stage) to the remote: a plain push, which the
 * remote accepts only as a fast-forward (or a new branch). When the remote branch holds commits the
 * local one does not (another machine published to it: the task was handed elsewhere, or this clone
 * missed a stage), the push is refused and PushRejectedError names both commits; nothing is forced
 * and the local branch keeps its work. Transient and authentication failures are thrown as
 * remoteErrors.ts classifies them.
 */
export async function publishBranch(remote: Remote, branch: string): Promise<Published> {
  return withRemoteLocks(remote, { heads: [branch], tracking: [branch] }, async () => {
    const sha = await requireBranch(remote.repo, branch, 'branch to publish');
    const pushed = await pushBranch(remote, sha, branch, ACTION);
    if (pushed.kind === 'pushed') {
      return {
        branch,
        sha,
        kind: pushed.status === 'created' ? 'created' : pushed.status === 'up-to-date' ? 'up-to-date' : 'fast-forward',
      };
    }
    const ctx = context(remote, branch, ACTION);
    if (pushed.kind === 'declined') {
      throw new PushRejectedError(
        ctx,
        sha,
        undefined,
        pushed.reason,
        `The remote ${remote.name} declined it (a hook or branch protection): read its message with git -C "${remote.repo.root}" push ${remote.name} ${branch}, and allow pushes to ${branch} there.`,
      );
    }
    // Learn where the remote branch is, to say what it holds that we do not.
    const remoteSha = (await fetchBranches(remote, [branch], ACTION)).get(branch);
    const behind = remoteSha !== undefined && (await isAncestor(remote.repo, sha, remoteSha));
    throw new PushRejectedError(
      ctx,
      sha,
      remoteSha,
      pushed.reason,
      behind
        ? `This clone's ${branch} is behind ${remote.name}: receive the branch before the stage (it puts the worktree on ${short(remoteSha)}), then publish again.`
        : `Another machine published to ${branch} meanwhile (was the task handed to another worker?). This clone's work stays on its local ${branch}; compare with git -C "${remote.repo.root}" log ${remote.name}/${branch}...${branch}, and receive with onUnpublished: 'set-aside' to keep it aside and take the remote's.`,
    );
  });
}
