import { errText, type MonitorContext } from './monitorContext';

/**
 * After a task's merge has landed (and is recorded): its branch is deleted when the configuration
 * says so (`deleteMergedBranches`, the default), through the workspace port, which keeps any
 * branch with commits `into` lacks. Nothing here can undo or fail the merge: a branch that could
 * not be deleted is reported and left for a person.
 */
export async function cleanUpMergedBranch(ctx: MonitorContext, taskId: string, into: string): Promise<void> {
  if (!ctx.config.deleteMergedBranches || ctx.stopped) return;
  try {
    const r = await ctx.ports.workspace.deleteMergedBranch(taskId, into);
    if (r.deleted || r.reason === 'missing') return;
    ctx.warn(`the merged branch of ${taskId} was not deleted: ${r.detail}`, taskId);
  } catch (e) {
    ctx.warn(`deleting the merged branch of ${taskId} failed: ${errText(e)}`, taskId);
  }
}
