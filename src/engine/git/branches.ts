import { join } from 'node:path';
import { PipelineError } from '../errors';
import { DirtyWorktreeError, GitCommandError, GitLockError, listFiles } from './gitErrors';
import type { GitRepo } from './gitRepo';
import { assertBranchName, branchRef } from './refNames';
import { clearMove, moveRecordPath, recordMove, recoverMove } from './pendingMove';
import { updateRefLocked } from './refTransaction';
import { branchOfGitDir, holdersOf, readLooseRef } from './worktreeRegistry';
import { unfinishedOperation } from './worktreeState';

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

/**
 * The commits of several branches in one git command (`for-each-ref`), by branch name; a missing
 * branch (or one that names no commit) is absent from the map.
 */
export async function branchTips(repo: GitRepo, branches: readonly string[]): Promise<Map<string, string>> {
  const refs = new Map(branches.map((b) => [branchRef(b), b] as const));
  const out = await repo.read(['for-each-ref', '--format=%(objectname) %(objecttype) %(refname)', ...refs.keys()]);
  const tips = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [sha, type, name] = line.split(' ');
    // The patterns also match refs below them (refs/heads/main/x): only the exact names count.
    const branch = name === undefined ? undefined : refs.get(name);
    if (sha && type === 'commit' && branch !== undefined) tips.set(branch, sha);
  }
  return tips;
}

/**
 * The branches' tips read from their loose ref files, without a git process (git writes a ref as a
 * whole file by rename, so a read sees the old value or the new one), or undefined when any of them
 * is not a loose ref (packed by `git pack-refs` or `gc`, or missing): ask git then (branchTips).
 */
export async function looseBranchTips(
  repo: GitRepo,
  branches: readonly string[],
): Promise<Map<string, string> | undefined> {
  const shas = await Promise.all(branches.map((b) => readLooseRef(repo.commonDir, branchRef(b))));
  if (shas.some((x) => x === undefined)) return undefined;
  return new Map(branches.map((b, i) => [b, shas[i]!] as const));
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
  return repo.locked({ branches: [name] }, async () => {
    const existing = await repo.branchHead(name);
    if (existing) return { branch: name, head: existing, created: false };
    return createBranchAt(repo, name, await requireBranch(repo, from, 'branch to start from'), from);
  });
}

/**
 * Creates branch `name` at `start` (the tip of `from`, read by the caller) by compare-and-swap against "no such ref": a branch created meanwhile is kept, not reset.
 */
export async function createBranchAt(repo: GitRepo, name: string, start: string, from: string): Promise<EnsuredBranch> {
  assertBranchName(name);
  return repo.locked({ branches: [name] }, async () => {
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
 * Moves `branch` from `oldSha` to `newSha` (a descendant of `oldSha`) by compare-and-swap, holding
 * the branch's lock (and the lock of the worktree that has it checked out). Returns 'moved' when the
 * branch is no longer at `oldSha` (someone else moved it; the caller recomputes from the new tip) or
 * the worktree holding it changed meanwhile. A git lock held by another process (`main.lock`,
 * `index.lock`) is tried again with back-off, then thrown as GitLockError: nothing was changed.
 *
 * A branch checked out nowhere moves with `update-ref new old`. A branch checked out in a worktree
 * (usually the target in the user's main working tree) must move with its files, or that checkout
 * would look as if it had undone the merge; and a failure must leave the checkout as it was. So git's
 * lock on the ref is taken and its value checked first (refTransaction.ts), then the worktree's index
 * and files are moved from the old commit to the new one (`read-tree -m -u`, git's two-tree merge, as
 * a checkout does: local changes to other files are kept, a local change or an untracked file in the
 * way refuses the whole update before any file is written), and only then is the ref committed. A
 * ref lock held elsewhere is found before any file changes; a refused tree update aborts the ref.
 */
export async function advanceBranch(
  repo: GitRepo,
  branch: string,
  newSha: string,
  oldSha: string,
  reason: string,
): Promise<AdvanceOutcome> {
  const ref = branchRef(branch);
  return repo.locked({ branches: [branch] }, () =>
    repo.retryingLocks(async () => {
      const [holder] = await holdersOf(repo.root, repo.commonDir, branch);
      if (!holder) {
        try {
          await repo.mutate(['update-ref', '-m', reason, ref, newSha, oldSha], { lockRetries: false });
          return 'advanced';
        } catch (e) {
          if (e instanceof GitLockError) throw e;
          if ((await repo.branchHead(branch)) !== oldSha) return 'moved';
          throw e;
        }
      }
      return repo.locked({ worktrees: [holder.path] }, async () => {
        // Checked again under the worktree's lock: it may have switched to another branch meanwhile.
        if ((await branchOfGitDir(holder.gitDir)) !== branch) return 'moved';
        const operation = await unfinishedOperation(holder.gitDir);
        if (operation) {
          throw new DirtyWorktreeError(
            holder.path,
            [],
            `Cannot move ${branch} to ${newSha.slice(0, 12)} (${reason}): ${branch} is checked out in ${holder.path}, which is in the middle of a ${operation}. Nothing was changed.`,
            `Finish or abort the ${operation} in ${holder.path} (git -C "${holder.path}" ${operation} --abort), then run the merge again.`,
          );
        }
        // A move of this checkout that a dead engine left unfinished is settled first: its record
        // is never overwritten, and the files must be where the ref is before they move again.
        await settlePendingMove(repo, holder.path, holder.gitDir);
        let recorded = false;
        try {
          const outcome = await updateRefLocked(holder.path, ref, newSha, oldSha, reason, repo.timeoutMs, async () => {
            // Recorded (durably) before any file moves, for whoever finds it should the engine die now.
            await recordMove(holder.gitDir, { ref, oldSha, newSha });
            recorded = true;
            await moveCheckout(repo, holder.path, branch, oldSha, newSha, reason);
          });
          await clearMove(holder.gitDir);
          return outcome.kind === 'committed' ? 'advanced' : 'moved';
        } catch (e) {
          // The ref did not move. Whatever the files did (all moved before a failed commit, some
          // moved before a read-tree that was stopped), they go back where the ref is; when that
          // cannot be done now, the record stays for the next move or the start-up repair.
          if (recorded) {
            // git's refusal (a local change in the way, a held lock) comes before it writes a file.
            if (e instanceof DirtyWorktreeError || e instanceof GitLockError) await clearMove(holder.gitDir);
            else await recoverMove(repo, holder.path, holder.gitDir).catch(() => undefined);
          }
          throw e;
        }
      });
    }),
  );
}

/**
 * Settles a move record left in the worktree of a checked-out branch (pendingMove.ts). A held
 * index lock (a `read-tree` of the dead engine still running, or its stale lock) is a GitLockError:
 * transient, tried again later. A local change in the way refuses the new move, naming the files.
 */
async function settlePendingMove(repo: GitRepo, path: string, gitDir: string): Promise<void> {
  const r = await recoverMove(repo, path, gitDir);
  if (!r || r.action === 'completed' || r.action === 'rolled-back') return;
  if (r.action === 'busy') {
    const lock = r.lock ?? join(gitDir, 'index.lock');
    throw new GitLockError(['read-tree'], path, -1, `fatal: Unable to create '${lock}': File exists.`, '', lock);
  }
  throw new DirtyWorktreeError(
    path,
    r.files,
    `An earlier update of ${r.move.ref} from ${r.move.oldSha.slice(0, 12)} to ${r.move.newSha.slice(0, 12)} in ${path} was cut short, and ${r.files.length ? `local changes are in the way (${listFiles(r.files)})` : `${r.move.ref} is now at neither commit`}. Nothing was changed.`,
    `Make the files in ${path} match ${r.move.ref} (git -C "${path}" status; keep what you need, then git checkout / git clean), delete ${moveRecordPath(gitDir)}, then run the merge again.`,
  );
}

/** Paths named in git's refusals to overwrite (`Entry 'x' not uptodate`, `Untracked working tree file 'x' would be…`). */
function refusedPaths(stderr: string): string[] {
  const files = new Set<string>();
  for (const m of stderr.matchAll(/(?:Entry|working tree file) '([^']+)' (?:not uptodate|would be overwritten)/g)) {
    if (m[1]) files.add(m[1]);
  }
  for (const line of stderr.split('\n')) if (line.startsWith('\t')) files.add(line.trim());
  return [...files];
}

/**
 * Moves the index and files of the worktree at `path` from `oldSha` to `newSha` with git's two-tree
 * merge (what a checkout does), or refuses without writing anything. git compares the index's
 * recorded file times first: a file whose time changed but whose content did not (an editor saved
 * it unchanged) looks modified, so on such a refusal the index is refreshed and the update tried once
 * more. Run once (no lock retries): the caller's transaction retries as a whole.
 */
async function moveCheckout(
  repo: GitRepo,
  path: string,
  branch: string,
  oldSha: string,
  newSha: string,
  reason: string,
): Promise<void> {
  const readTree = () => repo.mutate(['read-tree', '-m', '-u', oldSha, newSha], { cwd: path, lockRetries: false });
  try {
    await readTree();
    return;
  } catch (e) {
    if (!(e instanceof GitCommandError) || e instanceof GitLockError || !/not uptodate/.test(e.stderr)) {
      throw dirtyOr(e, path, branch, newSha, reason);
    }
  }
  await repo.mutate(['update-index', '-q', '--refresh'], { cwd: path, okExitCodes: [0, 1], lockRetries: false });
  try {
    await readTree();
  } catch (e) {
    throw dirtyOr(e, path, branch, newSha, reason);
  }
}

function dirtyOr(e: unknown, path: string, branch: string, newSha: string, reason: string): unknown {
  if (!(e instanceof GitCommandError) || e instanceof GitLockError) return e;
  const files = refusedPaths(e.stderr);
  if (files.length === 0) return e;
  return new DirtyWorktreeError(
    path,
    files,
    `Cannot move ${branch} to ${newSha.slice(0, 12)} (${reason}): ${branch} is checked out in ${path}, ` +
      `and updating it would overwrite uncommitted changes there (${listFiles(files)}). Nothing was changed.`,
    `Commit or stash those changes in ${path} (git -C "${path}" stash), then run the merge again; ` +
      `or check out another branch in ${path}.`,
  );
}
