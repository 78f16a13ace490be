import { resolve } from 'node:path';
import { isPipelineError } from '../errors';
import type { PipelineState, Task } from '../model/schema';
import type { MonitorContext } from './monitorContext';

/**
 * Faults of the pipeline's own machinery rather than of a task: an agent's worktree that cannot be
 * prepared (work a killed agent left in it, a worktree that vanished). Another attempt of the task
 * does not fix them; a repair does (the start-up repair re-creates worktrees and removes stale git
 * locks, a launch sets leftovers aside). A task they block is marked so, and goes back to work at
 * the next start, after the repair, with a history note saying why.
 */

/** Appended to the block reason of a task an infrastructure fault blocked; recognised at the next start. */
export const INFRA_MARK = '[infrastructure fault: the task goes back to work once it is repaired]';

/** The agent whose worktree `e` is about (a git error the git layer located there), if it is one of ours. */
export function worktreeAgentOf(ctx: MonitorContext, e: unknown): string | undefined {
  if (!isPipelineError(e) || (e.code !== 'git' && e.code !== 'off-branch')) return undefined;
  const where = e.details.where;
  if (where === undefined) return undefined;
  const at = resolve(where);
  return Object.keys(ctx.pipeline.state.agents).find((id) => resolve(ctx.ports.workspace.worktreePath(id)) === at);
}

/**
 * The agent whose worktree refused `launching`'s prepare and may be cleared now: the launching
 * agent's own, or that of an agent at rest holding the task's branch (the previous stage's, its
 * leftovers in the way of the hand-over). Undefined for a worktree whose agent is at work.
 */
export function clearableAgent(ctx: MonitorContext, launching: string, e: unknown): string | undefined {
  const id = worktreeAgentOf(ctx, e);
  if (id === undefined) return undefined;
  return id === launching || ctx.pipeline.state.agents[id]?.status !== 'working' ? id : undefined;
}

/** Blocked tasks whose block an infrastructure fault caused. */
export function infraBlocked(state: PipelineState): Task[] {
  return Object.values(state.tasks).filter((t) => t.status === 'blocked' && t.blocked_reason?.endsWith(INFRA_MARK));
}

/**
 * At start, once the repair has run: every task an infrastructure fault blocked goes back to work
 * (an unblock, its failures forgotten), the history saying which fault and why. One round per start:
 * a fault the repair did not fix blocks the task again after its retries.
 */
export async function requeueRepaired(ctx: MonitorContext): Promise<void> {
  const p = ctx.pipeline;
  const tasks = infraBlocked(p.state);
  if (!tasks.length || !p.isLeader) return;
  const b = p.newBatch();
  for (const t of tasks) {
    const cause = (t.blocked_reason ?? '').slice(0, -INFRA_MARK.length).trim();
    b.transition(t.id, {
      type: 'unblock',
      reason: `back to work: the start-up repair dealt with the infrastructure fault that blocked it (${cause})`,
    });
  }
  await p.commit(b);
}

/**
 * The task an agent worked on last (its latest assignment in every task's history), passing over its
 * assignment to `taskId` when that is the latest (the launch under way), to name what it left
 * behind; undefined when there was none.
 */
export function previousTaskOf(state: PipelineState, agentId: string, taskId: string): string | undefined {
  const assigns: Array<{ id: string; at: string }> = [];
  for (const t of Object.values(state.tasks)) {
    for (const h of t.history) if (h.event === 'assign' && h.agent === agentId) assigns.push({ id: t.id, at: h.at });
  }
  assigns.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  if (assigns.at(-1)?.id === taskId) assigns.pop();
  return assigns.at(-1)?.id;
}
