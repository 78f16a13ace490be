// src/engine/ — the engine: everything the pipeline does, for the CLI, the extension and the tests alike.
// This file is its facade. The engine never imports `vscode` (a lint rule keeps it so); its rooms are
// model/ (the state), home/, store/ (files) and postgres/ (the shared store, chosen in storeSelection.ts),
// mutations/, scheduler/, monitor/, ports/, git/, agents/, import/, rollout/, progress/, usage/,
// observability/, each described by its main file.
import { writeFile } from 'node:fs/promises';
import { loadConfig } from './home/configFile';
import { systemClock, type Clock } from './clock';
import { PipelineError } from './errors';
import { TypedEvents, type Disposable } from './model/events';
import { InboxRequestWithdrawn, sendInboxRequest } from './inbox';
import { Leadership, notLeaderError } from './leadership';
import { findHome, type PipelineHome } from './home/pipelineHome';
import { announceBatch, type PipelineEventMap } from './model/pipelineEvents';
import { rolloutCheck, type GitFacts, type RolloutCheckResult, type RolloutFacts } from './rollout/rolloutCheck';
import { type Agent, type PipelineState, type Priority, type RolloutMode, type Task } from './model/schema';
import type { PipelineConfig } from './model/configSchema';
import { dryRun, type DryRun } from './monitor/dryRun';
import type { NextTaskReport } from './scheduler/nextTask';
import { SchedulerIndex } from './scheduler/schedulerIndex';
import { StateBatch } from './model/stateBatch';
import type { TaskEdit } from './model/stateRecords';
import { statusReport, type StatusReport } from './statusReport';
import { isLease, type LeaderInfo, type LeasePort } from './ports/statePort';
import type { PipelineStore, PostgresBackendOptions, StateBackend } from './stateBackend';
import { stateBackend } from './storeSelection';
import type { NewTask } from './model/taskFactory';
import { applyPendingSwitch, busyAgents, type SwitchOptions, type SwitchResult } from './mutations/modeMutations';
import {
  dispatchMutation,
  runMutation,
  type MutationArgs,
  type MutationName,
  type MutationResult,
} from './mutations/mutationTable';
import type { AddAgentOptions } from './mutations/agentMutations';
import type { MutationHost } from './mutations/mutationHost';
import type { ReviewAnswer } from './mutations/reviewMutation';
import { isFinal } from './model/taskLifecycle';
import { ProgressBoard, progressFileOf } from './progress/progressBoard';
import { NO_WORKERS, readWorkersStatus, type WorkersStatus } from './workers/workerStatus';

/**
 * The engine's facade: one pipeline (one `.pipeline/` home), opened by the CLI, by `pipeline run`
 * and by the extension alike.
 *
 * Exactly one process leads a pipeline at a time (a lease with a fencing epoch, see
 * ports/statePort.ts). The leader owns the state store and the scheduler and applies every change;
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
  /** How the PostgreSQL store waits for its database (when the config names one). */
  storeOptions?: PostgresBackendOptions;
}

export type { AddAgentOptions } from './mutations/agentMutations';
export type { ReviewAnswer } from './mutations/reviewMutation';
export type { SwitchOptions, SwitchResult } from './mutations/modeMutations';
export { notLeaderError } from './leadership';

/** Times a change is sent again after its leader stopped leading before taking it. */
const MAX_FORWARD_ATTEMPTS = 50;

export class Pipeline implements Disposable, MutationHost {
  readonly events = new TypedEvents<PipelineEventMap>();
  /** What working agents do now (not state: the leader's memory, and a file for followers). */
  readonly progress: ProgressBoard;
  /**
   * The scheduler's index of the current state, built on first use: a command that never asks the
   * scheduler (`pipeline status`, `task list`) does not pay for indexing every task. Undefined
   * until then and after the state was read afresh; commits are applied to it only once it exists,
   * since it is then built from the state they are already in.
   */
  private builtIndex: SchedulerIndex | undefined;
  private readonly leadership: Leadership;
  private closed = false;
  /** The store's hint that another process committed (a database notification): refresh at once. */
  private storeWake: Disposable | undefined;

  private constructor(
    readonly home: PipelineHome,
    readonly config: PipelineConfig,
    private readonly backend: StateBackend,
    private store: PipelineStore,
    initial: LeasePort | { leader: LeaderInfo | null },
    readonly clock: Clock,
    opts: OpenPipelineOptions,
  ) {
    this.progress = new ProgressBoard(progressFileOf(home.dir), this.events);
    this.watchStore();
    this.leadership = new Leadership(
      {
        home,
        leases: backend.leases,
        reopenStore: (lease) => this.reopenStore(lease),
        refresh: () => this.refresh(),
        // A request taken while leading is applied here or refused, never forwarded again.
        dispatch: (method, args) => {
          if (!this.isLeader) throw notLeaderError(this.leader);
          return dispatchMutation(this, method, args);
        },
        lost: (leader) => this.events.emit('leader:lost', { leader }),
        acquired: (leader) => {
          this.events.emit('leader:acquired', { leader });
          this.events.emit('state:changed', { seq: this.store.seq });
        },
        warn: (message) => this.events.emit('monitor:warning', { message }),
      },
      {
        label: opts.label ?? `pid ${process.pid}`,
        takeOver: opts.takeOver ?? false,
        followIntervalMs: opts.followIntervalMs ?? 500,
      },
      initial,
    );
  }

  static async open(opts: OpenPipelineOptions = {}): Promise<Pipeline> {
    const home = opts.home ?? (await findHome(opts.cwd ?? process.cwd()));
    const loaded = await loadConfig(home.configFile);
    const config = opts.adjustConfig ? opts.adjustConfig(loaded) : loaded;
    const role = opts.role ?? 'auto';
    const backend = await stateBackend(home, config, opts.storeOptions);
    let initial: LeasePort | { leader: LeaderInfo | null };
    let store: PipelineStore;
    try {
      if (role === 'follow') initial = { leader: await backend.leases.current() };
      else {
        initial = await backend.leases.acquire(
          opts.label ?? `pid ${process.pid}`,
          // A command that leads only while nobody does holds the lease for one change.
          role === 'auto' ? { oneChange: true } : undefined,
        );
        if (!isLease(initial) && role === 'lead') throw notLeaderError(initial.leader);
      }
      const lease = isLease(initial) ? initial : null;
      try {
        store = await backend.open(lease);
      } catch (e) {
        await lease?.release();
        throw e;
      }
    } catch (e) {
      await backend.close().catch(() => undefined);
      throw e;
    }
    const p = new Pipeline(home, config, backend, store, initial, opts.clock ?? systemClock, opts);
    await p.leadership.start();
    return p;
  }

  /** Reopens the state store as the writer under `lease`, or as a reader; the index follows. */
  private async reopenStore(lease: LeasePort | null): Promise<void> {
    const old = this.store;
    if (lease) {
      this.store = await this.backend.open(lease);
      await old.close().catch(() => undefined);
    } else {
      await old.close().catch(() => undefined);
      this.store = await this.backend.open(null);
    }
    this.watchStore();
    this.builtIndex = undefined;
  }

  /**
   * Follows the current store's hints: a reader of PostgreSQL is notified of commits (polling stays
   * the backstop); a writer's store says so when it read the state again (a commit whose answer was
   * lost landed after all), and the index is rebuilt from it.
   */
  private watchStore(): void {
    this.storeWake?.dispose();
    this.storeWake = this.store.onDidChange?.(() => {
      if (this.closed) return;
      if (!this.isLeader) {
        void this.refresh().catch(() => undefined);
        return;
      }
      this.builtIndex = undefined;
      this.events.emit('state:changed', { seq: this.store.seq });
    });
  }

  /** Where the state is kept: `file` (the journal in .pipeline/state/) or `postgres`, and where. */
  get storeLocation(): { kind: StateBackend['kind']; where: string } {
    return { kind: this.backend.kind, where: this.backend.where };
  }

  /** Catches up with what the leader wrote (a follower). */
  private async refresh(): Promise<void> {
    const stateChanged = await this.store.refresh();
    if (stateChanged) this.builtIndex = undefined;
    // The leader's progress file too: a follower's trees and status show what agents do now.
    const progressChanged = await this.progress.refresh().catch(() => false);
    if (stateChanged || progressChanged) this.events.emit('state:changed', { seq: this.store.seq });
  }

  /** A follower reads the leader's progress file now (a one-shot command such as `pipeline status`). */
  async refreshProgress(): Promise<void> {
    await this.progress.refresh().catch(() => false);
  }

  /** Takes the lead now; throws `not-leader` naming the process that leads instead. */
  lead(): Promise<void> {
    return this.leadership.lead();
  }

  /** Gives up the lead (if held) and follows read-only from now on. */
  async follow(): Promise<void> {
    if (!this.isLeader) return;
    await this.leadership.follow();
    this.events.emit('state:changed', { seq: this.store.seq });
  }

  // ------------------------------------------------------------------------------------------
  // Reading.

  get state(): Readonly<PipelineState> {
    return this.store.state;
  }
  get isLeader(): boolean {
    return this.leadership.isLeader;
  }
  /** Who leads: this process's lease when it leads, else the other leader as last seen. */
  get leader(): LeaderInfo | null {
    return this.leadership.leader;
  }
  get storeWarnings(): readonly string[] {
    return this.store.warnings;
  }
  get scheduler(): SchedulerIndex {
    return this.index;
  }

  private get index(): SchedulerIndex {
    return (this.builtIndex ??= SchedulerIndex.build(this.store.state, this.config));
  }

  /**
   * The fencing check before a side effect the journal cannot fence (a git mutation, an agent
   * start): throws `not-leader` unless this process still holds the lease, as seen on disk now.
   */
  fence(): Promise<void> {
    return this.leadership.fence();
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

  /** The status report; `workers` as `workers()` read them (none unless given). */
  status(workers: WorkersStatus = NO_WORKERS): StatusReport {
    return statusReport(
      this.store.state,
      this.config,
      this.leader,
      this.store.warnings,
      this.leader ? this.progress.all() : {},
      workers,
    );
  }

  /**
   * The workers of a pipeline whose state is in PostgreSQL, as the database has them now, judged
   * against this state (workers/workerStatus.ts); none for a pipeline in files.
   */
  async workers(): Promise<WorkersStatus> {
    const db = this.backend.database;
    return db ? readWorkersStatus(db, this.store.state, this.config, this.leader) : NO_WORKERS;
  }

  rolloutCheck(git: GitFacts | null, agents: RolloutFacts['agents'] = null): RolloutCheckResult {
    return rolloutCheck({
      state: this.store.state,
      config: this.config,
      storeWarnings: this.store.warnings,
      git,
      agents,
    });
  }

  /** The task that would enter the pipeline next and why, or what holds back the best candidates (`pipeline next`). */
  next(limit = 3): NextTaskReport {
    return this.index.next(this.store.state, this.clock.now(), limit);
  }

  /** Agents with work in progress, as "agent (TASK-ID)". */
  busyAgents(): string[] {
    return busyAgents(this.store.state).map((a) => `${a.id} (${a.current_task})`);
  }

  /** What the scheduler would do now, without doing it (`pipeline run --dry`; see monitor/dryRun.ts). */
  dryRun(): DryRun {
    return dryRun({ state: this.store.state, config: this.config, scheduler: this.index, now: this.clock.now() });
  }

  // ------------------------------------------------------------------------------------------
  // Committing: every change goes through a batch, is synced, then indexed, then announced.

  newBatch(): StateBatch {
    return new StateBatch(this.store.state, this.clock.iso());
  }

  async commit(batch: StateBatch): Promise<void> {
    if (batch.empty) return;
    if (!this.isLeader) throw notLeaderError(this.leader);
    await this.store.commit(batch.records);
    const index = this.builtIndex;
    if (index) {
      for (const c of batch.taskChanges) index.taskChanged(c.before, c.after);
      for (const c of batch.agentChanges) index.agentChanged(c.before, c.after);
      for (const t of batch.removedTasks) index.taskRemoved(t);
    }
    announceBatch(this.events, batch, this.store.seq);
  }

  /**
   * Runs a mutation where it belongs: here when this process leads; when nobody leads, here too,
   * under a lease taken for just this change (so a window or a CLI command can add a task while no
   * pipeline runs); otherwise sent to the leader through the inbox.
   */
  private async forward<K extends MutationName>(name: K, args: MutationArgs<K>): Promise<MutationResult<K>> {
    const local = () => runMutation(this, name, args);
    // The change keeps its place in the leaders' queue however often it is sent again.
    const queuedAt = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (this.isLeader) return local();
      const here = await this.leadership.whileNobodyLeads(local);
      if (here) return here.result;
      const leader = this.leader;
      const label = leader ? `${leader.label}, pid ${leader.pid} on ${leader.host}` : undefined;
      const leaderGone = async () => !(await this.backend.leases.current());
      try {
        const result = await sendInboxRequest(this.home.inboxDir, name, args, {
          leaderGone,
          // A leader that leads for its own change lets go soon (or just did); one that has not
          // taken this change by then is not stuck, only busy with the changes sent before it.
          withdrawOnTimeout: async () => {
            const now = await this.backend.leases.current();
            return now === null || now.oneChange === true;
          },
          queuedAt,
          ...(label ? { leaderLabel: label } : {}),
        });
        await this.refresh();
        return result as MutationResult<K>;
      } catch (e) {
        // That leader (a short-lived one, leading for its own change) stopped before taking the
        // request, or was still busy with earlier ones when the time was up, and the request was
        // taken back unapplied: try again, leading now if nobody else does.
        if (e instanceof InboxRequestWithdrawn && attempt < MAX_FORWARD_ATTEMPTS) continue;
        throw e;
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Mutations (see pipelineMutations.ts; forwarded to the leader when this process follows).

  addTasks(items: NewTask[]): Promise<Task[]> {
    return this.forward('addTasks', [items]);
  }
  addAgent(o: AddAgentOptions): Promise<Agent> {
    return this.forward('addAgent', [o]);
  }
  removeAgent(id: string, force = false): Promise<void> {
    return this.forward('removeAgent', [id, force]);
  }
  editTask(id: string, changes: TaskEdit): Promise<Task> {
    return this.forward('editTask', [id, changes]);
  }
  /** Removes a task no agent has worked on; `force` also takes it out of the prerequisites of tasks waiting for it. */
  removeTask(id: string, force = false): Promise<{ task: Task; released: string[] }> {
    return this.forward('removeTask', [id, force]);
  }
  reprioritise(id: string, priority: Priority): Promise<Task> {
    return this.editTask(id, { priority });
  }
  blockTask(id: string, reason: string): Promise<Task> {
    return this.forward('blockTask', [id, reason]);
  }
  unblockTask(id: string): Promise<Task> {
    return this.forward('unblockTask', [id]);
  }
  /** Retry a blocked task: it re-enters at the stage where it stopped, with its failures forgotten. */
  retryTask(id: string): Promise<Task> {
    return this.forward('retryTask', [id]);
  }
  cancelTask(id: string, reason: string): Promise<Task> {
    return this.forward('cancelTask', [id, reason]);
  }
  /** A person's answer to a task awaiting review at a human stage: approve, changes or block. */
  reviewTask(id: string, answer: ReviewAnswer): Promise<Task> {
    return this.forward('reviewTask', [id, answer]);
  }
  setOrchestrationMode(mode: string, opts: SwitchOptions = {}): Promise<SwitchResult> {
    return this.forward('setOrchestrationMode', [mode, opts]);
  }
  setRolloutMode(
    mode: RolloutMode,
    opts: { force?: boolean } = {},
  ): Promise<{ from: RolloutMode; to: RolloutMode; requeued: string[] }> {
    return this.forward('setRolloutMode', [mode, opts]);
  }

  /** Applies a drained switch once no agent works any more; the monitor calls this every tick. */
  async applyPendingSwitch(): Promise<boolean> {
    if (!this.isLeader) return false;
    return applyPendingSwitch(this);
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
    await this.leadership.close();
    this.storeWake?.dispose();
    await this.store.close();
    await this.leadership.release();
    await this.backend.close();
    this.events.dispose();
  }

  dispose(): void {
    void this.close();
  }
}
