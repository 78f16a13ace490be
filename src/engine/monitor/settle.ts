import type { CliFailure } from '../agents/cli/agentCli';
import type { Marker } from '../agents/completionMarker';
import type { AgentEvent } from '../model/agentLifecycle';
import type { Attempt } from './attemptTable';
import { INFRA_MARK } from './infraFaults';
import { limitRequeue, pauseAgents } from './limits';
import { formatDelay, isLockHeld } from './lockBackoff';
import { markerTransition } from './markerTransition';
import { merge } from './merges';
import { errText, type MonitorContext } from './monitorContext';
import { decideRetry, type AttemptFailure } from './retryPolicy';

/**
 * How an attempt ended. Every way out of an attempt is one of these, and `settle` is the one place
 * that turns it into state: the task's transition and the agent's release, committed together.
 */
export type AttemptOutcome =
  /** The agent wrote a completion marker (and the stage's check, if any, passed). */
  | { kind: 'marker'; marker: Marker }
  /** The attempt failed: retried with back-off, or blocked when retries ran out or cannot help. */
  | { kind: 'failed'; failure: AttemptFailure }
  /** The agent's CLI hit a usage or rate limit: requeued without counting a failure, its CLI's agents paused (limits.ts). */
  | { kind: 'limit'; failure: CliFailure }
  /**
   * The monitor or a person took the work back: requeued without counting a failure; with
   * `notBefore` (epoch ms), not started again before then.
   */
  | { kind: 'requeued'; reason: string; agent: 'idle' | 'offline'; notBefore?: number }
  /** The state moved on without this attempt (a person blocked or cancelled the task). */
  | { kind: 'abandoned' };

/**
 * Ends an attempt: stops its command, records the outcome and frees the agent. The first outcome
 * wins; a later one for the same attempt (an exit after the marker, a timeout after a stop) is a
 * race the attempt lifecycle ignores. When the state shows the attempt is no longer current, only
 * the agent is freed.
 */
export async function settle(ctx: MonitorContext, a: Attempt, outcome: AttemptOutcome): Promise<void> {
  if (!ctx.attempts.move(a, { type: 'settle' })) return;
  try {
    await record(ctx, a, outcome);
  } catch (e) {
    // Every way here is a chain nobody awaits (an exit, a marker, a timer, a person's block), so an
    // error has no one else to go to. The usual one is a lost lead (`not-leader`): the new leader
    // re-attaches to this attempt or requeues it, and this monitor stands down.
    ctx.warn(`could not record how attempt ${a.attempt} of ${a.taskId} ended: ${errText(e)}`, a.taskId, a.agentId);
  } finally {
    ctx.attempts.close(a);
  }
  ctx.kick();
}

async function record(ctx: MonitorContext, a: Attempt, outcome: AttemptOutcome): Promise<void> {
  // Work taken back (a stop, a timeout, a person's block) is stopped before its task can be given
  // to anyone else. A failed command has exited already; stopping it is harmless.
  if (outcome.kind !== 'marker') await a.handle?.stop();
  // What it left uncommitted is kept aside, never committed to the branch as the stage's work, and
  // never left in the worktree, where it would refuse the agent's next task.
  const keptAt = outcome.kind === 'marker' ? null : await setAside(ctx, a);
  const kept = keptAt ? ` (what ${a.agentId} left uncommitted is kept at ${keptAt})` : '';
  const p = ctx.pipeline;
  const task = ctx.current(a);
  const agentEvent: AgentEvent =
    outcome.kind === 'requeued' && outcome.agent === 'offline' ? { type: 'stop' } : { type: 'release', task: a.taskId };
  const b = p.newBatch();
  if (task) {
    switch (outcome.kind) {
      case 'marker':
        b.transition(task.id, markerTransition(ctx.config, a.stage, a.agentId, outcome.marker));
        break;
      case 'failed': {
        const d = decideRetry(task.failures, outcome.failure, ctx.config.retry);
        if (d.retry)
          b.transition(task.id, {
            type: 'fail',
            reason: outcome.failure.reason + kept,
            notBefore: new Date(ctx.now() + d.delayMs).toISOString(),
          });
        else
          b.transition(task.id, {
            type: 'block',
            reason: d.reason + kept + (outcome.failure.infrastructure ? ` ${INFRA_MARK}` : ''),
          });
        break;
      }
      case 'requeued':
        b.transition(task.id, {
          type: 'requeue',
          reason: outcome.reason + kept,
          ...(outcome.notBefore !== undefined ? { notBefore: new Date(outcome.notBefore).toISOString() } : {}),
        });
        break;
      case 'limit':
        b.transition(task.id, limitRequeue(ctx, a, outcome.failure));
        break;
      case 'abandoned':
        if (keptAt) ctx.warn(`${a.taskId} was taken back from ${a.agentId}${kept}.`, a.taskId, a.agentId);
        break;
    }
  }
  if (p.state.agents[a.agentId]) b.agentEvent(a.agentId, agentEvent);
  const paused = outcome.kind === 'limit' ? pauseAgents(ctx, a, outcome.failure, b) : [];
  // The transition event says what happened; no separate warning, so nothing is reported twice.
  if (p.isLeader) await p.commit(b);
  if (paused.length && outcome.kind === 'limit' && p.isLeader)
    p.events.emit('agent:paused', {
      agentIds: paused,
      until: p.state.agents[paused[0]!]?.paused_until ?? '',
      reason: outcome.failure.summary,
      taskId: a.taskId,
    });
  // The agent said it is done: its command gets a short grace to finish its output (its token
  // counts come last), then it is stopped; its agent takes no new task meanwhile (agentStream.ts).
  // Stopped after the commit, so the next stage's agent is not kept waiting for it.
  if (outcome.kind === 'marker') ctx.streams.afterMarker(a);
  else ctx.streams.ended(a);
  if (task && p.state.tasks[task.id]?.status === 'merging') void merge(ctx, task.id);
}

/**
 * How long a set-aside waits for a git lock another process holds before the attempt settles without
 * it: longer than the age at which the git layer removes a lock no live git process holds (10 s), so a
 * lock a killed agent's `git add` left is outlived; a lock someone really holds that long is left to
 * the agent's next launch, which sets the leftovers aside itself (launch.ts).
 */
export const SET_ASIDE_LOCK_WAIT_MS = 30_000;

/**
 * Sets aside what the attempt left in its agent's worktree; the ref, or null when there was nothing.
 * A git lock held by another process changed nothing: tried again after a back-off (lockBackoff.ts)
 * while the monitor leads, for up to SET_ASIDE_LOCK_WAIT_MS.
 */
async function setAside(ctx: MonitorContext, a: Attempt): Promise<string | null> {
  const lockKey = `set-aside ${a.agentId}`;
  const since = ctx.now();
  for (;;) {
    if (!ctx.pipeline.isLeader) return null;
    try {
      const ref = await ctx.ports.workspace.setAside(
        a.agentId,
        `refs/pipeline/set-aside/${a.taskId}/attempt-${a.attempt}`,
        `${a.taskId} ${a.stage.name}: left uncommitted by ${a.agentId} in attempt ${a.attempt}`,
      );
      ctx.lockBackoff.clear(lockKey);
      return ref;
    } catch (e) {
      const waited = ctx.now() - since;
      if (isLockHeld(e) && !ctx.stopped && waited < SET_ASIDE_LOCK_WAIT_MS) {
        const delay = ctx.lockBackoff.next(lockKey, ctx.config.retry);
        ctx.warn(
          `setting aside what ${a.agentId} left uncommitted for ${a.taskId} waits for a git lock another process holds; trying again in ${formatDelay(delay)}: ${errText(e)}`,
          a.taskId,
          a.agentId,
        );
        await ctx.pause(delay);
        continue;
      }
      ctx.lockBackoff.clear(lockKey);
      // The agent's next launch sets the leftovers aside before it prepares (launch.ts); nothing is
      // removed here.
      ctx.warn(
        `Could not set aside what ${a.agentId} left uncommitted for ${a.taskId}: ${errText(e)}`,
        a.taskId,
        a.agentId,
      );
      return null;
    }
  }
}
