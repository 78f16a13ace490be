import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AgentRunner, RunExit, RunHandle, RunRequest } from '../ports/agentRunner';
import { resolveCommand } from '../agents/commandTemplate';
import { findMarker, type Marker } from '../agents/completionMarker';
import { MarkerWatcher } from '../agents/markerWatcher';
import { parseTaskFileName, renderTaskFile, TASK_DIR, taskFileName } from '../agents/taskFile';
import { isPipelineError } from '../errors';
import type { Disposable } from '../model/events';
import type { Pipeline } from '../pipeline';
import { decideRetry, type AttemptFailure } from './retryPolicy';
import type { StageConfig, Task } from '../model/schema';
import { isFinal } from '../model/taskLifecycle';
import type { WorkspacePort } from '../ports/workspacePort';

/**
 * The monitor: the loop that makes the pipeline do work. It is the seed's `monitor_loop`, event
 * driven: a tick runs when something happened (a task was added, a completion marker was written,
 * an agent exited, a back-off ended) and on a reconciliation rescan (the seed's 15/30/60 s adaptive
 * interval, now only the backstop for lost file events).
 *
 * A tick: apply a drained mode switch; queue the pending tasks whose prerequisites are merged; ask
 * the orchestration strategy for assignments; in shadow mode record them as decisions and stop
 * there; otherwise commit each assignment and launch the agent (worktree on the task's branch, task
 * file, command). Completion is read from the task file of the current attempt only; a stage's
 * check must pass before the stage counts; a command that ends without a marker is a failed
 * attempt, retried with back-off and then blocked. After the last stage the task's branch is merged
 * (dry run first); a conflict sends it back to the rework stage.
 *
 * Every step is at-least-once and idempotent per (task, attempt): a restarted monitor re-attaches to
 * agents that still run, reads markers written while it was down, and requeues what it cannot
 * recover.
 */

export interface MonitorOptions {
  pipeline: Pipeline;
  workspace: WorkspacePort;
  runner: AgentRunner;
  /** Path of dist/scriptedAgent.js, for the `scripted` preset. */
  scriptedAgent: string;
  /** File events as hints (default on). Off leaves only the rescan: the seed's way, for comparison. */
  fileEvents?: boolean;
  /** Overrides the configuration's rescan intervals (seconds). */
  rescanSeconds?: { idle: number; normal: number; busy: number };
  /** Stop agents when the monitor stops (default true); their tasks are requeued without a failure. */
  stopAgentsOnStop?: boolean;
}

interface InFlight {
  agentId: string;
  taskId: string;
  attempt: number;
  stage: StageConfig;
  taskFile: string;
  handle: RunHandle | null;
  startedAt: number;
  timeout: NodeJS.Timeout | undefined;
  /** Set once the outcome is being applied, so a marker and an exit cannot both apply. */
  settled: boolean;
}

export class Monitor implements Disposable {
  private readonly p: Pipeline;
  private inflight = new Map<string, InFlight>();
  private merging = new Set<string>();
  private watcher: MarkerWatcher | undefined;
  private running = false;
  private again = false;
  private stopped = true;
  private rescanTimer: NodeJS.Timeout | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private subs: Disposable[] = [];
  private lastDecisions = '';
  /** What `.pipeline/current-task.txt` last received, so it is written on change only. */
  private currentTaskWritten: string | null | undefined = undefined;
  private idleWaiters: ((r: { done: number; blocked: string[]; waiting: string[] }) => void)[] = [];
  private tickDone: Promise<void> = Promise.resolve();

  constructor(private readonly o: MonitorOptions) {
    this.p = o.pipeline;
  }

  private get config() {
    return this.p.config;
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.o.fileEvents !== false) this.watcher = new MarkerWatcher((f) => this.onHint(f));
    this.subs.push(this.p.events.on('task:added', () => this.kick()));
    this.subs.push(this.p.events.on('agent:added', () => this.kick()));
    this.subs.push(this.p.events.on('mode:orchestration', () => this.kick()));
    this.subs.push(this.p.events.on('mode:rollout', () => this.kick()));
    // A person's block or cancel, a forced mode switch or a forced agent removal (requeue) takes
    // running work away from its agent: stop the agent's process, or it runs on with no task.
    this.subs.push(
      this.p.events.on('task:transition', (e) => {
        const type = e.event.type;
        if (type === 'unblock' || type === 'cancel' || type === 'block' || type === 'requeue') {
          if (type !== 'unblock') void this.abandon(e.before);
          this.kick();
        }
      }),
    );
    // Shadow mode changes no git state: agents' worktrees are created once they get work.
    const create = this.p.state.mode === 'shadow' ? [] : Object.keys(this.p.state.agents);
    const repaired = await this.o.workspace.repair(create).catch((e: unknown) => [`repair failed: ${errText(e)}`]);
    for (const r of repaired) {
      if (r.startsWith('created the worktree')) this.p.events.emit('monitor:info', { message: r });
      else this.warn(r);
    }
    await this.recover();
    this.scheduleRescan();
    this.kick();
  }

  /** Resolves when the pipeline has nothing left to do (see 'monitor:idle'). */
  untilIdle(): Promise<{ done: number; blocked: string[]; waiting: string[] }> {
    return new Promise((r) => {
      this.idleWaiters.push(r);
      this.kick();
    });
  }

  // ------------------------------------------------------------------------------------------
  // Recovery after a restart.

  private async recover(): Promise<void> {
    const state = this.p.state;
    for (const agent of Object.values(state.agents)) {
      if (agent.status !== 'working' || !agent.current_task) continue;
      const task = state.tasks[agent.current_task];
      const stage = task ? this.stageOf(task.stage) : undefined;
      if (!task || !stage || task.status !== 'working' || task.assigned_to !== agent.id) {
        const b = this.p.newBatch();
        b.updateAgent(agent.id, { status: 'idle', current_task: null, since: null });
        await this.p.commit(b);
        continue;
      }
      const worktree = this.o.workspace.worktreePath(agent.id);
      const taskFile = join(worktree, TASK_DIR, taskFileName(task.id, task.attempt));
      const f: InFlight = {
        agentId: agent.id,
        taskId: task.id,
        attempt: task.attempt,
        stage,
        taskFile,
        handle: null,
        startedAt: Date.now(),
        timeout: undefined,
        settled: false,
      };
      this.inflight.set(agent.id, f);
      this.watcher?.watchDir(join(worktree, TASK_DIR));
      const marker = await this.readMarker(taskFile);
      if (marker) {
        await this.applyMarker(f, marker);
        continue;
      }
      const handle = await this.o.runner.reattach(this.runRequest(f, worktree, agent.command)).catch(() => null);
      if (handle) {
        f.handle = handle;
        void handle.exited.then((exit) => this.onExit(f, exit));
        this.armTimeout(f);
      } else {
        this.inflight.delete(agent.id);
        const b = this.p.newBatch();
        b.transition(task.id, {
          type: 'requeue',
          reason: `the monitor restarted and attempt ${task.attempt} of ${agent.id} was no longer running`,
        });
        b.updateAgent(agent.id, { status: 'idle', current_task: null, since: null });
        await this.p.commit(b);
      }
    }
    for (const t of Object.values(this.p.state.tasks)) if (t.status === 'merging') void this.merge(t.id);
  }

  // ------------------------------------------------------------------------------------------
  // The tick.

  /** Schedules a tick; ticks never overlap, and a kick during one runs another after it. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.tickDone = this.tick()
      .catch((e: unknown) => this.warn(`tick failed: ${errText(e)}`))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async tick(): Promise<void> {
    if (!this.p.isLeader) return;
    await this.p.applyPendingSwitch();
    const state = this.p.state;
    const shadow = state.mode === 'shadow';

    const promote = this.p.scheduler.readyPending().filter((id) => this.p.eligible(state.tasks[id]!));
    if (promote.length) {
      const b = this.p.newBatch();
      for (const id of promote) b.transition(id, { type: 'ready' });
      await this.p.commit(b);
    }
    if (state.pending_switch) return this.checkIdle();

    const plan = this.p.scheduler.plan(state.orchestration_mode, state, {
      now: this.p.clock.now(),
      eligible: (t) => this.p.eligible(t),
    });
    if (plan.currentTask !== undefined && plan.currentTask !== state.current_task) {
      const b = this.p.newBatch();
      b.record({ type: 'sequential.current', id: plan.currentTask });
      await this.p.commit(b);
    }
    if (state.orchestration_mode === 'sequential' && state.current_task !== this.currentTaskWritten) {
      this.currentTaskWritten = state.current_task;
      await this.p.writeCurrentTaskFile().catch(() => undefined);
    }
    this.armWake(plan.wakeAt);

    if (shadow) {
      const lines = plan.assignments.map((a) => `would start ${a.agentId} (${a.stage}) on ${a.taskId}`);
      const key = lines.join('\n');
      if (lines.length && key !== this.lastDecisions) {
        const b = this.p.newBatch();
        for (const text of lines) b.record({ type: 'decision', text, at: b.at });
        await this.p.commit(b);
        for (const text of lines) this.p.events.emit('pipeline:decision', { text, shadow: true });
      }
      this.lastDecisions = key;
      return this.checkIdle(true);
    }

    for (const a of plan.assignments) {
      const task = state.tasks[a.taskId]!;
      const stage = this.stageOf(a.stage);
      if (!stage) continue;
      const b = this.p.newBatch();
      const after = b.transition(a.taskId, { type: 'assign', agent: a.agentId, attempt: task.attempt + 1 });
      b.updateAgent(a.agentId, { status: 'working', current_task: a.taskId, since: b.at });
      await this.p.commit(b);
      this.p.events.emit('pipeline:decision', {
        text: `started ${a.agentId} (${a.stage}) on ${a.taskId}`,
        shadow: false,
      });
      void this.launch(after, stage);
    }
    this.checkIdle();
  }

  private stageOf(name: string): StageConfig | undefined {
    return this.config.stages.find((s) => s.name === name);
  }

  private isLastStage(stage: StageConfig): boolean {
    return this.config.stages[this.config.stages.length - 1]?.name === stage.name;
  }

  private baseBranch(): string {
    return this.p.state.mode === 'pilot' ? this.config.pilotBranch : this.config.targetBranch;
  }

  // ------------------------------------------------------------------------------------------
  // Launching an agent on a stage.

  private runRequest(f: InFlight, worktree: string, command: string): RunRequest {
    const resolved = resolveCommand(
      command,
      { taskFile: f.taskFile, taskId: f.taskId, worktree, role: f.stage.role },
      { scriptedAgent: this.o.scriptedAgent },
    );
    return {
      agentId: f.agentId,
      taskId: f.taskId,
      attempt: f.attempt,
      role: f.stage.role,
      worktree,
      taskFile: f.taskFile,
      command: resolved,
      logFile: join(this.p.home.logsDir, 'agents', `${f.agentId}.log`),
    };
  }

  private async launch(task: Task, stage: StageConfig): Promise<void> {
    const agentId = task.assigned_to!;
    const agent = this.p.state.agents[agentId];
    if (!agent) return;
    const f: InFlight = {
      agentId,
      taskId: task.id,
      attempt: task.attempt,
      stage,
      taskFile: '',
      handle: null,
      startedAt: Date.now(),
      timeout: undefined,
      settled: false,
    };
    this.inflight.set(agentId, f);
    try {
      const base = this.baseBranch();
      if (base !== this.config.targetBranch) await this.o.workspace.ensureBranch(base, this.config.targetBranch);
      const prepared = await this.o.workspace.prepare(agentId, task.id, base);
      const dir = join(prepared.worktree, TASK_DIR);
      await mkdir(dir, { recursive: true });
      f.taskFile = join(dir, taskFileName(task.id, task.attempt));
      const prior = await this.o.workspace.priorWork(task.id, base);
      prior.notes = task.history
        .filter((h) => h.note && h.event !== 'assign')
        .map((h) => `${h.stage}: ${h.event}: ${h.note}`);
      const lastConflict = [...task.history].reverse().find((h) => h.event === 'conflict');
      const conflictFiles = prepared.conflicts.length
        ? prepared.conflicts
        : lastConflict?.note
          ? lastConflict.note.replace(/^merge conflict in /, '').split(', ')
          : [];
      const lastCheck = await this.lastCheckFailure(task);
      await writeFile(
        f.taskFile,
        renderTaskFile({
          task,
          stage,
          isLastStage: this.isLastStage(stage),
          attempt: task.attempt,
          agentId,
          targetBranch: base,
          prerequisites: task.prerequisites.map((id) => ({
            id,
            title: this.p.state.tasks[id]?.title ?? id,
            mergedCommit: this.p.state.tasks[id]?.merged_commit ?? null,
          })),
          prior,
          ...(conflictFiles.length ? { conflictFiles } : {}),
          ...(lastCheck ? { lastCheckFailure: lastCheck } : {}),
        }),
      );
      // A stop, block, cancel or requeue while this start was being prepared settled it (finding no
      // process to stop): start nothing, or an agent would run with no monitor and no task.
      if (f.settled || this.stopped) return;
      this.watcher?.watchDir(dir);
      const req = this.runRequest(f, prepared.worktree, agent.command);
      f.handle = await this.o.runner.start(req);
      if (f.settled || this.stopped) {
        await f.handle.stop();
        return;
      }
      this.p.events.emit('agent:started', {
        agentId,
        taskId: task.id,
        stage: stage.name,
        attempt: task.attempt,
        command: req.command.display,
        at: Date.now(),
      });
      this.armTimeout(f);
      void f.handle.exited.then((exit) => this.onExit(f, exit));
      // The agent may have finished before the watcher saw its directory.
      void this.checkMarker(f);
    } catch (e) {
      await this.fail(f, {
        reason: `could not start ${agentId} on ${task.id}: ${errText(e)}`,
        class: isPipelineError(e) && e.code === 'usage' ? 'permanent' : 'transient',
      });
    }
  }

  private armTimeout(f: InFlight): void {
    const secs = f.stage.timeoutSeconds;
    if (!secs) return;
    f.timeout = setTimeout(() => {
      void (async () => {
        if (f.settled) return;
        await f.handle?.stop();
        await this.fail(f, { reason: `timed out after ${secs} s in ${f.stage.name}`, class: 'transient' });
      })();
    }, secs * 1000);
    f.timeout.unref();
  }

  // ------------------------------------------------------------------------------------------
  // Completion.

  private onHint(file: string): void {
    const parsed = parseTaskFileName(basename(file));
    if (!parsed) return;
    for (const f of this.inflight.values()) {
      if (f.taskId === parsed.taskId && f.attempt === parsed.attempt && f.taskFile === file) void this.checkMarker(f);
    }
  }

  private async readMarker(file: string): Promise<Marker | null> {
    try {
      const text = await readFile(file, 'utf8');
      return findMarker(text);
    } catch {
      return null;
    }
  }

  private async checkMarker(f: InFlight): Promise<boolean> {
    if (f.settled || !f.taskFile) return false;
    const m = await this.readMarker(f.taskFile);
    if (!m || f.settled) return false;
    await this.applyMarker(f, m);
    return true;
  }

  /** Is this (task, attempt) still the one the state says is running? Late markers are ignored. */
  private current(f: InFlight): Task | null {
    const t = this.p.state.tasks[f.taskId];
    return t && t.status === 'working' && t.attempt === f.attempt && t.assigned_to === f.agentId ? t : null;
  }

  private async applyMarker(f: InFlight, m: Marker): Promise<void> {
    if (f.settled) return;
    f.settled = true;
    if (f.timeout) clearTimeout(f.timeout);
    const task = this.current(f);
    if (!task) return this.release(f);
    if (m.kind === 'completed' && f.stage.check) {
      const passed = await this.runCheck(f, task);
      if (!passed) {
        f.settled = false;
        return this.fail(f, { reason: `the ${f.stage.name} check \`${f.stage.check}\` failed`, class: 'transient' });
      }
    }
    try {
      await this.o.workspace.commitAll(f.agentId, `${task.id} ${f.stage.name}: work left uncommitted by ${f.agentId}`);
    } catch (e) {
      this.warn(`could not commit what ${f.agentId} left for ${task.id}: ${errText(e)}`, task.id, f.agentId);
    }
    // While the check or the commit ran, the task may have been blocked, cancelled or requeued (a
    // stop): then this marker no longer applies, and its transition would be illegal.
    if (!this.current(f)) return this.release(f);
    const b = this.p.newBatch();
    if (m.kind === 'completed') {
      const idx = this.config.stages.findIndex((s) => s.name === f.stage.name);
      const next = this.config.stages[idx + 1]?.name ?? null;
      b.transition(task.id, { type: 'complete', nextStage: next, note: `${f.stage.name} done by ${f.agentId}` });
    } else if (m.kind === 'blocked') {
      b.transition(task.id, { type: 'block', reason: `${f.agentId} (${f.stage.name}): ${m.reason}` });
    } else if (this.isLastStage(f.stage)) {
      b.transition(task.id, { type: 'changes_requested', reworkStage: this.config.reworkStage, reason: m.reason });
    } else {
      b.transition(task.id, {
        type: 'complete',
        nextStage: this.config.stages[this.config.stages.findIndex((s) => s.name === f.stage.name) + 1]?.name ?? null,
        note: `changes requested outside review, taken as done: ${m.reason}`,
      });
    }
    b.updateAgent(f.agentId, { status: 'idle', current_task: null, since: null });
    await this.p.commit(b);
    this.inflight.delete(f.agentId);
    // The agent said it is done; a command that lingers would share the worktree with the next task.
    void f.handle?.stop();
    if (this.p.state.tasks[task.id]?.status === 'merging') void this.merge(task.id);
    this.kick();
  }

  private async onExit(f: InFlight, exit: RunExit): Promise<void> {
    const marker = await this.checkMarker(f);
    this.p.events.emit('agent:exited', {
      agentId: f.agentId,
      taskId: f.taskId,
      attempt: f.attempt,
      code: exit.code,
      signal: exit.signal,
      marker: marker || f.settled,
    });
    if (f.settled) return;
    const how =
      exit.startError ??
      (exit.signal ? `was killed by ${exit.signal}` : exit.code === null ? 'ended' : `exited with code ${exit.code}`);
    await this.fail(f, {
      reason: `${f.agentId} ${how} without a completion marker`,
      class: exit.startError ? 'permanent' : 'transient',
    });
  }

  private async fail(f: InFlight, failure: AttemptFailure): Promise<void> {
    if (f.settled) return;
    f.settled = true;
    if (f.timeout) clearTimeout(f.timeout);
    this.inflight.delete(f.agentId);
    const task = this.current(f);
    if (!task) return this.release(f);
    const d = decideRetry(task.failures, failure, this.config.retry);
    const b = this.p.newBatch();
    if (d.retry)
      b.transition(task.id, {
        type: 'fail',
        reason: failure.reason,
        notBefore: new Date(this.p.clock.now() + d.delayMs).toISOString(),
      });
    else b.transition(task.id, { type: 'block', reason: d.reason });
    b.updateAgent(f.agentId, { status: 'idle', current_task: null, since: null });
    // The transition event says what happened; no separate warning, so nothing is reported twice.
    await this.p.commit(b);
    this.kick();
  }

  /** The in-flight record no longer matches the state (cancelled, blocked by hand): free the agent. */
  private async release(f: InFlight): Promise<void> {
    this.inflight.delete(f.agentId);
    const a = this.p.state.agents[f.agentId];
    if (a && a.current_task === f.taskId && a.status === 'working') {
      const b = this.p.newBatch();
      b.updateAgent(f.agentId, { status: 'idle', current_task: null, since: null });
      await this.p.commit(b);
    }
    this.kick();
  }

  /** A person blocked or cancelled a task that was running: stop its agent. */
  private async abandon(before: Task): Promise<void> {
    if (before.status !== 'working' || !before.assigned_to) return;
    const f = this.inflight.get(before.assigned_to);
    if (!f || f.taskId !== before.id) return;
    f.settled = true;
    if (f.timeout) clearTimeout(f.timeout);
    this.inflight.delete(before.assigned_to);
    await f.handle?.stop();
  }

  /**
   * Stops an agent's current run, if any, and puts its task back in its queue without counting a
   * failure. `offline` keeps the agent from new work until it is started again (restart = online).
   */
  async interruptAgent(agentId: string, offline: boolean): Promise<void> {
    const f = this.inflight.get(agentId);
    const b = this.p.newBatch();
    if (f) {
      f.settled = true;
      if (f.timeout) clearTimeout(f.timeout);
      this.inflight.delete(agentId);
      await f.handle?.stop();
      if (this.current(f))
        b.transition(f.taskId, {
          type: 'requeue',
          reason: `${agentId} was ${offline ? 'stopped' : 'restarted'} by a person`,
        });
    }
    b.updateAgent(agentId, { status: offline ? 'offline' : 'idle', current_task: null, since: null });
    await this.p.commit(b);
    this.kick();
  }

  private evidenceFile(taskId: string, stage: string, attempt: number): string {
    return join(this.p.home.evidenceDir, taskId, `${stage}.attempt-${attempt}.log`);
  }

  private async lastCheckFailure(task: Task): Promise<string | undefined> {
    const last = [...task.history].reverse().find((h) => h.event === 'fail');
    if (!last?.note?.includes('check')) return undefined;
    const prevAttempt = task.attempt - 1;
    return readFile(this.evidenceFile(task.id, task.stage, prevAttempt), 'utf8').catch(() => undefined);
  }

  /** Runs the stage's check in the worktree; its output is kept as evidence either way. */
  private async runCheck(f: InFlight, task: Task): Promise<boolean> {
    const evidence = this.evidenceFile(task.id, f.stage.name, f.attempt);
    await mkdir(join(this.p.home.evidenceDir, task.id), { recursive: true });
    const worktree = this.o.workspace.worktreePath(f.agentId);
    const started = Date.now();
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('sh', ['-c', f.stage.check!], {
        cwd: worktree,
        env: { ...process.env, PIPELINE_TASK_ID: task.id, PIPELINE_ROLE: f.stage.role },
        detached: true,
      });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.stderr.on('data', (c: Buffer) => chunks.push(c));
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }, 10 * 60_000);
      child.on('error', (e) => resolve({ code: null, output: `cannot run the check: ${e.message}` }));
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, output: Buffer.concat(chunks).toString('utf8') });
      });
    });
    const passed = code === 0;
    await writeFile(
      evidence,
      `$ ${f.stage.check}\n# in ${worktree}, ${new Date(started).toISOString()}, exit ${code}\n${output}`,
    );
    this.p.events.emit('check:finished', {
      taskId: task.id,
      stage: f.stage.name,
      passed,
      evidence,
      durationMs: Date.now() - started,
    });
    return passed;
  }

  // ------------------------------------------------------------------------------------------
  // Merging.

  private async merge(taskId: string): Promise<void> {
    if (this.merging.has(taskId) || this.stopped) return;
    this.merging.add(taskId);
    const started = Date.now();
    try {
      const task = this.p.state.tasks[taskId];
      if (!task || task.status !== 'merging') return;
      const into = this.baseBranch();
      if (into !== this.config.targetBranch) await this.o.workspace.ensureBranch(into, this.config.targetBranch);
      const r = await this.o.workspace.merge(taskId, into, `Merge ${task.branch}: ${task.id} ${task.title}`);
      const b = this.p.newBatch();
      if (r.merged) b.transition(taskId, { type: 'merged', commit: r.commit });
      else {
        // A rework that leaves the conflict in place would go round for ever: after
        // retry.maxAttempts conflicting merges since the task was last unblocked, a person decides.
        const lastUnblock = task.history.map((h) => h.event).lastIndexOf('unblock');
        const rounds = task.history.slice(lastUnblock + 1).filter((h) => h.event === 'conflict').length + 1;
        if (rounds >= this.config.retry.maxAttempts) {
          b.transition(taskId, {
            type: 'block',
            reason: `merging into ${into} conflicted in ${r.conflicts.join(', ') || 'unknown files'} ${rounds} times in a row; resolve it on ${task.branch} (merge ${into} into it), then unblock the task`,
          });
        } else b.transition(taskId, { type: 'conflict', reworkStage: this.config.reworkStage, files: r.conflicts });
      }
      await this.p.commit(b);
      this.p.events.emit('merge:finished', {
        taskId,
        into,
        commit: r.merged ? r.commit : null,
        conflicts: r.merged ? [] : r.conflicts,
        durationMs: Date.now() - started,
      });
    } catch (e) {
      this.warn(`merging ${taskId} failed: ${errText(e)}`, taskId);
      const t = this.p.state.tasks[taskId];
      if (t?.status === 'merging') {
        const b = this.p.newBatch();
        b.transition(taskId, { type: 'block', reason: `the merge failed: ${errText(e)}` });
        await this.p.commit(b).catch(() => undefined);
      }
    } finally {
      this.merging.delete(taskId);
      this.kick();
    }
  }

  // ------------------------------------------------------------------------------------------
  // Idle, timers, stopping.

  private checkIdle(shadow = false): void {
    if (this.inflight.size > 0 || this.merging.size > 0 || this.again) return;
    const tasks = Object.values(this.p.state.tasks);
    const now = this.p.clock.now();
    const waiting: string[] = [];
    const blocked: string[] = [];
    let done = 0;
    for (const t of tasks) {
      if (isFinal(t.status)) done++;
      else if (t.status === 'blocked') blocked.push(t.id);
      else if (t.status === 'queued' && t.not_before && Date.parse(t.not_before) > now && !shadow)
        return; // a retry is due
      else if (t.status === 'working' || t.status === 'merging') return;
      // Not for this rollout mode (a task without the pilot label in pilot mode): not waiting, held.
      else if (this.p.eligible(t)) waiting.push(t.id);
    }
    if (!shadow && this.p.state.pending_switch) return;
    if (!shadow && waiting.some((id) => this.p.state.tasks[id]?.status === 'queued')) {
      // Queued work that no plan assigns: no agent for its role, or not eligible in pilot mode.
      const plan = this.p.scheduler.plan(this.p.state.orchestration_mode, this.p.state, {
        now,
        eligible: (t) => this.p.eligible(t),
      });
      if (plan.assignments.length) return;
    }
    const r = { done, blocked, waiting };
    this.p.events.emit('monitor:idle', r);
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w(r);
  }

  private armWake(at: number | null): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    if (at === null) return;
    this.wakeTimer = setTimeout(() => this.kick(), Math.max(0, at - this.p.clock.now()) + 5);
    this.wakeTimer.unref();
  }

  /** The reconciliation rescan: reads every in-flight task file; its interval adapts to the load. */
  private scheduleRescan(): void {
    if (this.stopped) return;
    const r = this.o.rescanSeconds ?? this.config.rescanSeconds;
    const active = this.inflight.size;
    const secs = active === 0 ? r.idle : active > 3 ? r.busy : r.normal;
    this.rescanTimer = setTimeout(() => {
      void (async () => {
        for (const f of [...this.inflight.values()]) await this.checkMarker(f);
        this.kick();
        this.scheduleRescan();
      })();
    }, secs * 1000);
  }

  /** Reads every in-flight task file now (the rescan's work, for tests and benchmarks). */
  async rescanNow(): Promise<void> {
    for (const f of [...this.inflight.values()]) await this.checkMarker(f);
    this.kick();
  }

  private warn(message: string, taskId?: string, agentId?: string): void {
    this.p.events.emit('monitor:warning', { message, ...(taskId ? { taskId } : {}), ...(agentId ? { agentId } : {}) });
  }

  /**
   * Stops the loop; by default also stops running agents and requeues their tasks (no failure
   * counted). With `stopAgents: false` they run on, for the next monitor to re-attach to.
   */
  async stop(opts: { stopAgents?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const s of this.subs) s.dispose();
    this.subs = [];
    this.watcher?.dispose();
    await this.tickDone;
    if (opts.stopAgents ?? this.o.stopAgentsOnStop ?? true) {
      for (const f of [...this.inflight.values()]) {
        f.settled = true;
        if (f.timeout) clearTimeout(f.timeout);
        await f.handle?.stop();
        const task = this.current(f);
        if (task && this.p.isLeader) {
          const b = this.p.newBatch();
          b.transition(task.id, { type: 'requeue', reason: 'the monitor stopped' });
          b.updateAgent(f.agentId, { status: 'idle', current_task: null, since: null });
          await this.p.commit(b).catch(() => undefined);
        }
      }
      this.inflight.clear();
      // The requeues above leave nothing in flight, so a drained orchestration switch applies now
      // rather than waiting for the next monitor.
      if (this.p.isLeader)
        await this.p
          .applyPendingSwitch()
          .catch((e: unknown) => this.warn(`could not apply the pending mode switch: ${errText(e)}`));
    }
    await this.o.runner.dispose();
  }

  dispose(): void {
    void this.stop();
  }
}

function errText(e: unknown): string {
  return isPipelineError(e) ? e.message : e instanceof Error ? e.message : String(e);
}
