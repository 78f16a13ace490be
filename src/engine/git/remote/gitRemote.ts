// src/engine/git/remote/ — git across machines: each worker has its own clone of one shared remote
// ("origin"); task branches travel through it and the merge into the target is a push that lands only
// if the target has not moved. Main file: this one (GitRemote, the three operations bound to a clone).
// remoteRefs.ts fetches and pushes, publish.ts / receive.ts / remoteMerge.ts are the operations,
// remoteErrors.ts says which failures are transient. It builds on ../ (GitRepo, Worktrees, branches)
// and changes none of it.
//
// How a worker uses it (for whoever wires `pipeline worker`):
//
//   const repo = await GitRepo.open(clone);                  // the worker's own clone
//   const worktrees = new Worktrees(repo, config.worktreeRoot);
//   const remote = await GitRemote.open(repo, worktrees);    // remote "origin" unless told otherwise
//
// - Receive before launch. Once the worker holds the claim (lease + epoch) and before it writes the
//   task file and starts the agent: `await remote.receive(agentId, taskId, target, { onUnpublished:
//   'set-aside', mergeTarget: true })`. It fetches the task branch and puts the agent's worktree on
//   exactly the remote tip (the first stage: on the remote target's tip); commits this clone made and
//   never published (an attempt that died here before publishing, and was redone elsewhere) are kept
//   under refs/pipeline/set-aside/<task>/unpublished-<commit> and reported in `setAside`. With
//   `mergeTarget` the target's new commits are merged in as `prepare` does on one machine (a conflict
//   comes back in `conflicts`, for the task file). On a worker it replaces WorkspacePort.prepare,
//   which would merge the clone's own (stale) target branch; commitAll and setAside stay as they are.
//   A refusal (DirtyWorktreeError, UnpublishedWorkError without set-aside) means: do not launch.
// - Publish after the stage's marker. After commitAll (what the agent left uncommitted) and before the
//   completion is written to the state store: `await remote.publish(taskId)`. The store's completion is
//   the commit point, so a stage whose push failed is not complete: a transient error
//   (`isTransientRemoteError`: code git-unreachable or git-lock) is retried with the monitor's lock
//   back-off while the claim is renewed; a PushRejectedError means another worker published to the
//   branch (this claim was lost) and the attempt ends without a completion; its work stays on the
//   local branch and the next receive here sets it aside.
// - Merge by the coordinator. The one coordinator (lease row) merges an approved task with
//   `await remote.merge(taskId, target, message)`, on whatever machine it runs: fetch, dry run, push
//   with lease, retried with back-off when another push landed first. MergeConflictError is today's
//   conflict (the task goes back to rework, with the files); the new target tip is in `sha`. No local
//   branch or checkout changes; `deleteRemoteBranch` removes the merged task branch from the remote.
// - Every failure names the remote (its URL without credentials), the branch and the fix;
//   RemoteUnreachableError (transient) vs RemoteAuthError / RemoteMissingError / PushRejectedError /
//   UnpublishedWorkError (permanent) are in remoteErrors.ts.
import { taskBranch } from '../../model/ids';
import type { GitRepo } from '../gitRepo';
import type { Worktrees } from '../worktrees';
import { publishBranch, type Published } from './publish';
import { receiveTask, type ReceiveOptions, type Received } from './receive';
import { deleteRemoteBranch, mergeIntoRemote, type RemoteMergeOptions, type RemoteMergeResult } from './remoteMerge';
import { openRemote, type Remote } from './remoteRefs';

export { isTransientRemoteError } from './remoteErrors';
export type { Published, Received, ReceiveOptions, RemoteMergeOptions, RemoteMergeResult };

export interface GitRemoteOptions {
  /** The remote's name in the clone. Default `origin`. */
  readonly remote?: string;
  /** Defaults for every merge (attempts, back-off). */
  readonly merge?: Pick<RemoteMergeOptions, 'maxAttempts' | 'backoffMs'>;
}

/** The git operations of one worker's clone against the shared remote. */
export class GitRemote {
  private constructor(
    readonly remote: Remote,
    readonly worktrees: Worktrees,
    private readonly options: GitRemoteOptions,
  ) {}

  /** Binds a clone (its repository and agent worktrees) to its remote; a clear error when it has none. */
  static async open(repo: GitRepo, worktrees: Worktrees, options: GitRemoteOptions = {}): Promise<GitRemote> {
    return new GitRemote(await openRemote(repo, options.remote), worktrees, options);
  }

  /** Pushes the task's branch after a stage: a fast-forward or nothing (see publish.ts). */
  publish(taskId: string): Promise<Published> {
    return publishBranch(this.remote, taskBranch(taskId));
  }

  /** Puts the agent's worktree on the remote tip of the task's branch before a stage (see receive.ts). */
  receive(agentId: string, taskId: string, target: string, options?: ReceiveOptions): Promise<Received> {
    return receiveTask(this.remote, this.worktrees, agentId, taskId, target, options);
  }

  /** Merges the task's published branch into the remote target (see remoteMerge.ts). */
  merge(taskId: string, into: string, message: string, options: RemoteMergeOptions = {}): Promise<RemoteMergeResult> {
    return mergeIntoRemote(this.remote, taskBranch(taskId), into, message, { ...this.options.merge, ...options });
  }

  /**
   * Deletes the task's branch on the remote after its merge, only while it is still at `merged` (the
   * commit the merge took) and only when `into` on the remote contains it: a branch that gained
   * commits meanwhile is kept.
   */
  deleteMergedBranch(taskId: string, into: string, merged: string): Promise<'deleted' | 'kept'> {
    return deleteRemoteBranch(this.remote, taskBranch(taskId), into, merged);
  }
}
