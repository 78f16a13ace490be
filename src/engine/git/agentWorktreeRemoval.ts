import { isPipelineError } from '../errors';
import { findWorktree, listWorktrees } from './worktreeList';
import type { Worktrees } from './worktrees';

/**
 * What happens to a removed agent's worktree: it is removed when there is nothing in it to lose,
 * and left where it is, with the reason, when there is (uncommitted changes, an unfinished merge,
 * commits on no branch). Removing it never throws for those: the agent is gone either way, and the
 * person is told what was kept and how to remove it by hand.
 */
export type WorktreeRemoval =
  | { readonly outcome: 'removed' | 'absent'; readonly path: string }
  | { readonly outcome: 'kept'; readonly path: string; readonly reason: string };

export async function removeAgentWorktree(worktrees: Worktrees, agentId: string): Promise<WorktreeRemoval> {
  const path = worktrees.pathOf(agentId);
  if (!(await findWorktree(await listWorktrees(worktrees.repo), path))) return { outcome: 'absent', path };
  try {
    await worktrees.removeWorktree(agentId);
    return { outcome: 'removed', path };
  } catch (e) {
    if (!isPipelineError(e) || e.code !== 'git') throw e;
    return { outcome: 'kept', path, reason: e.message };
  }
}
