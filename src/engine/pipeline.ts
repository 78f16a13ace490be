import { writeFile } from 'node:fs/promises';
import { validateCommand } from './agents/commandTemplate';
import { loadConfig } from './configFile';
import { systemClock, type Clock } from './clock';
import { PipelineError } from './errors';
import { TypedEvents, type Disposable } from './events';
import { assertName } from './ids';
import { InboxRequestWithdrawn, InboxServer, sendInboxRequest } from './inbox';
import { findHome, type PipelineHome } from './pipelineHome';
import type { PipelineEventMap } from './pipelineEvents';
import { rolloutCheck, type GitFacts, type RolloutCheckResult } from './rolloutCheck';
import {
  rolloutModeSchema,
  type Agent,
  type PipelineConfig,
  type PipelineState,
  type Priority,
  type RolloutMode,
  type Task,
} from './schema';
import { SchedulerIndex, type PlanResult } from './scheduler/schedulerIndex';
import { getStrategy } from './scheduler/strategyRegistry';
import { StateBatch } from './stateBatch';
import { pipelineStateCodec } from './stateCodec';
import type { StateRecord, TaskEdit } from './stateRecords';
import { statusReport, type StatusReport } from './statusReport';
import { LeaderLease, type LeaderInfo } from './store/leaderLease';
import { StateStore } from './store/stateStore';
import { buildTasks, type NewTask } from './taskFactory';
import { isFinal } from './taskLifecycle';

/**
 * The engine's facade: one pipeline (one `.pipeline/` home), opened by the CLI, by `pipeline run`
 * and by the extension alike.
 *
 * Exactly one process leads a pipeline at a time (a lease with a fencing epoch, see
 * store/leaderLease). The leader owns the state store and the scheduler and applies every change;
 * other processes follow read-only, and their mutating calls are sent to the leader through the
 * inbox. A follower that wants to lead takes over when the leader's lease lapses.
 */

export type PipelineRole = 'lead' | 'follow' | 'auto';

export interface OpenPipelineOptions {
  /** A directory inside the repository; the home is found upwards from it. */
  cwd?: string;
  home?: PipelineHome;
  /** `lead`: lead or fail naming the leader; `follow`: read-only; `auto`: lead if nobody does. */
  role?: PipelineRole;
  /** Who this process is, shown to other processes: "pipeline run", "VS Code window". */
  label?: string;
  clock?: Clock;
  /** A follower with this set takes over the leadership when the leader's lease lapses. */
  takeOver?: boolean;
  /** How often a follower re-reads the state (ms). */
  followIntervalMs?: number;
  /** Adjusts the configuration after it is read and validated (the extension fills in stage checks from its settings). */
  adjustConfig?: (c: PipelineConfig) => PipelineConfig;
}

export interface SwitchOptions {
  drain?: boolean;
  force?: boolean;
}

export interface SwitchResult {
  /** `switched`: done now; `pending`: applies once in-flight work drains; `unchanged`: already in that mode. */
  outcome: 'switched' | 'pending' | 'unchanged';
  mode: string;
  requeued: string[];
}

export interface AddAgentOptions {
  id: string;
  role: string;
  command: string;
}

/** Mutations a follower forwards to the leader; the inbox dispatches only these. */
const FORWARDED = [
  'addTasks',
  'addAgent',
  'removeAgent',
  'editTask',
  'blockTask',
  'unblockTask',
  'retryTask',
  'cancelTask',
  'setOrchestrationMode',
  'setRolloutMode',
] as const;
type ForwardedMethod = (typeof FORWARDED)[number];
/** Times a change is sent again after its leader stopped leading before taking it. */
const MAX_FORWARD_ATTEMPTS = 50;

export class Pipeline implements Disposable {
  readonly events = new TypedEvents<PipelineEventMap>();
  private index: SchedulerIndex;
  private inbox: InboxServer | undefined;
  private followTimer: NodeJS.Timeout | undefined;
  private leaseSub: Disposable | undefined;
  private closed = false;
  private followBusy = false;

  private constructor(
    readonly home: PipelineHome,
    readonly config: PipelineConfig,
    private store: StateStore<PipelineState, StateRecord>,
    private lease: LeaderLease | null,
    private otherLeader: LeaderInfo | null,
    readonly clock: Clock,
    private readonly opts: OpenPipelineOptions,
  ) {
    this.index = SchedulerIndex.build(store.state, config);
  }

  static async open(opts: OpenPipelineOptions = {}): Promise<Pipeline> {
    const home = opts.home ?? (await findHome(opts.cwd ?? process.cwd()));
    const loaded = await loadConfig(home.configFile);
    const config = opts.adjustConfig ? opts.adjustConfig(loaded) : loaded;
    const role = opts.role ?? 'auto';
    let lease: LeaderLease | null = null;
    let leader: LeaderInfo | null = null;
    if (role !== 'follow') {
      const r = await LeaderLease.acquire(home.leaderDir, { label: opts.label ?? `pid ${process.pid}` });
      if (r instanceof LeaderLease) lease = r;
      else {
        leader = r.leader;
        if (role === 'lead') throw notLeaderError(leader);
      }
    } else {
      leader = await LeaderLease.current(home.leaderDir);
    }
    let store: StateStore<PipelineState, StateRecord>;
    try {
      store = await StateStore.open({
        dir: home.stateDir,
        codec: pipelineStateCodec,
        snapshotEvery: config.snapshotEvery,
        ...(lease ? { lease } : {}),
      });
    } catch (e) {
      await lease?.release();
      throw e;
    }
    const p = new Pipeline(home, config, store, lease, leader, opts.clock ?? systemClock, opts);
    await p.afterOpen();
    return p;
  }

  private async afterOpen(): Promise<void> {
    if (this.lease) await this.becomeLeader();
    else this.startFollowing();
  }

  private async becomeLeader(): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    this.leaseSub = lease.onLost((leader) => void this.loseLeadership(leader));
    this.inbox = new InboxServer(this.home.inboxDir, (method, args) => this.dispatch(method, args));
    await this.inbox.start();
  }

  private async loseLeadership(leader: LeaderInfo | null): Promise<void> {
    if (this.closed || !this.lease) return;
    await this.demote(leader, false);
    this.events.emit('leader:lost', { leader });
  }

  /** Leading → following: the store is reopened read-only and the follower heartbeat starts. */
  private async demote(leader: LeaderInfo | null, release: boolean): Promise<void> {
    this.inbox?.dispose();
    this.inbox = undefined;
    this.leaseSub?.dispose();
    this.leaseSub = undefined;
    const lease = this.lease;
    this.lease = null;
    this.otherLeader = leader;
    const old = this.store;
    await old.close().catch(() => undefined);
    if (release) await lease?.release();
    this.store = await StateStore.open({
      dir: this.home.stateDir,
      codec: pipelineStateCodec,
      snapshotEvery: this.config.snapshotEvery,
    });
    this.index = SchedulerIndex.build(this.store.state, this.config);
    this.startFollowing();
  }

  /** Following → leading with a lease just acquired: the store is reopened as the writer. */
  private async promote(lease: LeaderLease): Promise<void> {
    if (this.followTimer) clearInterval(this.followTimer);
    this.followTimer = undefined;
    const old = this.store;
    try {
      this.store = await StateStore.open({
        dir: this.home.stateDir,
        codec: pipelineStateCodec,
        snapshotEvery: this.config.snapshotEvery,
        lease,
      });
    } catch (e) {
      await lease.release();
      this.startFollowing();
      throw e;
    }
    await old.close().catch(() => undefined);
    this.lease = lease;
    this.otherLeader = null;
    this.index = SchedulerIndex.build(this.store.state, this.config);
    await this.becomeLeader();
  }

  private async tryAcquire(): Promise<LeaderLease | null> {
    const r = await LeaderLease.acquire(this.home.leaderDir, { label: this.opts.label ?? `pid ${process.pid}` });
    if (r instanceof LeaderLease) return r;
    this.otherLeader = r.leader;
    return null;
  }

  /** Takes the lead now; throws `not-leader` naming the process that leads instead. */
  async lead(): Promise<void> {
    if (this.lease) return;
    const lease = await this.tryAcquire();
    if (!lease) throw notLeaderError(this.otherLeader);
    await this.promote(lease);
    this.events.emit('leader:acquired', { leader: lease.info });
    this.events.emit('state:changed', { seq: this.store.seq });
  }

  /** Gives up the lead (if held) and follows read-only from now on. */
  async follow(): Promise<void> {
    if (!this.lease) return;
    await this.demote(null, true);
    this.events.emit('state:changed', { seq: this.store.seq });
  }

  private startFollowing(): void {
    if (this.followTimer || this.closed) return;
    this.followTimer = setInterval(() => void this.followTick(), this.opts.followIntervalMs ?? 500);
    this.followTimer.unref();
  }

  /** A follower's heartbeat: catch up with the leader's writes, and take over a lapsed lease. */
  private async followTick(): Promise<void> {
    if (this.followBusy || this.closed || this.lease) return;
    this.followBusy = true;
    try {
      if (await this.store.refresh()) {
        this.index = SchedulerIndex.build(this.store.state, this.config);
        this.events.emit('state:changed', { seq: this.store.seq });
      }
      this.otherLeader = await LeaderLease.current(this.home.leaderDir);
      if (this.opts.takeOver && !this.otherLeader) {
        const lease = await this.tryAcquire();
        if (lease) {
          await this.promote(lease);
          this.events.emit('leader:acquired', { leader: lease.info });
          this.events.emit('state:changed', { seq: this.store.seq });
        }
      }
    } catch {
      // A failed heartbeat is retried on the next one; the follower keeps its last good state.
    } finally {
      this.followBusy = false;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Reading.

  get state(): Readonly<PipelineState> {
    return this.store.state;
  }
  get isLeader(): boolean {
    return this.lease !== null;
  }
  /** Who leads: this process's lease when it leads, else the other leader as last seen. */
  get leader(): LeaderInfo | null {
    return this.lease ? this.lease.info : this.otherLeader;
  }
  get storeWarnings(): readonly string[] {
    return this.store.warnings;
  }
  get scheduler(): SchedulerIndex {
    return this.index;
  }

  task(id: string): Task {
    const t = this.store.state.tasks[id];
    if (!t)
      throw new PipelineError('unknown-task', `Unknown task ${id}.`, {
        where: id,
        fix: 'List the tasks with `pipeline task list`.',
      });
    return t;
  }

  status(): StatusReport {
    return statusReport(this.store.state, this.config, this.leader);
  }

  rolloutCheck(git: GitFacts | null): RolloutCheckResult {
    return rolloutCheck({ state: this.store.state, config: this.config, storeWarnings: this.store.warnings, git });
  }

  /** Agents with work in progress, as "agent (TASK-ID)". */
  busyAgents(): string[] {
    return Object.values(this.store.state.agents)
      .filter((a) => a.status === 'working')
      .map((a) => `${a.id} (${a.current_task ?? 'no task'})`);
  }

  /**
   * What the scheduler would do now, without doing it: tasks that would enter the pipeline and the
   * assignments it would make. Works on a copy, so it is safe in any process.
   */
  dryRun(): { promote: string[]; plan: PlanResult; lines: string[] } {
    const copy = structuredClone<PipelineState>(this.store.state);
    const promote = this.index.readyPending().filter((id) => this.eligible(copy.tasks[id]!));
    for (const id of promote) copy.tasks[id] = { ...copy.tasks[id]!, status: 'queued' };
    const idx = SchedulerIndex.build(copy, this.config);
    const plan = idx.plan(copy.orchestration_mode, copy, { now: this.clock.now(), eligible: (t) => this.eligible(t) });
    const lines = [
      ...promote.map((id) => `would queue ${id} for ${copy.tasks[id]!.stage} (prerequisites merged)`),
      ...plan.assignments.map(
        (a) => `would start ${a.agentId} (${a.stage}) on ${a.taskId}: ${copy.tasks[a.taskId]!.title}`,
      ),
    ];
    if (copy.pending_switch)
      lines.push(`a switch to ${copy.pending_switch} mode waits for in-flight work to drain: no new work starts`);
    return { promote, plan, lines };
  }

  /** In pilot mode only tasks labelled for the pilot run. */
  eligible(t: Task): boolean {
    return this.store.state.mode !== 'pilot' || t.labels.includes(this.config.pilotLabel);
  }

  // ------------------------------------------------------------------------------------------
  // Committing: every change goes through a batch, is synced, then indexed, then announced.

  newBatch(): StateBatch {
    return new StateBatch(this.store.state, this.clock.iso());
  }

  async commit(batch: StateBatch): Promise<void> {
    if (batch.empty) return;
    if (!this.lease) throw notLeaderError(this.otherLeader);
    await this.store.commit(batch.records);
    for (const c of batch.taskChanges) this.index.taskChanged(c.before, c.after);
    for (const c of batch.agentChanges) this.index.agentChanged(c.before, c.after);
    for (const c of batch.taskChanges) {
      if (!c.before) this.events.emit('task:added', { task: c.after });
      else if (c.event) this.events.emit('task:transition', { before: c.before, after: c.after, event: c.event });
      else this.events.emit('task:edited', { task: c.after });
    }
    for (const c of batch.agentChanges) {
      if (!c.before && c.after) this.events.emit('agent:added', { agent: c.after });
      else if (c.before && !c.after) this.events.emit('agent:removed', { agent: c.before });
      else if (c.before && c.after) this.events.emit('agent:changed', { before: c.before, after: c.after });
    }
    this.events.emit('state:changed', { seq: this.store.seq });
  }

  /**
   * Runs a mutation where it belongs: here when this process leads; when nobody leads, here too,
   * under a lease taken for just this change (so a window or a CLI command can add a task while no
   * pipeline runs); otherwise sent to the leader through the inbox.
   */
  private async forward<T>(method: ForwardedMethod, args: unknown[], local: () => Promise<T>): Promise<T> {
    let result: T;
    for (let attempt = 0; ; attempt++) {
      if (this.lease) return local();
      if (!(await LeaderLease.current(this.home.leaderDir))) {
        const lease = await this.tryAcquire();
        if (lease) {
          await this.promote(lease);
          try {
            return await local();
          } finally {
            // Serve the changes other processes queued behind this short lead before letting go.
            await this.inbox?.drain();
            await this.demote(null, true);
          }
        }
      }
      const leader = this.otherLeader;
      const label = leader ? `${leader.label}, pid ${leader.pid} on ${leader.host}` : undefined;
      const leaderGone = async () => !(await LeaderLease.current(this.home.leaderDir));
      try {
        result = (await sendInboxRequest(this.home.inboxDir, method, args, {
          leaderGone,
          ...(label ? { leaderLabel: label } : {}),
        })) as T;
        break;
      } catch (e) {
        // That leader (a short-lived one, leading for its own change) stopped before taking the
        // request, which was taken back unapplied: try again, leading now if nobody else does.
        if (e instanceof InboxRequestWithdrawn && attempt < MAX_FORWARD_ATTEMPTS) continue;
        throw e;
      }
    }
    if (await this.store.refresh()) {
      this.index = SchedulerIndex.build(this.store.state, this.config);
      this.events.emit('state:changed', { seq: this.store.seq });
    }
    return result;
  }

  /** The inbox's dispatcher: only the forwarded methods, with their arguments as sent. */
  private async dispatch(method: string, args: unknown[]): Promise<unknown> {
    if (!(FORWARDED as readonly string[]).includes(method))
      throw new PipelineError('usage', `Unknown request ${method}.`);
    // A request taken while leading is applied here or refused; never forwarded again from inside
    // the inbox (that re-entered forward() and promoted while demoting, closing the store under it).
    if (!this.lease) throw notLeaderError(this.otherLeader);
    const fn = (this as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!;
    return fn.apply(this, args);
  }

  // ------------------------------------------------------------------------------------------
  // Mutations (forwarded to the leader when this process follows).

  addTasks(items: NewTask[]): Promise<Task[]> {
    return this.forward('addTasks', [items], async () => {
      const batch = this.newBatch();
      const tasks = buildTasks(items, this.store.state, this.config, batch.at);
      this.index.checkNewTasks(tasks);
      for (const t of tasks) batch.addTask(t);
      await this.commit(batch);
      return tasks;
    });
  }

  addAgent(o: AddAgentOptions): Promise<Agent> {
    return this.forward('addAgent', [o], async () => {
      assertName(o.id, 'agent id', 'agent id');
      assertName(o.role, 'role', '--role');
      const roles = [...new Set(this.config.stages.map((s) => s.role))];
      if (!roles.includes(o.role)) {
        throw new PipelineError('unknown-role', `No stage is worked by the role "${o.role}".`, {
          where: '--role',
          fix: `Use one of ${roles.join(', ')}, or add a stage with this role to ${this.home.configFile}.`,
        });
      }
      if (this.store.state.agents[o.id])
        throw new PipelineError('duplicate-id', `Agent ${o.id} exists already.`, {
          where: o.id,
          fix: 'Choose another id, or remove the agent first.',
        });
      if (!o.command.trim())
        throw new PipelineError('usage', 'An agent needs a command (a preset name or a template).', {
          where: '--command',
        });
      // An unknown placeholder or an open quote is refused now, not when a task first reaches the agent.
      validateCommand(o.command);
      const batch = this.newBatch();
      const agent: Agent = {
        id: o.id,
        role: o.role,
        command: o.command,
        status: 'idle',
        current_task: null,
        since: null,
        created_at: batch.at,
      };
      batch.addAgent(agent);
      await this.commit(batch);
      return agent;
    });
  }

  removeAgent(id: string, force = false): Promise<void> {
    return this.forward('removeAgent', [id, force], async () => {
      const batch = this.newBatch();
      const a = batch.agent(id);
      if (a.status === 'working' && a.current_task) {
        if (!force)
          throw new PipelineError('busy', `Agent ${id} is working on ${a.current_task}.`, {
            where: id,
            fix: 'Wait for it to finish, or pass --force to requeue its task.',
          });
        batch.transition(a.current_task, { type: 'requeue', reason: `agent ${id} removed` });
      }
      batch.removeAgent(id);
      await this.commit(batch);
    });
  }

  editTask(id: string, changes: TaskEdit): Promise<Task> {
    return this.forward('editTask', [id, changes], async () => {
      const batch = this.newBatch();
      const t = batch.editTask(id, changes);
      await this.commit(batch);
      return t;
    });
  }

  reprioritise(id: string, priority: Priority): Promise<Task> {
    return this.editTask(id, { priority });
  }

  blockTask(id: string, reason: string): Promise<Task> {
    return this.forward('blockTask', [id, reason], async () => {
      const batch = this.newBatch();
      this.freeAgentOf(batch, id);
      const t = batch.transition(id, { type: 'block', reason });
      await this.commit(batch);
      return t;
    });
  }

  unblockTask(id: string): Promise<Task> {
    return this.forward('unblockTask', [id], async () => {
      const batch = this.newBatch();
      const t = batch.transition(id, { type: 'unblock' });
      await this.commit(batch);
      return t;
    });
  }

  /** Retry a blocked task: it re-enters at the stage where it stopped, with its failures forgotten. */
  retryTask(id: string): Promise<Task> {
    return this.forward('retryTask', [id], async () => {
      const batch = this.newBatch();
      const cur = batch.task(id);
      if (cur.status !== 'blocked') {
        throw new PipelineError(
          'illegal-transition',
          `Task ${id} is ${cur.status}; only blocked tasks can be retried.`,
          { where: id, fix: 'Block it first, or wait for its current attempt to end.' },
        );
      }
      const t = batch.transition(id, { type: 'unblock' });
      await this.commit(batch);
      return t;
    });
  }

  cancelTask(id: string, reason: string): Promise<Task> {
    return this.forward('cancelTask', [id, reason], async () => {
      const batch = this.newBatch();
      this.freeAgentOf(batch, id);
      const t = batch.transition(id, { type: 'cancel', reason });
      await this.commit(batch);
      return t;
    });
  }

  /** When a task leaves `working` by a person's hand, its agent is free again. */
  private freeAgentOf(batch: StateBatch, taskId: string): void {
    const t = batch.task(taskId);
    if (t.status === 'working' && t.assigned_to && this.store.state.agents[t.assigned_to]) {
      batch.updateAgent(t.assigned_to, { status: 'idle', current_task: null, since: null });
    }
  }

  setOrchestrationMode(mode: string, opts: SwitchOptions = {}): Promise<SwitchResult> {
    return this.forward('setOrchestrationMode', [mode, opts], async () => {
      getStrategy(mode);
      const state = this.store.state;
      if (state.orchestration_mode === mode && !state.pending_switch)
        return { outcome: 'unchanged', mode, requeued: [] };
      const busy = Object.values(state.agents).filter((a) => a.status === 'working' && a.current_task);
      const batch = this.newBatch();
      if (busy.length > 0 && !opts.force) {
        if (!opts.drain) {
          throw new PipelineError(
            'busy',
            `Cannot switch to ${mode} mode: agents have work in progress: ${busy.map((a) => `${a.id} (${a.current_task})`).join(', ')}.`,
            {
              fix: 'Pass --drain to switch once their current stage work is finished, or --force to requeue their work now.',
            },
          );
        }
        batch.record({ type: 'mode.pending_switch', mode });
        await this.commit(batch);
        this.events.emit('mode:switchPending', { to: mode, busy: busy.map((a) => a.id) });
        return { outcome: 'pending', mode, requeued: [] };
      }
      const requeued: string[] = [];
      for (const a of busy) {
        batch.transition(a.current_task!, { type: 'requeue', reason: `forced switch to ${mode} mode` });
        batch.updateAgent(a.id, { status: 'idle', current_task: null, since: null });
        requeued.push(a.current_task!);
      }
      const from = state.orchestration_mode;
      this.switchRecords(batch, mode);
      await this.commit(batch);
      this.events.emit('mode:orchestration', { from, to: mode });
      return { outcome: 'switched', mode, requeued };
    });
  }

  /** Applies a drained switch once no agent works any more; the monitor calls this every tick. */
  async applyPendingSwitch(): Promise<boolean> {
    const to = this.store.state.pending_switch;
    if (!to || !this.lease || this.busyAgents().length > 0) return false;
    const from = this.store.state.orchestration_mode;
    const batch = this.newBatch();
    this.switchRecords(batch, to);
    await this.commit(batch);
    this.events.emit('mode:orchestration', { from, to });
    return true;
  }

  private switchRecords(batch: StateBatch, mode: string): void {
    batch.record({ type: 'mode.orchestration', mode });
    // Sequential mode picks its current task afresh, preferring work already in flight.
    if (this.store.state.current_task !== null) batch.record({ type: 'sequential.current', id: null });
  }

  setRolloutMode(mode: RolloutMode): Promise<{ from: RolloutMode; to: RolloutMode }> {
    return this.forward('setRolloutMode', [mode], async () => {
      const m = rolloutModeSchema.safeParse(mode);
      if (!m.success)
        throw new PipelineError('usage', `Unknown rollout mode ${JSON.stringify(mode)}.`, {
          fix: 'Use shadow, pilot or production.',
        });
      const from = this.store.state.mode;
      if (from === m.data) return { from, to: m.data };
      const batch = this.newBatch();
      batch.record({ type: 'mode.rollout', mode: m.data });
      await this.commit(batch);
      this.events.emit('mode:rollout', { from, to: m.data });
      return { from, to: m.data };
    });
  }

  /** Writes sequential mode's current task where scripts (and the seed's tools) read it. */
  async writeCurrentTaskFile(): Promise<void> {
    const id = this.store.state.current_task;
    const t = id ? this.store.state.tasks[id] : undefined;
    await writeFile(this.home.currentTaskFile, t && !isFinal(t.status) ? `${t.id}\n` : '');
  }

  async snapshot(): Promise<void> {
    await this.store.snapshotNow();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.followTimer) clearInterval(this.followTimer);
    // Answer what other processes queued behind this leader before letting go (see forward()).
    await this.inbox?.drain();
    this.inbox?.dispose();
    this.leaseSub?.dispose();
    await this.store.close();
    await this.lease?.release();
    this.lease = null;
    this.events.dispose();
  }

  dispose(): void {
    void this.close();
  }
}

export function notLeaderError(leader: LeaderInfo | null): PipelineError {
  return new PipelineError(
    'not-leader',
    leader
      ? `This pipeline is led by ${leader.label} (pid ${leader.pid} on ${leader.host}, since ${leader.since}).`
      : 'This process does not lead the pipeline.',
    {
      fix: 'Run the command where the pipeline is led, stop the leading process, or use read-only commands (status, task list).',
    },
  );
}
