import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { findAppendedMarker, type Marker } from '../agents/completionMarker';
import { parseTaskFileName } from '../agents/taskFile';
import { PipelineError } from '../errors';
import { taskBranch } from '../model/ids';
import type { RunExit } from '../ports/agentRunner';
import { disarm, type Attempt } from './attemptTable';
import { exitFailure } from './attemptOutput';
import { formatDelay, isLockHeld } from './lockBackoff';
import { errText, type MonitorContext } from './monitorContext';
import { settle } from './settle';

/**
 * How an attempt's end is noticed: its completion marker (read on a file event, after its command
 * exits, and by the rescan) or its command's exit without one. A COMPLETED marker runs the stage's
 * check first; what the agent left uncommitted is committed; then the attempt settles.
 */

/** The default limit on a stage's check; a check that hangs must not hold its task for ever. */
export const CHECK_TIMEOUT_MS = 10 * 60_000;

export async function readMarker(file: string): Promise<Marker | null> {
  try {
    return findAppendedMarker(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
}

/** A file event in a task directory: read the marker of the attempt it belongs to. */
export function onTaskFileHint(ctx: MonitorContext, file: string): void {
  const parsed = parseTaskFileName(basename(file));
  if (!parsed) return;
  for (const a of ctx.attempts.all()) {
    if (a.taskId === parsed.taskId && a.attempt === parsed.attempt && a.taskFile === file) void checkMarker(ctx, a);
  }
}

/** Reads the attempt's task file and applies its marker; true when there was one. */
export async function checkMarker(ctx: MonitorContext, a: Attempt): Promise<boolean> {
  if (a.status !== 'running' || !a.taskFile) return false;
  const m = await readMarker(a.taskFile);
  if (!m) return false;
  await applyMarker(ctx, a, m);
  return true;
}

export async function applyMarker(ctx: MonitorContext, a: Attempt, m: Marker): Promise<void> {
  const check = m.kind === 'completed' && a.stage.check !== undefined;
  if (!ctx.attempts.move(a, { type: 'marker', check })) return;
  disarm(a);
  const task = ctx.current(a);
  if (!task) return settle(ctx, a, { kind: 'abandoned' });
  if (check && !(await runCheck(ctx, a))) {
    return settle(ctx, a, {
      kind: 'failed',
      failure: { reason: `the ${a.stage.name} check \`${a.stage.check}\` failed`, class: 'transient' },
    });
  }
  if (check && !ctx.attempts.move(a, { type: 'checked' })) return;
  if (!(await commitLeftovers(ctx, a, task.id))) return;
  // While the check or the commit ran, the task may have been blocked, cancelled or requeued (a
  // stop): settle then finds it no longer current and only frees the agent.
  await settle(ctx, a, { kind: 'marker', marker: m });
}

/**
 * Commits what the agent left uncommitted. A git lock held by another process changed nothing, and
 * settling now would hand the task on without that work: the commit is tried again after a back-off
 * (lockBackoff.ts) for as long as the lock is held. False when the attempt ended meanwhile (a stop,
 * a person's block or cancel) or the monitor stopped: the caller then settles nothing; a
 * next monitor finds the marker again and commits then.
 */
async function commitLeftovers(ctx: MonitorContext, a: Attempt, taskId: string): Promise<boolean> {
  const lockKey = `commit ${a.agentId}`;
  for (;;) {
    try {
      // Released too: the stage is done with the branch, and the next stage's checkout need not
      // check this worktree again to take it over.
      await ctx.ports.workspace.commitAll(
        a.agentId,
        `${taskId} ${a.stage.name}: work left uncommitted by ${a.agentId}`,
        taskBranch(taskId),
        { release: true },
      );
      ctx.lockBackoff.clear(lockKey);
      return true;
    } catch (e) {
      // Off the task's branch (a detached HEAD, another branch), what the agent did is not on the
      // branch that merges: the stage is not done. Settle keeps its commits and files aside.
      if (e instanceof PipelineError && e.code === 'off-branch') {
        ctx.lockBackoff.clear(lockKey);
        await settle(ctx, a, {
          kind: 'failed',
          failure: {
            reason: `${a.agentId} (${a.stage.name}) finished off the task's branch: ${e.message}`,
            class: 'transient',
          },
        });
        return false;
      }
      if (!isLockHeld(e)) {
        ctx.lockBackoff.clear(lockKey);
        ctx.warn(`could not commit what ${a.agentId} left for ${taskId}: ${errText(e)}`, taskId, a.agentId);
        return true;
      }
      const delay = ctx.lockBackoff.next(lockKey, ctx.config.retry);
      ctx.warn(
        `committing what ${a.agentId} left for ${taskId} waits for a git lock another process holds; trying again in ${formatDelay(delay)}: ${errText(e)}`,
        taskId,
        a.agentId,
      );
      await ctx.pause(delay);
      // A person's block or cancel frees the agent in the state at once; the monitor settles the
      // attempt a moment later. No commit is tried in between: the work is no longer this stage's.
      if (ctx.stopped || a.status === 'settled' || !ctx.current(a)) {
        ctx.lockBackoff.clear(lockKey);
        return false;
      }
    }
  }
}

/** The command ended: its marker decides; without one, the attempt failed. */
export async function onExit(ctx: MonitorContext, a: Attempt, exit: RunExit): Promise<void> {
  const marker = await checkMarker(ctx, a);
  ctx.pipeline.events.emit('agent:exited', {
    agentId: a.agentId,
    taskId: a.taskId,
    attempt: a.attempt,
    code: exit.code,
    signal: exit.signal,
    marker: marker || a.status !== 'running',
  });
  if (a.status !== 'running') return;
  const agent = ctx.pipeline.state.agents[a.agentId];
  const failure = a.request
    ? await exitFailure(
        { req: a.request, command: agent?.command ?? '', stage: a.stage.name, root: ctx.pipeline.home.root },
        exit,
      )
    : {
        reason: `${a.agentId} (${a.stage.name}) ended without a completion marker`,
        class: exit.startError ? ('permanent' as const) : ('transient' as const),
      };
  // A usage or rate limit is a pause, not a failure (limits.ts).
  if ('cli' in failure && failure.cli?.kind === 'limit') return settle(ctx, a, { kind: 'limit', failure: failure.cli });
  await settle(ctx, a, { kind: 'failed', failure: { reason: failure.reason, class: failure.class } });
}

/** Runs the stage's check in the worktree; its output is kept as evidence either way. */
async function runCheck(ctx: MonitorContext, a: Attempt): Promise<boolean> {
  const evidence = ctx.evidenceFile(a.taskId, a.stage.name, a.attempt);
  const r = await ctx.ports.checks.run({
    command: a.stage.check!,
    cwd: ctx.ports.workspace.worktreePath(a.agentId),
    env: { PIPELINE_TASK_ID: a.taskId, PIPELINE_ROLE: a.stage.role },
    timeoutMs: CHECK_TIMEOUT_MS,
    evidenceFile: evidence,
    taskId: a.taskId,
    attempt: a.attempt,
  });
  ctx.pipeline.events.emit('check:finished', {
    taskId: a.taskId,
    stage: a.stage.name,
    passed: r.passed,
    evidence,
    durationMs: r.durationMs,
  });
  return r.passed;
}

/** The output of the check that failed the task's previous attempt at this stage, for the agent to fix. */
export async function lastCheckFailure(
  ctx: MonitorContext,
  task: { id: string; stage: string; attempt: number; history: { event: string; note?: string | undefined }[] },
): Promise<string | undefined> {
  const last = [...task.history].reverse().find((h) => h.event === 'fail');
  if (!last?.note?.includes('check')) return undefined;
  return readFile(ctx.evidenceFile(task.id, task.stage, task.attempt - 1), 'utf8').catch(() => undefined);
}
