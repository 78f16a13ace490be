import { join } from 'node:path';
import { resolveCommand } from '../agents/commandTemplate';
import type { MarkerWatcher } from '../agents/markerWatcher';
import { isPipelineError } from '../errors';
import type { StageConfig } from '../model/configSchema';
import type { Task } from '../model/schema';
import type { Pipeline } from '../pipeline';
import type { AgentRunner, RunRequest } from '../ports/agentRunner';
import type { CheckRunner } from '../ports/checkRunner';
import type { WorkspacePort } from '../ports/workspacePort';
import { AgentStreams } from './agentStream';
import { AttemptTable, type Attempt } from './attemptTable';
import { LockBackoff } from './lockBackoff';

/**
 * What the monitor's jobs (launch, completion, checks, merges, recovery, rescan) share: the
 * pipeline, the ports, the attempts in flight, and the few questions about stages they all ask.
 * Each job is a small module taking this context; the Monitor class owns only the loop.
 */
export interface MonitorPorts {
  workspace: WorkspacePort;
  runner: AgentRunner;
  checks: CheckRunner;
}

export class MonitorContext {
  readonly attempts = new AttemptTable();
  /** Tasks whose merge is under way. */
  readonly merging = new Set<string>();
  /** What working agents print, read as it comes: progress, tokens, cost, session ids. */
  readonly streams: AgentStreams = new AgentStreams(this);
  watcher: MarkerWatcher | undefined;
  stopped = true;
  /** Git locks held by other processes, in a row, per call: the back-off of what meets one. */
  readonly lockBackoff = new LockBackoff();
  /** Timers of `later` and `pause`, each with what a stop does to it. */
  private readonly timers = new Map<NodeJS.Timeout, () => void>();

  constructor(
    readonly pipeline: Pipeline,
    readonly ports: MonitorPorts,
    /** Path of dist/scriptedAgent.js, for the `scripted` preset. */
    readonly scriptedAgent: string,
    /** Schedules a tick (set by the monitor). */
    readonly kick: () => void,
  ) {}

  get config() {
    return this.pipeline.config;
  }

  now(): number {
    return this.pipeline.clock.now();
  }

  stageOf(name: string): StageConfig | undefined {
    return this.config.stages.find((s) => s.name === name);
  }

  /** The stage after `name`, or null after the last one (the task is then merged). */
  nextStage(name: string): string | null {
    const stages = this.config.stages;
    return stages[stages.findIndex((s) => s.name === name) + 1]?.name ?? null;
  }

  isLastStage(stage: StageConfig): boolean {
    return this.config.stages[this.config.stages.length - 1]?.name === stage.name;
  }

  /** Where work is merged under the rollout mode: the pilot branch in pilot mode, else the target. */
  baseBranch(): string {
    return this.pipeline.state.mode === 'pilot' ? this.config.pilotBranch : this.config.targetBranch;
  }

  /** Creates the pilot branch from the target when work goes there and it does not exist yet. */
  async ensureBase(): Promise<string> {
    const base = this.baseBranch();
    if (base !== this.config.targetBranch) await this.ports.workspace.ensureBranch(base, this.config.targetBranch);
    return base;
  }

  /** Runs `fn` after `ms` unless the monitor stops first; the timer never keeps the process alive. */
  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.set(t, () => undefined);
  }

  /** Resolves after `ms`, or at once when the monitor stops meanwhile (the caller then sees `stopped`). */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      t.unref();
      this.timers.set(t, resolve);
    });
  }

  /** The monitor stops: nothing scheduled with `later` runs, every `pause` ends now. */
  cancelTimers(): void {
    for (const [t, onStop] of this.timers) {
      clearTimeout(t);
      onStop();
    }
    this.timers.clear();
  }

  /** The task when this attempt is still the one the state says is running; null for a late one. */
  current(a: Attempt): Task | null {
    const t = this.pipeline.state.tasks[a.taskId];
    return t && t.status === 'working' && t.attempt === a.attempt && t.assigned_to === a.agentId ? t : null;
  }

  runRequest(
    a: Attempt,
    worktree: string,
    command: string,
    how: { resume?: string | undefined; interactive?: boolean | undefined } = {},
  ): RunRequest {
    const permissions = this.config.agentCli[command];
    const resolved = resolveCommand(
      command,
      { taskFile: a.taskFile, taskId: a.taskId, worktree, role: a.stage.role },
      {
        scriptedAgent: this.scriptedAgent,
        ...(permissions ? { permissions } : {}),
        ...(how.resume ? { resume: how.resume } : {}),
        ...(how.interactive ? { interactive: true } : {}),
      },
    );
    return {
      agentId: a.agentId,
      taskId: a.taskId,
      attempt: a.attempt,
      role: a.stage.role,
      worktree,
      taskFile: a.taskFile,
      command: resolved,
      logFile: this.agentLogFile(a.agentId),
      ...(how.resume ? { resume: how.resume } : {}),
    };
  }

  agentLogFile(agentId: string): string {
    return join(this.pipeline.home.logsDir, 'agents', `${agentId}.log`);
  }

  evidenceFile(taskId: string, stage: string, attempt: number): string {
    return join(this.pipeline.home.evidenceDir, taskId, `${stage}.attempt-${attempt}.log`);
  }

  warn(message: string, taskId?: string, agentId?: string): void {
    this.pipeline.events.emit('monitor:warning', {
      message,
      ...(taskId ? { taskId } : {}),
      ...(agentId ? { agentId } : {}),
    });
  }
}

export function errText(e: unknown): string {
  return isPipelineError(e) ? e.message : e instanceof Error ? e.message : String(e);
}
