import { formatDelay, isLockHeld } from './lockBackoff';
import { cleanUpMergedBranch } from './mergedBranchCleanup';
import { errText, type MonitorContext } from './monitorContext';

/**
 * Merging a task whose last stage approved it: a dry run first (in the workspace port), then the
 * merge into the target branch (the pilot branch in pilot mode) by compare-and-swap. A conflict
 * sends the task back to the rework stage with the conflicting files; a rework that keeps
 * conflicting is blocked after `retry.maxAttempts` rounds, for a person to resolve. A git lock held
 * by another process changed nothing: the task stays `merging` and the merge is tried again after a
 * back-off (lockBackoff.ts); any other failure blocks the task.
 */
export async function merge(ctx: MonitorContext, taskId: string): Promise<void> {
  // Shadow mode changes no git state: an approved task waits in `merging` until the mode changes.
  if (ctx.merging.has(taskId) || ctx.stopped || ctx.pipeline.state.mode === 'shadow') return;
  ctx.merging.add(taskId);
  const p = ctx.pipeline;
  const started = ctx.now();
  const lockKey = `merge ${taskId}`;
  try {
    const task = p.state.tasks[taskId];
    if (!task || task.status !== 'merging') return;
    const into = await ctx.ensureBase();
    const r = await ctx.ports.workspace.merge(taskId, into, `Merge ${task.branch}: ${task.id} ${task.title}`);
    const b = p.newBatch();
    if (r.merged) b.transition(taskId, { type: 'merged', commit: r.commit });
    else {
      // A rework that leaves the conflict in place would go round for ever: after
      // retry.maxAttempts conflicting merges since the task was last unblocked, a person decides.
      const lastUnblock = task.history.map((h) => h.event).lastIndexOf('unblock');
      const rounds = task.history.slice(lastUnblock + 1).filter((h) => h.event === 'conflict').length + 1;
      if (rounds >= ctx.config.retry.maxAttempts) {
        b.transition(taskId, {
          type: 'block',
          reason: `merging into ${into} conflicted in ${r.conflicts.join(', ') || 'unknown files'} ${rounds} times in a row; resolve it on ${task.branch} (merge ${into} into it), then unblock the task`,
        });
      } else b.transition(taskId, { type: 'conflict', reworkStage: ctx.config.reworkStage, files: r.conflicts });
    }
    await p.commit(b);
    ctx.lockBackoff.clear(lockKey);
    p.events.emit('merge:finished', {
      taskId,
      into,
      commit: r.merged ? r.commit : null,
      conflicts: r.merged ? [] : r.conflicts,
      durationMs: ctx.now() - started,
    });
    if (r.merged) await cleanUpMergedBranch(ctx, taskId, into);
  } catch (e) {
    if (isLockHeld(e) && !ctx.stopped) {
      const delay = ctx.lockBackoff.next(lockKey, ctx.config.retry);
      ctx.warn(
        `merging ${taskId} waits for a git lock another process holds; trying again in ${formatDelay(delay)}: ${errText(e)}`,
        taskId,
      );
      ctx.later(delay, () => void merge(ctx, taskId));
      return;
    }
    ctx.lockBackoff.clear(lockKey);
    ctx.warn(`merging ${taskId} failed: ${errText(e)}`, taskId);
    const t = p.state.tasks[taskId];
    if (t?.status === 'merging' && p.isLeader) {
      const b = p.newBatch();
      b.transition(taskId, { type: 'block', reason: `the merge failed: ${errText(e)}` });
      await p.commit(b).catch(() => undefined);
    }
  } finally {
    ctx.merging.delete(taskId);
    ctx.kick();
  }
}
