import type { GitRepo, LockScope } from './gitRepo';
import { lockPath } from './worktreeRegistry';

/**
 * Locks planned from the registry. What an operation must lock depends on the registry (which
 * worktree has the task branch checked out, whether the agent's worktree exists), which can change
 * until the locks are held. So an operation plans its locks from the registry on disk, takes them,
 * plans again under them, and starts over with the new plan when it needs a lock it does not hold
 * (after a few rounds, with the whole repository).
 */

/** Plans whose locks turned out too few (the registry changed meanwhile) before taking the whole repository. */
const MAX_PLANS = 3;

/** What an operation found in the registry before locking, and the locks that makes it need. */
export interface Plan<D> {
  readonly scope: LockScope;
  readonly data: D;
}

/** Every lock `needed` asks for is among those `held` asks for (paths compared as lock names). */
async function covers(held: LockScope, needed: LockScope): Promise<boolean> {
  if (held.exclusive) return true;
  if (needed.exclusive) return false;
  const heldBranches = new Set(held.branches ?? []);
  if (!(needed.branches ?? []).every((b) => heldBranches.has(b))) return false;
  const heldPaths = new Set(await Promise.all((held.worktrees ?? []).map(lockPath)));
  for (const w of needed.worktrees ?? []) if (!heldPaths.has(await lockPath(w))) return false;
  return true;
}

/** Runs `body` under the locks `plan` asks for, planned again once they are held: `body` gets the plan made under the locks. */
export async function runPlanned<D, T>(
  repo: GitRepo,
  plan: () => Promise<Plan<D>>,
  body: (data: D) => Promise<T>,
): Promise<T> {
  for (let round = 1; ; round++) {
    const first = round > MAX_PLANS ? undefined : await plan();
    const scope = first?.scope ?? { exclusive: true };
    const result = await repo.locked(scope, async () => {
      const now = await plan();
      if (!(await covers(scope, now.scope))) return undefined;
      return { value: await body(now.data) };
    });
    if (result) return result.value;
  }
}
