// src/engine/ports/ — what the monitor needs from the world, as narrow interfaces: WorkspacePort (git),
// AgentRunner (processes), CheckRunner (stage checks). Main file: this one. Real adapters live in git/ and
// agents/; in-memory twins in test/support/twins/; both pass the suites in test/engine/ports/. It imports
// only types: the agents' task-file and command shapes.
import type { PriorWork } from '../agents/taskFile';

/**
 * What the monitor needs from git, as a narrow port: prepare an agent's worktree for a task, collect
 * what earlier stages left, commit what an agent left uncommitted, and merge. The real adapter is
 * git/gitWorkspace.ts; keeping the monitor on this port keeps its policy readable and testable.
 *
 * A call that meets a git lock another process holds (after the adapter's own short retries) throws
 * a PipelineError with code `git-lock` and changes nothing: the caller tries again later.
 */
export interface PreparedWorktree {
  worktree: string;
  /** Files that conflicted while bringing the task branch up to date with its base (the branch was left as it was). */
  conflicts: string[];
}

export type MergeOutcome = { merged: true; commit: string } | { merged: false; conflicts: string[] };

/** What became of a merged task's branch: deleted, or kept and why (see git/mergedBranches.ts). */
export type BranchCleanup = { deleted: true } | { deleted: false; reason: string; detail: string };

export interface CommitAllOptions {
  /** Detach the worktree from the branch once everything is committed (a completed stage). */
  readonly release?: boolean;
}

export interface WorkspacePort {
  /** Where an agent's worktree is (whether or not it exists yet). */
  worktreePath(agentId: string): string;
  /** Repairs what a crash may have left (prunes worktrees, stale locks, unfinished merges); returns what it did. */
  repair(agentIds: readonly string[]): Promise<string[]>;
  /** Puts the agent's worktree on the task's branch, created from `base` if missing and brought up to date with it. */
  prepare(agentId: string, taskId: string, base: string): Promise<PreparedWorktree>;
  /**
   * Commits whatever the agent left uncommitted in its worktree; false when there was nothing.
   * Refuses (PipelineError code off-branch) when the worktree is not on `branch` (when given) or on
   * no branch at all: the agent's work would not be the task's. With `release`, the worktree is then
   * detached from the branch (same commit, same files), so the next stage's agent takes the branch
   * without touching this worktree again; a worktree already detached at the tip of `branch` with
   * nothing uncommitted (released by an earlier call whose completion a crash did not record) is
   * taken as committed.
   */
  commitAll(agentId: string, message: string, branch?: string, options?: CommitAllOptions): Promise<boolean>;
  /**
   * Keeps what the agent left uncommitted (an attempt that ended without its marker) as a commit
   * under `ref`, whose parent is the worktree's HEAD, and clears it from the worktree so the agent
   * can be given work again. The branch does not move. Returns the ref written (`ref-2`… when `ref`
   * exists: nothing is overwritten), or null when there was nothing to keep.
   */
  setAside(agentId: string, ref: string, message: string): Promise<string | null>;
  /** Commits and files on the task's branch since it left `base`. */
  priorWork(taskId: string, base: string): Promise<PriorWork>;
  /** Creates `name` from `from` when it does not exist (pilot mode's integration branch). */
  ensureBranch(name: string, from: string): Promise<void>;
  /** Dry-run merge, then the merge of the task's branch into `into`; a conflict changes nothing. */
  merge(taskId: string, into: string, message: string): Promise<MergeOutcome>;
  /** Deletes the task's branch when every commit of it is in `into` (after its merge); never one with commits `into` lacks. */
  deleteMergedBranch(taskId: string, into: string): Promise<BranchCleanup>;
}
