import { z } from 'zod';
import type { Marker } from '../agents/completionMarker';
import { PipelineError } from '../errors';
import { awaitingReview, HUMAN_AGENT, HUMAN_ROLE } from '../model/humanStage';
import type { Task } from '../model/schema';
import { isLastStage, markerTransition } from '../monitor/markerTransition';
import { idArg, mutation, type MutationHost } from './mutationHost';

/** A person's answer to a task awaiting review: what `pipeline review <id> approve|changes|block` says. */
export const reviewAnswerSchema = z.discriminatedUnion('verdict', [
  z.strictObject({ verdict: z.literal('approve') }),
  z.strictObject({ verdict: z.literal('changes'), text: z.string() }),
  z.strictObject({ verdict: z.literal('block'), reason: z.string() }),
]);
export type ReviewAnswer = z.infer<typeof reviewAnswerSchema>;

/**
 * A person's answer to a task awaiting review at a human stage, applied as the transition the
 * same marker from an agent would be (markerTransition): approve = COMPLETED (the next stage, or
 * the merge after the last), changes = CHANGES REQUESTED (back to the rework stage), block =
 * BLOCKED. Recorded as an attempt of the pseudo-agent `human`, in one commit.
 */
export const reviewTask = mutation(z.tuple([idArg, reviewAnswerSchema]), async (h, [taskId, answer]): Promise<Task> => {
  const batch = h.newBatch();
  const t = batch.task(taskId);
  if (!awaitingReview(t, h.config)) throw notAwaitingReview(h, t);
  const stage = h.config.stages.find((s) => s.name === t.stage)!;
  const marker = reviewMarker(answer);
  if (marker.kind === 'changes_requested' && !isLastStage(h.config, stage)) {
    throw new PipelineError(
      'usage',
      `Changes can be requested only at the last stage (${h.config.stages.at(-1)!.name}); ${taskId} is at ${stage.name}.`,
      { where: taskId, fix: `Approve it, or block it with the reason: pipeline review ${taskId} block "<reason>".` },
    );
  }
  batch.transition(taskId, { type: 'assign', agent: HUMAN_AGENT, attempt: t.attempt + 1 });
  const after = batch.transition(taskId, markerTransition(h.config, stage, HUMAN_AGENT, marker));
  await h.commit(batch);
  return after;
});

/** The completion marker a review answer stands for; an answer without its words is refused. */
function reviewMarker(answer: ReviewAnswer): Marker {
  if (answer.verdict === 'approve') return { kind: 'completed' };
  const text = (answer.verdict === 'changes' ? answer.text : answer.reason).trim();
  if (!text)
    throw new PipelineError(
      'usage',
      answer.verdict === 'changes' ? 'Say what should change.' : 'Say why the task is blocked.',
      {
        where: answer.verdict,
        fix:
          answer.verdict === 'changes'
            ? 'pipeline review <id> changes "<what to change>"'
            : 'pipeline review <id> block "<reason>"',
      },
    );
  return answer.verdict === 'changes' ? { kind: 'changes_requested', reason: text } : { kind: 'blocked', reason: text };
}

/** Why a review answer does not apply to `t`, and what would. */
function notAwaitingReview(h: MutationHost, t: Task): PipelineError {
  const human = h.config.stages.filter((s) => s.role === HUMAN_ROLE).map((s) => s.name);
  const where =
    t.status === 'queued' || t.status === 'working'
      ? `${t.status} at ${t.stage}${t.assigned_to ? ` (${t.assigned_to})` : ''}`
      : t.status;
  return new PipelineError('illegal-transition', `${t.id} is not awaiting review: it is ${where}.`, {
    where: t.id,
    fix: human.length
      ? `A review answers a task queued at a human stage (${human.join(', ')}); \`pipeline review\` lists those that wait.`
      : `No stage of ${h.home.configFile} is worked by people: give the reviewing stage the role "${HUMAN_ROLE}" ({ "name": "supervisor", "role": "${HUMAN_ROLE}" }).`,
  });
}
