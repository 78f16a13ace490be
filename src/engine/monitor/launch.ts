import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { renderTaskFile, TASK_DIR, taskFileName } from '../agents/taskFile';
import { isPipelineError } from '../errors';
import type { StageConfig } from '../model/configSchema';
import type { Task } from '../model/schema';
import type { Attempt } from './attemptTable';
import { writeAttemptHeader } from './attemptOutput';
import { checkMarker, lastCheckFailure, onExit } from './completion';
import { clearableAgent, previousTaskOf, worktreeAgentOf } from './infraFaults';
import { resumeFor } from './limits';
import { formatDelay, isLockHeld } from './lockBackoff';
import { errText, type MonitorContext } from './monitorContext';
import { settle } from './settle';

/**
 * Launching an attempt: the agent's worktree is put on the task's branch (brought up to date with
 * the base branch), the attempt's task file is written (role, task, what prerequisites and earlier
 * stages left, a conflict or failed check to fix, the completion protocol), and the agent's command
 * is started by the runner. The attempt was assigned in the journal before this runs; anything that
 * fails here fails the attempt, but a git lock held by another process (nothing changed) requeues
 * the task without counting a failure, not to be started again before a back-off (lockBackoff.ts).
 */
export async function launch(ctx: MonitorContext, task: Task, stage: StageConfig): Promise<void> {
  const agentId = task.assigned_to!;
  const agent = ctx.pipeline.state.agents[agentId];
  if (!agent) return;
  const a = ctx.attempts.open({
    agentId,
    taskId: task.id,
    attempt: task.attempt,
    stage,
    startedAt: ctx.now(),
    launching: true,
  });
  const lockKey = `launch ${task.id}`;
  try {
    // The agent's previous command may still be finishing its output after its marker.
    await ctx.streams.untilFree(agentId);
    const base = await ctx.ensureBase();
    const prepared = await prepareClearing(ctx, task, stage, base);
    ctx.lockBackoff.clear(lockKey);
    const dir = join(prepared.worktree, TASK_DIR);
    await mkdir(dir, { recursive: true });
    a.taskFile = join(dir, taskFileName(task.id, task.attempt));
    await writeFile(a.taskFile, await taskFileText(ctx, task, stage, base, prepared.conflicts));
    // A stop, block, cancel or requeue while this start was being prepared settled it (finding no
    // process to stop): start nothing, or an agent would run with no monitor and no task.
    if (a.status !== 'preparing' || ctx.stopped) return;
    ctx.watcher?.watchDir(dir);
    // After a usage limit, the same agent continues its conversation with its CLI's own resume.
    const resume = agent.interactive ? null : resumeFor(task, agentId, agent.command);
    const req = ctx.runRequest(a, prepared.worktree, agent.command, {
      resume: resume?.session,
      interactive: agent.interactive,
    });
    a.request = req;
    // Files the agent's CLI needs for this run (a policy or settings file its adapter wrote).
    for (const f of req.command.files ?? []) {
      await mkdir(dirname(f.path), { recursive: true });
      await writeFile(f.path, f.content);
    }
    await writeAttemptHeader(req, new Date(ctx.now()).toISOString());
    const outputStart = await stat(req.logFile).then(
      (s) => s.size,
      () => 0,
    );
    await ctx.streams.follow(a, outputStart, resume?.thread);
    a.handle = await ctx.ports.runner.start(req);
    if (!ctx.attempts.move(a, { type: 'started' }) || ctx.stopped) {
      await a.handle.stop();
      return;
    }
    ctx.pipeline.events.emit('agent:started', {
      agentId,
      taskId: task.id,
      stage: stage.name,
      attempt: task.attempt,
      command: req.command.display,
      at: ctx.now(),
    });
    armTimeout(ctx, a);
    const handle = a.handle;
    void handle.exited.then((exit) => onExit(ctx, a, exit));
    // The agent may have finished before the watcher saw its directory.
    void checkMarker(ctx, a);
  } catch (e) {
    if (isLockHeld(e)) {
      const delay = ctx.lockBackoff.next(lockKey, ctx.config.retry);
      await settle(ctx, a, {
        kind: 'requeued',
        reason: `${agentId} could not start on ${task.id}: another process holds a git lock; tried again in ${formatDelay(delay)} (${errText(e)})`,
        agent: 'idle',
        notBefore: ctx.now() + delay,
      });
      return;
    }
    await settle(ctx, a, {
      kind: 'failed',
      failure: {
        reason: `could not start ${agentId} on ${task.id}: ${errText(e)}`,
        class: isPipelineError(e) && e.code === 'usage' ? 'permanent' : 'transient',
        ...(worktreeAgentOf(ctx, e) !== undefined ? { infrastructure: true } : {}),
      },
    });
  } finally {
    a.launching = false;
    // Settled while it was being prepared: it leaves the table now that git is done with it.
    if (a.status === 'settled') {
      ctx.attempts.close(a);
      ctx.kick();
    }
  }
}

/**
 * Puts the agent's worktree on the task's branch. Work an earlier attempt left uncommitted there
 * (its agent killed, or its set-aside meeting a git lock when it settled) would refuse the switch
 * for every task the agent takes, and left in the worktree of an agent at rest that holds the task's
 * branch, the hand-over: it is set aside under a ref named in a warning, and the switch tried again. A git lock held meanwhile is a GitLockError, which requeues the task without
 * counting a failure (see launch).
 */
async function prepareClearing(ctx: MonitorContext, task: Task, stage: StageConfig, base: string) {
  const agentId = task.assigned_to!;
  try {
    return await ctx.ports.workspace.prepare(agentId, task.id, base);
  } catch (e) {
    const owner = isLockHeld(e) ? undefined : clearableAgent(ctx, agentId, e);
    if (owner === undefined) throw e;
    const left = previousTaskOf(ctx.pipeline.state, owner, owner === agentId ? task.id : '') ?? task.id;
    const kept = await ctx.ports.workspace.setAside(
      owner,
      `refs/pipeline/set-aside/${left}/left-by-${owner}`,
      `${left}: left uncommitted by ${owner}, set aside before ${agentId} started ${task.id} ${stage.name}`,
    );
    if (!kept) throw e;
    ctx.warn(
      `${owner} had left work uncommitted in its worktree (${left}); kept at ${kept} before ${agentId} started on ${task.id}`,
      task.id,
      owner,
    );
    return ctx.ports.workspace.prepare(agentId, task.id, base);
  }
}

/**
 * The stage's time limits: a timeout (the stage's `timeoutSeconds`, else `stageTimeoutSeconds`) and
 * a stall watch (no output at all for `stallSeconds`); either stops the command and fails the
 * attempt with a reason that says which, not the exit code the stop caused.
 */
export function armTimeout(ctx: MonitorContext, a: Attempt): void {
  const secs = a.stage.timeoutSeconds ?? ctx.config.stageTimeoutSeconds;
  const timeout = setTimeout(() => {
    if (a.status !== 'running') return;
    void settle(ctx, a, {
      kind: 'failed',
      failure: { reason: `${a.agentId} timed out after ${secs} s in ${a.stage.name}`, class: 'transient' },
    });
  }, secs * 1000);
  timeout.unref();
  a.timers.push(timeout);
  const stall = a.stage.stallSeconds ?? ctx.config.stallSeconds;
  if (stall > 0 && a.request) watchForStall(ctx, a, a.request.logFile, stall);
}

/** Fails the attempt when its log has not grown for `stall` seconds (checked a few times per period). */
function watchForStall(ctx: MonitorContext, a: Attempt, logFile: string, stall: number): void {
  let size = -1;
  let changedAt = ctx.now();
  const check = async () => {
    if (a.status !== 'running') return;
    const now = ctx.now();
    const current = await stat(logFile).then(
      (s) => s.size,
      () => -1,
    );
    if (current !== size) {
      size = current;
      changedAt = now;
    } else if (now - changedAt >= stall * 1000) {
      return settle(ctx, a, {
        kind: 'failed',
        failure: {
          reason: `${a.agentId} stalled in ${a.stage.name}: no output for ${stall} s (log: ${relative(ctx.pipeline.home.root, logFile)})`,
          class: 'transient',
        },
      });
    }
    schedule();
  };
  const schedule = () => {
    if (a.status !== 'running' && a.status !== 'preparing') return;
    const t = setTimeout(() => void check(), Math.min(30_000, (stall * 1000) / 4));
    t.unref();
    a.timers = [...a.timers.filter((x) => x !== t), t];
  };
  schedule();
}

async function taskFileText(
  ctx: MonitorContext,
  task: Task,
  stage: StageConfig,
  base: string,
  conflicts: string[],
): Promise<string> {
  const state = ctx.pipeline.state;
  const prior = await ctx.ports.workspace.priorWork(task.id, base);
  prior.notes = task.history
    .filter((h) => h.note && h.event !== 'assign')
    .map((h) => `${h.stage}: ${h.event}: ${h.note}`);
  const lastConflict = [...task.history].reverse().find((h) => h.event === 'conflict');
  const conflictFiles = conflicts.length
    ? conflicts
    : lastConflict?.note
      ? lastConflict.note.replace(/^merge conflict in /, '').split(', ')
      : [];
  const lastCheck = await lastCheckFailure(ctx, task);
  return renderTaskFile({
    task,
    stage,
    isLastStage: ctx.isLastStage(stage),
    attempt: task.attempt,
    agentId: task.assigned_to!,
    targetBranch: base,
    prerequisites: task.prerequisites.map((id) => ({
      id,
      title: state.tasks[id]?.title ?? id,
      mergedCommit: state.tasks[id]?.merged_commit ?? null,
    })),
    prior,
    ...(conflictFiles.length ? { conflictFiles } : {}),
    ...(lastCheck ? { lastCheckFailure: lastCheck } : {}),
  });
}
