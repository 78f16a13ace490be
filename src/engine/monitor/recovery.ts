import { join } from 'node:path';
import { TASK_DIR, taskFileName } from '../agents/taskFile';
import { attemptOutputOffset } from './agentStream';
import { HUMAN_AGENT } from '../model/humanStage';
import { applyMarker, onExit, readMarker } from './completion';
import { requeueRepaired } from './infraFaults';
import { armTimeout } from './launch';
import { merge } from './merges';
import type { MonitorContext } from './monitorContext';
import { settle } from './settle';

/**
 * After a restart (a crash, a reload, a new leader): every agent the state says is working gets its
 * attempt back. A marker written while no monitor ran is applied; a command that still runs is
 * re-attached and followed; an attempt that is gone is requeued without counting a failure. Merges
 * that were under way are done again (they are idempotent).
 */
export async function recover(ctx: MonitorContext): Promise<void> {
  const p = ctx.pipeline;
  for (const agent of Object.values(p.state.agents)) {
    if (agent.status !== 'working' || !agent.current_task) continue;
    const task = p.state.tasks[agent.current_task];
    const stage = task ? ctx.stageOf(task.stage) : undefined;
    if (!task || !stage || task.status !== 'working' || task.assigned_to !== agent.id) {
      const b = p.newBatch();
      b.agentEvent(agent.id, { type: 'release' });
      await p.commit(b);
      continue;
    }
    const worktree = ctx.ports.workspace.worktreePath(agent.id);
    const taskFile = join(worktree, TASK_DIR, taskFileName(task.id, task.attempt));
    const a = ctx.attempts.open({
      agentId: agent.id,
      taskId: task.id,
      attempt: task.attempt,
      stage,
      taskFile,
      startedAt: ctx.now(),
    });
    // The command was started by an earlier monitor: the attempt is running, or was.
    ctx.attempts.move(a, { type: 'started' });
    ctx.watcher?.watchDir(join(worktree, TASK_DIR));
    // Re-attached first, even when a marker is there: a command that lingers after its marker is
    // then stopped by settle, as it would be without the restart, rather than left sharing the
    // worktree with the agent's next task.
    a.request = ctx.runRequest(a, worktree, agent.command);
    const handle = await ctx.ports.runner.reattach(a.request).catch(() => null);
    a.handle = handle;
    // Its output is read on from its header, so a command still finishing after its marker has
    // its tokens and cost recorded too.
    if (handle) await ctx.streams.follow(a, await attemptOutputOffset(a.request.logFile, a.request));
    const marker = await readMarker(taskFile);
    if (marker) {
      await applyMarker(ctx, a, marker);
      continue;
    }
    if (handle) {
      void handle.exited.then((exit) => onExit(ctx, a, exit));
      armTimeout(ctx, a);
    } else {
      await settle(ctx, a, {
        kind: 'requeued',
        reason: `the monitor restarted and attempt ${task.attempt} of ${agent.id} was no longer running`,
        agent: 'idle',
      });
    }
  }
  await requeueOrphans(ctx);
  // A person's review answer is committed with its `assign` in one write; a crash that tore that
  // write after the assign leaves the task working for nobody. It waits for the answer again.
  for (const t of Object.values(p.state.tasks)) {
    if (t.status !== 'working' || t.assigned_to !== HUMAN_AGENT) continue;
    const b = p.newBatch();
    b.transition(t.id, { type: 'requeue', reason: 'the review answer was cut short by a crash: answer again' });
    await p.commit(b);
  }
  for (const t of Object.values(p.state.tasks)) if (t.status === 'merging') void merge(ctx, t.id);
  // The start-up repair has run: tasks an infrastructure fault blocked go back to work.
  await requeueRepaired(ctx);
}

/**
 * Tasks working for an agent that is not working on them (the agent idle, at work on another task,
 * or gone): no attempt will ever end them, so they would hold a run open for ever. An earlier monitor
 * left them so (its recovery raced with its own first launch, soak seed 1730519424). A command of
 * that attempt still running is stopped; the task is requeued without counting a failure.
 */
async function requeueOrphans(ctx: MonitorContext): Promise<void> {
  const p = ctx.pipeline;
  for (const t of Object.values(p.state.tasks)) {
    const agentId = t.assigned_to;
    if (t.status !== 'working' || !agentId || agentId === HUMAN_AGENT) continue;
    const agent = p.state.agents[agentId];
    if (agent?.status === 'working' && agent.current_task === t.id) continue;
    const stage = ctx.stageOf(t.stage);
    if (agent && stage && !ctx.attempts.get(agentId)) {
      const worktree = ctx.ports.workspace.worktreePath(agentId);
      const a = ctx.attempts.open({ agentId, taskId: t.id, attempt: t.attempt, stage, startedAt: ctx.now() });
      ctx.attempts.move(a, { type: 'settle' });
      const handle = await ctx.ports.runner.reattach(ctx.runRequest(a, worktree, agent.command)).catch(() => null);
      await handle?.stop();
      ctx.attempts.close(a);
    }
    const b = p.newBatch();
    b.transition(t.id, {
      type: 'requeue',
      reason: `attempt ${t.attempt} of ${agentId} had no agent working on it (${agent ? `${agentId} is ${agent.status}` : `${agentId} is gone`}); requeued at start`,
    });
    await p.commit(b);
  }
}
