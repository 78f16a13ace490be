import { canApply } from '../model/taskLifecycle';
import { usd } from '../usage/pricing';
import type { MonitorContext } from './monitorContext';

/**
 * Spending limits (`budget` in `.pipeline/config.json`): a task whose attempts together cost more
 * than `perTaskUsd`, or any task that spends once this run of the monitor has spent more than
 * `perRunUsd`, is blocked with the figures in its reason; over the run's budget, no new work starts
 * (see `overRunBudget`). A person unblocks it after raising the budget, or deciding it is worth it.
 */
export async function checkBudgets(ctx: MonitorContext, taskId: string): Promise<void> {
  const p = ctx.pipeline;
  const task = p.state.tasks[taskId];
  const { perTaskUsd, perRunUsd } = ctx.config.budget;
  if (!task || !p.isLeader) return;
  const spent = task.usage?.costUsd ?? 0;
  let reason: string | null = null;
  if (perTaskUsd !== undefined && spent > perTaskUsd)
    reason = `over its budget: ${usd(spent)} spent, more than budget.perTaskUsd ${usd(perTaskUsd)} (.pipeline/config.json); raise it or unblock the task to go on`;
  else if (perRunUsd !== undefined && ctx.streams.runCostUsd > perRunUsd)
    reason = `this run is over its budget: ${usd(ctx.streams.runCostUsd)} spent, more than budget.perRunUsd ${usd(perRunUsd)} (.pipeline/config.json); this task has cost ${usd(spent)}`;
  // A task whose last stage is done has spent its money: merging it costs nothing more.
  if (!reason || task.status === 'merging') return;
  const event = { type: 'block' as const, reason };
  if (!canApply(task, event)) return;
  const b = p.newBatch();
  b.transition(taskId, event);
  await p.commit(b);
}

/** True once this run spent more than `budget.perRunUsd`: the monitor starts no new attempt. */
export function overRunBudget(ctx: MonitorContext): boolean {
  const limit = ctx.config.budget.perRunUsd;
  return limit !== undefined && ctx.streams.runCostUsd > limit;
}
