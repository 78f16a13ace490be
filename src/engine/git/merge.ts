import { PipelineError } from '../errors';
import { advanceBranch, branchTips, looseBranchTips, requireBranch } from './branches';
import { MergeConflictError } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { withMessageFile } from './messageFile';
import { assertBranchName } from './refNames';

/**
 * The supervisor's merge, done without touching any worktree: `git merge-tree --write-tree`
 * computes the merged tree (or the conflicts) in the object database, `git commit-tree` makes the
 * merge commit, and the target branch moves by compare-and-swap (branches.ts). git 2.39's
 * merge-tree has `--write-tree`, `--name-only`, `--no-messages` and `-z` (not `--merge-base`,
 * which came in 2.40), and exits 1 when the merge conflicts.
 */

export interface DryRunResult {
  /** The merge would apply cleanly. */
  readonly clean: boolean;
  /** Paths that would conflict (empty when clean). */
  readonly conflicts: readonly string[];
  /** The merged tree (written to the object database), when clean. */
  readonly tree: string | undefined;
  /** The commits merged: the tip of the branch merged into, and of the branch merged. */
  readonly ours: string;
  readonly theirs: string;
}

async function mergeTree(repo: GitRepo, ours: string, theirs: string): Promise<DryRunResult> {
  const r = await repo.readResult(['merge-tree', '--write-tree', '--name-only', '--no-messages', '-z', ours, theirs], {
    okExitCodes: [0, 1],
  });
  const [tree, ...rest] = r.stdout.split('\0');
  const conflicts = [...new Set(rest.filter((f) => f !== ''))];
  const clean = r.exitCode === 0;
  return { clean, conflicts: clean ? [] : conflicts, tree: clean ? tree : undefined, ours, theirs };
}

/** Would merging `branch` into `into` conflict? Touches no worktree and no ref. */
export async function dryRunMerge(repo: GitRepo, branch: string, into: string): Promise<DryRunResult> {
  const theirs = await requireBranch(repo, branch, 'branch to merge');
  const ours = await requireBranch(repo, into, 'target branch');
  return mergeTree(repo, ours, theirs);
}

/**
 * Would two task branches conflict with each other? Run before the second of two overlapping tasks
 * merges, so the conflict is caught while both are still in flight.
 */
export async function conflictsBetween(repo: GitRepo, branchA: string, branchB: string): Promise<DryRunResult> {
  return dryRunMerge(repo, branchA, branchB);
}

export interface MergeOptions {
  /** Fast-forward when `into` is an ancestor of `branch` (default), instead of a merge commit. */
  readonly fastForward?: boolean;
  /** Attempts when `into` moves between the dry run and the update. Default 5. */
  readonly maxAttempts?: number;
  /**
   * Called after the new commit is computed and before `into` moves, with the attempt number. For
   * tests (moving the branch to exercise the compare-and-swap) and tracing.
   */
  readonly beforeAdvance?: (attempt: number) => Promise<void>;
  /** The fix sentence of the MergeConflictError, when the caller knows better than the default. */
  readonly conflictFix?: string;
  /**
   * The tips of `branch` and `into` as the caller just read them (under the lock of `into`), for the
   * first attempt: spares reading them again. A later attempt (`into` moved) reads them afresh.
   */
  readonly tips?: { readonly branch: string; readonly into: string };
}

export type MergeKind = 'up-to-date' | 'fast-forward' | 'merge';

export interface MergeResult {
  /** The new tip of `into`: the merge commit, the fast-forwarded commit, or the unchanged tip. */
  readonly sha: string;
  readonly kind: MergeKind;
  /** How many times the dry run ran (more than 1 when `into` moved meanwhile). */
  readonly attempts: number;
}

/** One merge step, computed in the object database only: what `into` would move to. */
export type MergeStep =
  | { readonly kind: MergeKind; readonly sha: string }
  | { readonly kind: 'conflict'; readonly error: MergeConflictError };

/**
 * Merges commit `theirs` (the tip of `branch`) into commit `ours` (of `into`) without moving any ref
 * or touching any worktree: `ours` itself when it already contains `theirs`, `theirs` when `ours`
 * can fast-forward to it (unless `fastForward` is false), else a new merge commit with parents
 * (ours, theirs) and `message`; or the conflict, with its files.
 */
export async function mergeCommit(
  repo: GitRepo,
  ours: string,
  theirs: string,
  branch: string,
  into: string,
  message: string,
  options: Pick<MergeOptions, 'fastForward' | 'conflictFix'> = {},
): Promise<MergeStep> {
  // One merge-base answers both questions: it is `theirs` exactly when `theirs` is an ancestor of
  // `ours` (nothing to merge), `ours` exactly when `into` can fast-forward. None: merge-tree
  // refuses unrelated histories below.
  const mb = await repo.readResult(['merge-base', ours, theirs], { okExitCodes: [0, 1] });
  const base = mb.exitCode === 0 ? mb.stdout.trim() : undefined;
  if (base === theirs) return { kind: 'up-to-date', sha: ours };
  if ((options.fastForward ?? true) && base === ours) return { kind: 'fast-forward', sha: theirs };
  const dry = await mergeTree(repo, ours, theirs);
  if (!dry.clean || !dry.tree) {
    return {
      kind: 'conflict',
      error: new MergeConflictError(
        branch,
        into,
        dry.conflicts,
        options.conflictFix ??
          `Bring ${branch} up to date with ${into} and resolve the conflicts there (the pipeline sends the task back to rework), then merge again.`,
      ),
    };
  }
  const tree = dry.tree;
  const sha = await withMessageFile(message, async (file) =>
    (await repo.mutate(['commit-tree', tree, '-p', ours, '-p', theirs, '-F', file])).trim(),
  );
  return { kind: 'merge', sha };
}

/**
 * Merges `branch` into `into`: dry run, then a merge commit with parents (into, branch) made from
 * the dry run's tree (or a fast-forward), then `into` advances by compare-and-swap. If `into` moved
 * meanwhile, everything is recomputed from its new tip, up to `maxAttempts` times. A conflict
 * throws MergeConflictError with the files and changes nothing.
 */
export async function mergeTask(
  repo: GitRepo,
  branch: string,
  into: string,
  message: string,
  options: MergeOptions = {},
): Promise<MergeResult> {
  assertBranchName(branch, 'branch to merge');
  assertBranchName(into, 'target branch');
  const maxAttempts = options.maxAttempts ?? 5;
  // Only `into` is rewritten; `branch` is read once per attempt (a snapshot is what gets merged).
  return repo.locked({ branches: [into] }, async () => {
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const known = attempt === 1 ? options.tips : undefined;
      const tips = known
        ? new Map([
            [branch, known.branch],
            [into, known.into],
          ])
        : ((await looseBranchTips(repo, [branch, into])) ?? (await branchTips(repo, [branch, into])));
      const theirs = tips.get(branch) ?? (await requireBranch(repo, branch, 'branch to merge'));
      const ours = tips.get(into) ?? (await requireBranch(repo, into, 'target branch'));
      const step = await mergeCommit(repo, ours, theirs, branch, into, message, options);
      if (step.kind === 'conflict') throw step.error;
      if (step.kind === 'up-to-date') return { sha: ours, kind: 'up-to-date', attempts: attempt };
      const { sha: next, kind } = step;

      await options.beforeAdvance?.(attempt);
      const outcome = await advanceBranch(repo, into, next, ours, `pipeline: ${kind} ${branch} into ${into}`);
      if (outcome === 'advanced') return { sha: next, kind, attempts: attempt };
    }
    throw new PipelineError(
      'git',
      `Could not merge ${branch} into ${into}: ${into} moved during each of ${maxAttempts} attempts.`,
      {
        where: into,
        fix: `Something keeps committing to ${into}; pause it and run the merge again.`,
      },
    );
  });
}
