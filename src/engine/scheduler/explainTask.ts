import { PipelineError } from '../errors';
import { HUMAN_ROLE } from '../model/humanStage';
import type { PipelineState, Task } from '../model/schema';
import type { OrchestrationStrategy } from './orchestrationStrategy';
import type { SchedulerParts } from './schedulerParts';
import { backoffUntil, queueEntry } from './taskQueues';

/**
 * Why a task is where it is, in words, for `pipeline status` and the editor's tooltips. Every reason
 * that applies is listed (a task can back off and wait for a conflict at once), each with what
 * would let it move. Not on a hot path: it may scan a queue.
 */
export function explainTask(
  parts: SchedulerParts,
  taskId: string,
  state: PipelineState,
  now: number,
  eligible: ((t: Task) => boolean) | undefined,
  strategy: OrchestrationStrategy | undefined,
): string {
  const task = parts.tasks.get(taskId);
  if (!task) {
    throw new PipelineError('unknown-task', `There is no task ${taskId}.`, {
      where: taskId,
      fix: 'List the tasks with `pipeline task list`.',
    });
  }
  switch (task.status) {
    case 'pending':
      return explainPending(parts, task);
    case 'working':
      return `${task.id} is being worked on by ${task.assigned_to ?? 'an agent'} at the ${task.stage} stage (attempt ${task.attempt}).`;
    case 'merging':
      return `${task.id} was approved; the engine is merging its branch ${task.branch}.`;
    case 'blocked':
      return `${task.id} is blocked: ${task.blocked_reason ?? 'no reason given'}. Unblock it once the cause is fixed.`;
    case 'done':
      return `${task.id} is done${task.merged_commit ? ` (merged as ${task.merged_commit})` : ''}.`;
    case 'cancelled':
      return `${task.id} was cancelled.`;
    case 'queued':
      return explainQueued(parts, task, state, now, eligible, strategy);
  }
}

function explainPending(parts: SchedulerParts, task: Task): string {
  const unmet = parts.graph.unmetPrerequisites(task.id);
  if (unmet.length === 0)
    return `${task.id} has all its prerequisites merged and enters the pipeline at the ${task.stage} stage.`;
  const described = unmet.map((p) => {
    const t = parts.tasks.get(p);
    if (!t) return `${p} (not a task: remove it from the prerequisites or add it)`;
    if (t.status === 'cancelled') return `${p} (cancelled, so it will never merge: remove it from the prerequisites)`;
    if (t.status === 'blocked') return `${p} (blocked: ${t.blocked_reason ?? 'no reason given'})`;
    return `${p} (${t.status} at ${t.stage})`;
  });
  return `${task.id} waits for its prerequisites to be merged: ${described.join(', ')}.`;
}

function explainQueued(
  parts: SchedulerParts,
  task: Task,
  state: PipelineState,
  now: number,
  eligible: ((t: Task) => boolean) | undefined,
  strategy: OrchestrationStrategy | undefined,
): string {
  const stage = parts.stageByName.get(task.stage);
  if (!stage)
    return `${task.id} is queued at "${task.stage}", which is not a stage of the configuration; requeue it at one of ${parts.config.stages.map((s) => s.name).join(', ')}.`;
  if (stage.role === HUMAN_ROLE)
    return `${task.id} is awaiting your review at ${stage.name}: answer with \`pipeline review ${task.id} approve\`, \`changes "<what to change>"\` or \`block "<reason>"\`.`;
  const reasons: string[] = [];
  const until = backoffUntil(task);
  if (until !== null && until > now)
    reasons.push(`backing off after a failed attempt until ${new Date(until).toISOString()}`);
  if (eligible && !eligible(task))
    reasons.push(`not eligible in pilot mode: it lacks the "${parts.config.pilotLabel}" label`);
  const modeReason = strategy?.explainWaiting?.(task, state);
  if (modeReason) reasons.push(modeReason);
  if (parts.conflictStages.has(stage.name) && !parts.claims.holds(task.id)) {
    for (const c of parts.claims.conflicts(task.id, task.paths)) {
      const holder = parts.tasks.get(c.holder);
      reasons.push(
        `conflict with ${c.holder}${holder ? ` (${holder.status} at ${holder.stage})` : ''}: its "${c.theirs}" overlaps "${c.ours}"; it can start when ${c.holder} leaves ${parts.config.conflictStages.join('/')}`,
      );
    }
  }
  if (stage.maxAgents !== undefined) {
    const working = [...parts.inFlight].filter((id) => {
      const t = parts.tasks.get(id);
      return t?.status === 'working' && t.stage === stage.name;
    });
    if (working.length >= stage.maxAgents)
      reasons.push(
        `the ${stage.name} stage is at its limit of ${stage.maxAgents} task${stage.maxAgents === 1 ? '' : 's'} at once (maxAgents): ${working.sort().join(', ')} ${working.length === 1 ? 'is' : 'are'} working there`,
      );
  }
  const agents = parts.agents.count(stage.role);
  if (agents === 0) reasons.push(`no ${stage.role} agent exists: add one`);
  else if (parts.agents.idle(stage.role).length === 0)
    reasons.push(
      `waiting for ${article(stage.role)} ${stage.role} (${agents === 1 ? 'the only one is' : `all ${agents} are`} busy)`,
    );
  const ahead = parts.queues.countAhead(stage.name, queueEntry(task));
  if (ahead > 0) reasons.push(`${ahead} task${ahead === 1 ? '' : 's'} ahead of it at ${stage.name}`);
  if (reasons.length === 0)
    reasons.push(`nothing holds it back: ${article(stage.role)} ${stage.role} takes it at the next scheduling pass`);
  return `${task.id} is queued at ${stage.name}: ${reasons.join('; ')}.`;
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}
