/** The git layer of the engine: plain Node, no `vscode`. See each file for the why. */
export {
  advanceBranch,
  ensureBranch,
  isAncestor,
  PILOT_BRANCH,
  requireBranch,
  type AdvanceOutcome,
  type EnsuredBranch,
} from './branches';
export {
  diffAgainstTarget,
  taskChanges,
  type FileChange,
  type FileChangeStatus,
  type TaskChanges,
  type TaskCommit,
} from './changes';
export { DirtyWorktreeError, GitCommandError, GitLockError, isGitLockError, MergeConflictError } from './gitErrors';
export { observeGit, type GitEvent } from './gitMetrics';
export { GitRepo, isRepo, type GitRepoOptions, type LockScope, type RunOptions, type RunResult } from './gitRepo';
export { initRepo, type InitRepoOptions } from './initRepo';
export {
  conflictsBetween,
  dryRunMerge,
  mergeTask,
  type DryRunResult,
  type MergeKind,
  type MergeOptions,
  type MergeResult,
} from './merge';
export { assertBranchName, isBranchName } from './refNames';
export {
  repairRepository,
  type LockFinding,
  type RepairOptions,
  type RepairReport,
  type UnfinishedFinding,
} from './repair';
export { findLockFiles, removeStaleLocks, type StaleLockOptions } from './staleLocks';
export { listWorktrees, type WorktreeEntry } from './worktreeList';
export {
  TASK_DIR,
  Worktrees,
  type AgentWorktree,
  type BranchUpdate,
  type CheckoutOptions,
  type TaskCheckout,
} from './worktrees';
export type { UnfinishedOperation } from './worktreeState';
export { describeRepair, GitWorkspace } from './gitWorkspace';
