import type { CliFailure } from '../agents/cli/agentCli';
import { adapterFor } from '../agents/cli/agentCliRegistry';
import type { StateBatch } from '../model/stateBatch';
import type { ModelUsageRecord, Task } from '../model/schema';
import type { Attempt } from './attemptTable';
import { LIMIT_NOTE } from './limitNote';
import type { MonitorContext } from './monitorContext';

/**
 * Usage and rate limits are a pause, not a failure. When an agent's CLI says it hit a limit (its
 * adapter's `classify` returns `limit`), the attempt is not counted: its task goes back to its
 * queue (a requeue), and that agent and every agent on the same CLI are `paused` until the reset
 * time the CLI gave (else `limitBackoffSeconds`). Agents of other CLIs go on working. The pause is
 * state (`paused_until` in the agent record), so it survives a restart; the PauseClock resumes the
 * agents when the time comes, and the agent that met the limit continues its task with its CLI's
 * own resume (the session id its stream gave), keeping its context.
 */

/** How a limit's requeue is noted in the task's history (the next attempt looks for it). */
export { LIMIT_NOTE };

/** A time as a person reads it in a reason: "15:30" today, else "Dec 4 15:30". */
export function clockTime(t: number, now: number): string {
  const d = new Date(t);
  const hm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return new Date(now).toDateString() === d.toDateString()
    ? hm
    : `${d.toLocaleString('en-US', { month: 'short' })} ${d.getDate()} ${hm}`;
}

/** When agents paused by `failure` resume (ms since the epoch). */
export function resumeTime(ctx: MonitorContext, failure: CliFailure): number {
  const now = ctx.now();
  const at = failure.resetAt;
  return at !== undefined && at > now ? at : now + ctx.config.limitBackoffSeconds * 1000;
}

/** The requeue of a task whose attempt met a limit. */
export function limitRequeue(ctx: MonitorContext, a: Attempt, failure: CliFailure) {
  const until = resumeTime(ctx, failure);
  return {
    type: 'requeue' as const,
    reason: `${LIMIT_NOTE} of ${a.agentId}'s CLI (${failure.summary}); resumes at ${clockTime(until, ctx.now())}`,
  };
}

/**
 * Pauses the agent whose attempt met the limit (released already in `b`) and every idle or paused
 * agent on the same CLI; a working one meets the limit itself if it shares it. Returns who paused.
 */
export function pauseAgents(ctx: MonitorContext, a: Attempt, failure: CliFailure, b: StateBatch): string[] {
  const state = ctx.pipeline.state;
  const command = state.agents[a.agentId]?.command;
  if (command === undefined) return [];
  const until = new Date(resumeTime(ctx, failure)).toISOString();
  const paused: string[] = [];
  for (const agent of Object.values(state.agents)) {
    if (agent.command !== command) continue;
    const now = b.agent(agent.id);
    if (now.status !== 'idle' && now.status !== 'paused') continue;
    b.agentEvent(agent.id, { type: 'pause', until, reason: failure.summary });
    paused.push(agent.id);
  }
  return paused;
}

/**
 * The session to resume for this attempt: the previous attempt's, when it met a limit, at the same
 * stage, by the same agent (a CLI keeps its sessions per user and folder), on a CLI that resumes.
 */
export function resumeFor(
  task: Task,
  agentId: string,
  command: string,
): { session: string; thread: ModelUsageRecord[] } | null {
  if (!adapterFor(command)?.resumeInvocation) return null;
  // The latest entry is this attempt's `assign`; the one before says how the last attempt ended.
  const ended = [...task.history].reverse().find((h) => h.event !== 'assign');
  if (!ended || ended.event !== 'requeue' || !ended.note?.startsWith(LIMIT_NOTE)) return null;
  const last = task.usage?.attempts.find((u) => u.attempt === task.attempt - 1);
  if (!last?.session || last.agent !== agentId || last.stage !== task.stage) return null;
  return { session: last.session, thread: last.thread ?? [] };
}

/**
 * Resumes paused agents when their time comes. Armed for the earliest `paused_until` in the state;
 * re-armed whenever an agent is paused, and at the monitor's start (a pause survives a restart).
 */
export class PauseClock {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly ctx: MonitorContext) {}

  /** Whether some agent is paused: work it would take is waiting for it, not stuck. */
  anyPaused(): boolean {
    return Object.values(this.ctx.pipeline.state.agents).some((a) => a.status === 'paused');
  }

  arm(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const times = Object.values(this.ctx.pipeline.state.agents)
      .filter((a) => a.status === 'paused')
      .map((a) => (a.paused_until ? Date.parse(a.paused_until) : 0));
    if (times.length === 0) return;
    // setTimeout holds at most about 24 days; a longer pause is looked at again each day.
    const wait = Math.min(Math.max(0, Math.min(...times) - this.ctx.now()) + 5, 86_400_000);
    this.timer = setTimeout(() => void this.resumeDue(), wait);
    this.timer.unref();
  }

  /** Resumes every paused agent whose time has come, then re-arms for the next. */
  async resumeDue(): Promise<void> {
    const p = this.ctx.pipeline;
    if (this.stopped || !p.isLeader) return;
    const now = this.ctx.now();
    const due = Object.values(p.state.agents).filter(
      (a) => a.status === 'paused' && (!a.paused_until || Date.parse(a.paused_until) <= now),
    );
    if (due.length) {
      const b = p.newBatch();
      for (const a of due) b.agentEvent(a.id, { type: 'resume' });
      await p.commit(b).catch((e: unknown) => this.ctx.warn(`could not resume paused agents: ${String(e)}`));
      p.events.emit('monitor:info', {
        message: `resumed ${due.map((a) => a.id).join(', ')}: the usage limit's reset time came`,
      });
      this.ctx.kick();
    }
    this.arm();
  }

  dispose(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
