import { MarkerWatcher } from '../agents/markerWatcher';
import { ShellCheckRunner } from '../agents/shellCheckRunner';
import type { Disposable } from '../model/events';
import { HUMAN_AGENT } from '../model/humanStage';
import type { StageConfig } from '../model/configSchema';
import type { Task } from '../model/schema';
import type { Pipeline } from '../pipeline';
import type { AgentRunner } from '../ports/agentRunner';
import type { CheckRunner } from '../ports/checkRunner';
import type { WorkspacePort } from '../ports/workspacePort';
import { onTaskFileHint } from './completion';
import { decide, type Decision, type IdleReport } from './decide';
import { overRunBudget } from './budget';
import { launch } from './launch';
import { PauseClock } from './limits';
import { merge } from './merges';
import { fencedRunner, fencedWorkspace } from './fencing';
import { errText, MonitorContext } from './monitorContext';
import { recover } from './recovery';
import { Rescan } from './rescan';
import { settle } from './settle';

/**
 * The monitor: the loop that makes the pipeline do work. It is the seed's `monitor_loop`, event
 * driven: a tick runs when something happened (a task was added, a completion marker was written,
 * an agent exited, a back-off ended) and on a reconciliation rescan (the seed's 15/30/60 s adaptive
 * interval, now only the backstop for lost file events).
 *
 * A tick asks `decide()` (decide.ts) what to do: queue the tasks whose prerequisites are merged,
 * then make the scheduler's assignments (in shadow mode, only record them) and launch each attempt
 * (launch.ts). An attempt ends by its completion marker or its command's exit (completion.ts), a
 * timeout, a stop or a person's hand, and always through `settle()` (settle.ts). After the last
 * stage the task's branch is merged (merges.ts). After a restart, attempts are re-attached or
 * requeued (recovery.ts). This folder's files, one job each, share a MonitorContext.
 *
 * Every step is at-least-once and idempotent per (task, attempt): a restarted monitor re-attaches to
 * agents that still run, reads markers written while it was down, and requeues what it cannot
 * recover.
 *
 * This folder may import the model, the scheduler, the ports, the agents' helpers and CLI adapters,
 * ../errors, progress/, usage/, the log's rotation and (as a type) the pipeline's facade; it reaches
 * git and processes only through the ports. `pipeline run --dry` asks decide() through dryRun.ts.
 */
export interface MonitorOptions {
  pipeline: Pipeline;
  workspace: WorkspacePort;
  runner: AgentRunner;
  /** Runs stages' checks (default: through `sh -c` in the worktree). */
  checks?: CheckRunner;
  /** Path of dist/scriptedAgent.js, for the `scripted` preset. */
  scriptedAgent: string;
  /** File events as hints (default on). Off leaves only the rescan: the seed's way, for comparison. */
  fileEvents?: boolean;
  /** Overrides the configuration's rescan intervals (seconds). */
  rescanSeconds?: { idle: number; normal: number; busy: number };
  /** Stop agents when the monitor stops (default true); their tasks are requeued without a failure. */
  stopAgentsOnStop?: boolean;
  /**
   * Idle agents that cannot take work now for a reason of the runner's (on workers: no live worker
   * runs them); call `kick()` when that changes.
   */
  unavailable?: (agentId: string) => boolean;
}

export class Monitor implements Disposable {
  private readonly ctx: MonitorContext;
  private readonly rescan: Rescan;
  private readonly pauses: PauseClock;
  private overBudgetSaid = false;
  private running = false;
  private again = false;
  /**
   * Until the start-up repair and the recovery of in-flight work are done, no tick runs: a task added
   * meanwhile (a request in the inbox) would otherwise be given to an agent that the recovery then
   * finds working with no attempt of an earlier monitor, and requeues while its launch goes on.
   */
  private starting = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private subscriptions: Disposable[] = [];
  private lastShadowDecisions = '';
  /** What `.pipeline/current-task.txt` last received, so it is written on change only. */
  private currentTaskWritten: string | null | undefined = undefined;
  private idleWaiters: ((r: IdleReport) => void)[] = [];
  private tickDone: Promise<void> = Promise.resolve();

  constructor(private readonly options: MonitorOptions) {
    const fence = () => options.pipeline.fence();
    this.ctx = new MonitorContext(
      options.pipeline,
      {
        workspace: fencedWorkspace(options.workspace, fence),
        runner: fencedRunner(options.runner, fence),
        checks: options.checks ?? new ShellCheckRunner(),
      },
      options.scriptedAgent,
      () => this.kick(),
    );
    this.rescan = new Rescan(this.ctx, () => options.rescanSeconds ?? this.ctx.config.rescanSeconds);
    this.pauses = new PauseClock(this.ctx);
  }

  private get pipeline(): Pipeline {
    return this.ctx.pipeline;
  }

  async start(): Promise<void> {
    this.ctx.stopped = false;
    this.starting = true;
    try {
      await this.startUp();
    } finally {
      this.starting = false;
    }
    this.rescan.schedule();
    this.kick();
  }

  private async startUp(): Promise<void> {
    const p = this.pipeline;
    if (this.options.fileEvents !== false) this.ctx.watcher = new MarkerWatcher((f) => onTaskFileHint(this.ctx, f));
    for (const name of ['task:added', 'task:edited', 'agent:added', 'mode:orchestration', 'mode:rollout'] as const) {
      this.subscriptions.push(p.events.on(name, () => this.kick()));
    }
    // Merges held while in shadow mode go ahead once it is left.
    this.subscriptions.push(
      p.events.on('mode:rollout', (e) => {
        if (e.to === 'shadow') return;
        for (const t of p.scheduler.inFlightTasks()) if (t.status === 'merging') void merge(this.ctx, t.id);
      }),
    );
    // A replaced leader stands down: it starts, merges and records nothing more, and leaves its
    // agents running for the new leader, which re-attaches to them or requeues their work.
    this.subscriptions.push(p.events.on('leader:lost', () => void this.stop({ stopAgents: false })));
    // A person's block or cancel, a forced mode switch or a forced agent removal (requeue) takes
    // running work away from its agent: stop the agent's process, or it runs on with no task.
    this.subscriptions.push(
      p.events.on('task:transition', (e) => {
        const type = e.event.type;
        if (type === 'unblock' || type === 'cancel' || type === 'block' || type === 'requeue') {
          if (type !== 'unblock') void this.abandon(e.before);
          this.kick();
        }
      }),
    );
    // A person's review answer (model/humanStage.ts) moves a task on with no attempt of this monitor's
    // to settle it: the next stage's agent may take it now, or its merge starts.
    this.subscriptions.push(
      p.events.on('task:transition', (e) => {
        if (e.before.status !== 'working' || e.before.assigned_to !== HUMAN_AGENT) return;
        if (e.after.status === 'merging') void merge(this.ctx, e.after.id);
        this.kick();
      }),
    );
    // Shadow mode changes no git state: agents' worktrees are created once they get work.
    const create = p.state.mode === 'shadow' ? [] : Object.keys(p.state.agents);
    const repaired = await this.ctx.ports.workspace
      .repair(create)
      .catch((e: unknown) => [`repair failed: ${errText(e)}`]);
    for (const r of repaired) {
      if (r.startsWith('created the worktree')) p.events.emit('monitor:info', { message: r });
      else this.ctx.warn(r);
    }
    await recover(this.ctx);
    // Paused agents (a usage limit) resume when their time comes, across restarts too.
    this.subscriptions.push(
      p.events.on('agent:changed', (e) => {
        if (e.after.status === 'paused' || e.before.status === 'paused') this.pauses.arm();
      }),
    );
    await this.pauses.resumeDue();
  }

  /** Resolves when the pipeline has nothing left to do (see 'monitor:idle'). */
  untilIdle(): Promise<IdleReport> {
    return new Promise((r) => {
      this.idleWaiters.push(r);
      this.kick();
    });
  }

  /** Schedules a tick; ticks never overlap, and a kick during one runs another after it. */
  kick(): void {
    // While starting, `start` kicks once it is done.
    if (this.ctx.stopped || this.starting) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.tickDone = this.tick()
      .catch((e: unknown) => this.ctx.warn(`tick failed: ${errText(e)}`))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private decideNow(): Decision {
    const p = this.pipeline;
    // An agent whose previous command is still in its grace after its marker would only be waited
    // for: its stage's other agents take the work, or it waits for the first one free.
    return decide({
      state: p.state,
      config: p.config,
      scheduler: p.scheduler,
      now: p.clock.now(),
      unavailable: (id) => this.ctx.streams.lingers(id) || (this.options.unavailable?.(id) ?? false),
    });
  }

  private async tick(): Promise<void> {
    const p = this.pipeline;
    if (!p.isLeader) return;
    await p.applyPendingSwitch();
    let d = this.decideNow();
    if (d.promote.length) {
      const b = p.newBatch();
      for (const id of d.promote) b.transition(id, { type: 'ready' });
      await p.commit(b);
      d = this.decideNow();
    }
    if (d.draining) return this.reportIdle(d);
    const state = p.state;
    const plan = d.plan;
    if (plan.currentTask !== undefined && plan.currentTask !== state.current_task) {
      const b = p.newBatch();
      b.record({ type: 'sequential.current', id: plan.currentTask });
      await p.commit(b);
    }
    if (state.orchestration_mode === 'sequential' && state.current_task !== this.currentTaskWritten) {
      this.currentTaskWritten = state.current_task;
      await p.writeCurrentTaskFile().catch(() => undefined);
    }
    this.armWake(plan.wakeAt);

    if (d.shadow) {
      await this.recordShadowDecisions(d);
      return this.reportIdle(d);
    }
    if (plan.assignments.length && overRunBudget(this.ctx)) {
      if (!this.overBudgetSaid)
        this.ctx.warn(
          `no new work starts: this run is over budget.perRunUsd (${this.ctx.config.budget.perRunUsd} USD in .pipeline/config.json)`,
        );
      this.overBudgetSaid = true;
      return this.reportIdle(d);
    }
    // Every assignment of the plan in one commit (one journal write and sync), then the launches.
    const b = p.newBatch();
    const starts: { task: Task; stage: StageConfig; text: string }[] = [];
    for (const a of plan.assignments) {
      const task = state.tasks[a.taskId]!;
      const stage = this.ctx.stageOf(a.stage);
      if (!stage) continue;
      const after = b.transition(a.taskId, { type: 'assign', agent: a.agentId, attempt: task.attempt + 1 });
      b.agentEvent(a.agentId, { type: 'take', task: a.taskId, at: b.at });
      starts.push({ task: after, stage, text: `started ${a.agentId} (${a.stage}) on ${a.taskId}` });
    }
    await p.commit(b);
    for (const s of starts) {
      p.events.emit('pipeline:decision', { text: s.text, shadow: false });
      void launch(this.ctx, s.task, s.stage);
    }
    this.reportIdle(d);
  }

  /** Shadow mode: what would start is recorded (once per distinct set) and announced, nothing runs. */
  private async recordShadowDecisions(d: Decision): Promise<void> {
    const p = this.pipeline;
    const lines = d.plan.assignments.map((a) => `would start ${a.agentId} (${a.stage}) on ${a.taskId}`);
    const key = lines.join('\n');
    if (lines.length && key !== this.lastShadowDecisions) {
      const b = p.newBatch();
      for (const text of lines) b.record({ type: 'decision', text, at: b.at });
      await p.commit(b);
      for (const text of lines) p.events.emit('pipeline:decision', { text, shadow: true });
    }
    this.lastShadowDecisions = key;
  }

  /** Announces idleness when the decision says so and nothing is in flight in this process either. */
  private reportIdle(d: Decision): void {
    if (!d.idle || this.ctx.attempts.size > 0 || this.ctx.merging.size > 0 || this.again) return;
    // An attempt's usage still to be recorded, or work waiting for a paused agent, is not idleness.
    if (this.ctx.streams.busy || (d.idle.waiting.length > 0 && this.pauses.anyPaused())) return;
    this.pipeline.events.emit('monitor:idle', d.idle);
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w(d.idle);
  }

  private armWake(at: number | null): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (at === null) return;
    this.wakeTimer = setTimeout(() => this.kick(), Math.max(0, at - this.pipeline.clock.now()) + 5);
    this.wakeTimer.unref();
  }

  /** A person blocked or cancelled a task that was running (or it was requeued): stop its agent. */
  private async abandon(before: Task): Promise<void> {
    if (before.status !== 'working' || !before.assigned_to) return;
    const a = this.ctx.attempts.get(before.assigned_to);
    if (!a || a.taskId !== before.id || a.attempt !== before.attempt) return;
    await settle(this.ctx, a, { kind: 'abandoned' });
  }

  /**
   * Stops an agent's current run, if any, and puts its task back in its queue without counting a
   * failure. `offline` keeps the agent from new work until it is started again (restart = online).
   */
  async interruptAgent(agentId: string, offline: boolean): Promise<void> {
    const a = this.ctx.attempts.get(agentId);
    if (a) {
      await settle(this.ctx, a, {
        kind: 'requeued',
        reason: `${agentId} was ${offline ? 'stopped' : 'restarted'} by a person`,
        agent: offline ? 'offline' : 'idle',
      });
    }
    const p = this.pipeline;
    if (p.state.agents[agentId]) {
      const b = p.newBatch();
      b.agentEvent(agentId, { type: offline ? 'stop' : 'start' });
      await p.commit(b);
    }
    this.kick();
  }

  /** Reads every in-flight task file now (the rescan's work, for tests and benchmarks). */
  rescanNow(): Promise<void> {
    return this.rescan.now();
  }

  /**
   * Stops the loop; by default also stops running agents and requeues their tasks (no failure
   * counted). With `stopAgents: false` they run on, for the next monitor to re-attach to.
   */
  async stop(opts: { stopAgents?: boolean } = {}): Promise<void> {
    if (this.ctx.stopped) return;
    this.ctx.stopped = true;
    this.rescan.dispose();
    this.pauses.dispose();
    this.ctx.cancelTimers();
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const s of this.subscriptions) s.dispose();
    this.subscriptions = [];
    this.ctx.watcher?.dispose();
    await this.tickDone;
    const p = this.pipeline;
    if (opts.stopAgents ?? this.options.stopAgentsOnStop ?? true) {
      for (const a of this.ctx.attempts.all()) {
        await settle(this.ctx, a, { kind: 'requeued', reason: 'the monitor stopped', agent: 'idle' }).catch(
          (e: unknown) => this.ctx.warn(`could not requeue ${a.taskId}: ${errText(e)}`, a.taskId, a.agentId),
        );
      }
      // The requeues above leave nothing in flight, so a drained orchestration switch applies now
      // rather than waiting for the next monitor.
      if (p.isLeader)
        await p
          .applyPendingSwitch()
          .catch((e: unknown) => this.ctx.warn(`could not apply the pending mode switch: ${errText(e)}`));
    }
    // Attempts' usage still being recorded is written (each within its grace) before the runner goes.
    await this.ctx.streams.drain().catch(() => undefined);
    await p.progress.reset().catch(() => undefined);
    await this.ctx.ports.runner.dispose();
  }

  dispose(): void {
    void this.stop();
  }
}
