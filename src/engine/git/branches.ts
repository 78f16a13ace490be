import { PipelineError } from '../errors';
import { DirtyWorktreeError, GitCommandError, listFiles } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { assertBranchName, branchRef } from './refNames';
import { listWorktrees } from './worktreeList';

/** Pilot mode's integration branch (the configuration's default `pilotBranch`). */
export const PILOT_BRANCH = 'pipeline/pilot';

const ZERO_OID = '0000000000000000000000000000000000000000';

export interface EnsuredBranch {
  readonly branch: string;
  readonly head: string;
  readonly created: boolean;
}

/** The commit of a branch; a clear error when the branch does not exist. */
export async function requireBranch(repo: GitRepo, branch: string, role = 'branch'): Promise<string> {
  const sha = await repo.branchHead(assertBranchName(branch, role));
  if (!sha) {
    throw new PipelineError('git', `The ${role} ${branch} does not exist in ${repo.root}.`, {
      where: role,
      fix: `Create it (git branch ${branch}) or correct the branch name in the pipeline configuration.`,
    });
  }
  return sha;
}

/** True when `ancestor` is `descendant` or one of its ancestors. */
export async function isAncestor(repo: GitRepo, ancestor: string, descendant: string): Promise<boolean> {
  const r = await repo.readResult(['merge-base', '--is-ancestor', ancestor, descendant], { okExitCodes: [0, 1] });
  return r.exitCode === 0;
}

/**
 * Creates branch `name` at the tip of branch `from` when it is missing (the `pipeline/pilot`
 * branch, a task branch). Created with a compare-and-swap against "no such ref", so a branch
 * created meanwhile by someone else is kept, never reset.
 */
export async function ensureBranch(repo: GitRepo, name: string, from: string): Promise<EnsuredBranch> {
  assertBranchName(name);
  return repo.exclusive(async () => {
    const existing = await repo.branchHead(name);
    if (existing) return { branch: name, head: existing, created: false };
    return createBranchAt(repo, name, await requireBranch(repo, from, 'branch to start from'), from);
  });
}

/**
 * Creates branch `name` at `start` (the tip of `from`, read by the caller under the repository's
 * lock) by compare-and-swap against "no such ref": a branch created meanwhile is kept, not reset.
 */
export async function createBranchAt(repo: GitRepo, name: string, start: string, from: string): Promise<EnsuredBranch> {
  assertBranchName(name);
  return repo.exclusive(async () => {
    try {
      await repo.mutate([
        'update-ref',
        '-m',
        `pipeline: create ${name} from ${from}`,
        `refs/heads/${name}`,
        start,
        ZERO_OID,
      ]);
    } catch (e) {
      const now = await repo.branchHead(name);
      if (now) return { branch: name, head: now, created: false };
      throw e;
    }
    return { branch: name, head: start, created: true };
  });
}

/**
 * The commits of `target` and `branch` in one git command, when `branch` exists and already
 * contains `target` (the target is the branch's tip or one of its ancestors, hence also their merge
 * base): `for-each-ref --contains` lists the branch only then. Undefined in every other case (either
 * is missing, the branch is behind or diverged): the caller reads them one by one, which also gives
 * the clear error for a missing branch. The common case of a task handed from stage to stage.
 */
export async function refsIfContains(
  repo: GitRepo,
  branch: string,
  target: string,
): Promise<{ readonly target: string; readonly branch: string } | undefined> {
  const targetRef = branchRef(target, 'target branch');
  const ref = branchRef(branch, 'task branch');
  // Exit 129: the target does not exist ("malformed object name").
  const r = await repo.readResult(
    ['for-each-ref', '--format=%(objectname) %(objecttype) %(refname)', '--contains', targetRef, targetRef, ref],
    { okExitCodes: [0, 129] },
  );
  if (r.exitCode !== 0) return undefined;
  let t: string | undefined;
  let b: string | undefined;
  for (const line of r.stdout.split('\n')) {
    const [sha, type, name] = line.split(' ');
    // The patterns also match refs below them (refs/heads/main/x): only the exact names count.
    if (!sha || type !== 'commit') continue;
    if (name === targetRef) t = sha;
    else if (name === ref) b = sha;
  }
  return t && b ? { target: t, branch: b } : undefined;
}

export type AdvanceOutcome = 'advanced' | 'moved';

/**
 * Moves `branch` from `oldSha` to `newSha` (a descendant of `oldSha`) by compare-and-swap.
 * Returns 'moved' when the branch is no longer at `oldSha`: someone else moved it, and the caller
 * recomputes from the new tip.
 *
 * When the branch is checked out in a worktree (usually the user's main working tree), moving the
 * ref under it would make that checkout look as if it had undone the merge; the worktree is
 * fast-forwarded instead (`merge --ff-only`), which also refuses to overwrite local changes.
 */
export async function advanceBranch(
  repo: GitRepo,
  branch: string,
  newSha: string,
  oldSha: string,
  reason: string,
): Promise<AdvanceOutcome> {
  assertBranchName(branch);
  return repo.exclusive(async () => {
    const holder = (await listWorktrees(repo)).find((w) => w.branch === branch && !w.prunable && !w.bare);
    if (!holder) {
      try {
        await repo.mutate(['update-ref', '-m', reason, `refs/heads/${branch}`, newSha, oldSha]);
        return 'advanced';
      } catch (e) {
        if ((await repo.branchHead(branch)) !== oldSha) return 'moved';
        throw e;
      }
    }

    if ((await repo.headOf('HEAD', holder.path)) !== oldSha) return 'moved';
    try {
      await repo.mutate(['merge', '--ff-only', '--quiet', newSha], { cwd: holder.path });
      return 'advanced';
    } catch (e) {
      if (!(e instanceof GitCommandError)) throw e;
      if (/Not possible to fast-forward/i.test(e.stderr)) return 'moved';
      if (/would be overwritten by merge/i.test(e.stderr)) {
        const files = e.stderr
          .split('\n')
          .filter((l) => l.startsWith('\t'))
          .map((l) => l.trim());
        throw new DirtyWorktreeError(
          holder.path,
          files,
          `Cannot move ${branch} to ${newSha.slice(0, 12)} (${reason}): ${branch} is checked out in ${holder.path}, ` +
            `and updating it would overwrite uncommitted changes there (${listFiles(files)}). Nothing was changed.`,
          `Commit or stash those changes in ${holder.path} (git -C "${holder.path}" stash), then run the merge again; ` +
            `or check out another branch in ${holder.path}.`,
        );
      }
      throw e;
    }
  });
}
