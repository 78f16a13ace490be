import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { TASK_DIR, taskFileName } from '../../../../src/engine/agents/taskFile';
import type { Clock } from '../../../../src/engine/clock';
import { initHome } from '../../../../src/engine/home/pipelineInit';
import type { Disposable } from '../../../../src/engine/model/events';
import type { PipelineEventMap } from '../../../../src/engine/model/pipelineEvents';
import { DEFAULT_STAGES, type configSchema } from '../../../../src/engine/model/configSchema';
import { type HistoryEntry, type RolloutMode, type Task, type TaskSpec } from '../../../../src/engine/model/schema';
import type { IdleReport } from '../../../../src/engine/monitor/decide';
import { Monitor, type MonitorOptions } from '../../../../src/engine/monitor/monitor';
import { Pipeline } from '../../../../src/engine/pipeline';
import type { RunRequest } from '../../../../src/engine/ports/agentRunner';
import { MemoryChecks, type CheckAnswer, type CheckFunction } from '../../../support/twins/memoryChecks';
import { MemoryRunner, type AgentIo, type ScriptedAgent } from '../../../support/twins/memoryRunner';
import { MemoryWorkspace } from '../../../support/twins/memoryWorkspace';
import { within } from '../../../support/waiting';

/**
 * The monitor's policy on the twins: a real Pipeline (state, journal, scheduler) in a temporary
 * directory, and the in-memory workspace, runner and checks for git, processes and stage checks.
 * A whole run takes a fraction of a second, so each policy is tested on its own. File events are off: a
 * marker is read when its agent exits, or when a test asks for the rescan (`monitor.rescanNow()`),
 * so a test decides when the monitor sees it. Every wait is a condition raced against a limit.
 */

export type ConfigInput = z.input<typeof configSchema>;

/** Retries with tiny delays: a failed attempt costs a millisecond. */
export const TINY_RETRY = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, jitter: 0 };

/** One agent per default role, each running the program named after its role. */
export const ONE_PER_ROLE: Array<[string, string, string?]> = [
  ['architect', 'architect'],
  ['tester', 'tester'],
  ['implementer', 'implementer'],
  ['supervisor', 'supervisor'],
];

/** The file each role leaves for a task (the supervisor leaves none). */
export function roleFile(role: string, taskId: string): string | undefined {
  return {
    architect: `docs/design/${taskId}.md`,
    tester: `test/${taskId}.test.js`,
    implementer: `src/${taskId}.js`,
  }[role];
}

/** A well-behaved agent: writes its role's file (left for the monitor to commit), completes, exits 0. */
export const diligent: ScriptedAgent = async (req, io) => {
  const file = roleFile(req.role, req.taskId);
  if (file) await io.write(file, `${req.taskId} by ${req.agentId}, attempt ${req.attempt}\n`);
  await io.complete();
};

/** A diligent agent that commits its own work before its marker (as agents are told to), as `git commit` would. */
export function committing(ws: MemoryWorkspace): ScriptedAgent {
  return async (req, io) => {
    const file = roleFile(req.role, req.taskId);
    if (file) {
      await io.write(file, `${req.taskId} by ${req.agentId}, attempt ${req.attempt}\n`);
      await ws.commitAll(req.agentId, `${req.taskId} ${req.role}: attempt ${req.attempt}`);
    }
    await io.complete();
  };
}

/** The agents' programs: one per default role, all diligent. */
export function defaultPrograms(): Record<string, ScriptedAgent> {
  return { architect: diligent, tester: diligent, implementer: diligent, supervisor: diligent };
}

export interface RigOptions {
  tasks: TaskSpec[];
  /** [id, role, program]; the program defaults to the role's name. */
  agents?: Array<[string, string, string?]>;
  /** Scripted agents by program name, over the diligent defaults (a function gets the twin workspace). */
  programs?: Record<string, ScriptedAgent> | ((ws: MemoryWorkspace) => Record<string, ScriptedAgent>);
  /** The stage checks' answers (MemoryChecks). */
  checks?: Record<string, CheckAnswer | CheckFunction> | CheckFunction;
  orchestration?: 'parallel' | 'sequential' | 'hybrid';
  rollout?: RolloutMode;
  config?: Partial<ConfigInput>;
  clock?: Clock;
  monitor?: Partial<MonitorOptions>;
}

export interface Recorded<K extends keyof PipelineEventMap = keyof PipelineEventMap> {
  name: K;
  data: PipelineEventMap[K];
}

const RECORDED: Array<keyof PipelineEventMap> = [
  'agent:started',
  'agent:exited',
  'check:finished',
  'merge:finished',
  'task:transition',
  'monitor:warning',
  'pipeline:decision',
  'monitor:idle',
];

export class Rig {
  readonly events: Recorded[] = [];
  private subs: Disposable[] = [];
  private started = false;

  private constructor(
    readonly dir: string,
    public pipeline: Pipeline,
    public monitor: Monitor,
    readonly workspace: MemoryWorkspace,
    public runner: MemoryRunner,
    readonly checks: MemoryChecks,
    private readonly o: RigOptions,
  ) {
    this.record();
  }

  static async create(o: RigOptions): Promise<Rig> {
    const dir = await mkdtemp(join(tmpdir(), 'pipeline-policy-'));
    await initHome(dir, { targetBranch: 'main', stages: DEFAULT_STAGES, retry: TINY_RETRY, ...o.config });
    const pipeline = await Pipeline.open({
      cwd: dir,
      role: 'lead',
      label: 'policy test',
      ...(o.clock ? { clock: o.clock } : {}),
    });
    for (const [id, role, program] of o.agents ?? ONE_PER_ROLE)
      await pipeline.addAgent({ id, role, command: `${program ?? role} {taskFile}` });
    if (o.tasks.length) await pipeline.addTasks(o.tasks.map((spec) => ({ spec, source: 'test' })));
    await pipeline.setOrchestrationMode(o.orchestration ?? 'parallel');
    await pipeline.setRolloutMode(o.rollout ?? 'production');
    const workspace = await MemoryWorkspace.create({ root: join(dir, 'worktrees') });
    const programs = typeof o.programs === 'function' ? o.programs(workspace) : o.programs;
    const runner = new MemoryRunner({ agents: { ...defaultPrograms(), ...programs } });
    const checks = new MemoryChecks(o.checks ?? {});
    const monitor = Rig.monitorFor(pipeline, workspace, runner, checks, o);
    return new Rig(dir, pipeline, monitor, workspace, runner, checks, o);
  }

  private static monitorFor(
    pipeline: Pipeline,
    workspace: MemoryWorkspace,
    runner: MemoryRunner,
    checks: MemoryChecks,
    o: RigOptions,
  ): Monitor {
    return new Monitor({
      pipeline,
      workspace,
      runner,
      checks,
      scriptedAgent: '',
      fileEvents: false,
      // The rescan runs when a test asks for it, not on its own.
      rescanSeconds: { idle: 3600, normal: 3600, busy: 3600 },
      ...o.monitor,
    });
  }

  private record(): void {
    for (const s of this.subs) s.dispose();
    this.subs = RECORDED.map((name) =>
      this.pipeline.events.on(name, (data: unknown) => this.events.push({ name, data })),
    );
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.monitor.start();
  }

  /** Starts the monitor (once) and waits until the pipeline has nothing left to do. */
  async run(ms = 10_000): Promise<IdleReport> {
    await this.start();
    return within('the pipeline becoming idle', ms, this.monitor.untilIdle());
  }

  /**
   * A restart after a crash: the monitor's process is gone (its runner hears no exit, its agents
   * run on), the pipeline is opened again from its files, `whileDown` does what happens meanwhile,
   * and a new monitor starts with a runner on the same host (`runner.restarted()`), or on a fresh
   * one after a reboot. The twin workspace is the same repository throughout.
   */
  async restart(o: { reboot?: boolean; whileDown?: () => Promise<void> } = {}): Promise<void> {
    // As a crash: nobody hears the agents' exits any more, and they run on.
    this.runner.crash();
    await this.monitor.stop({ stopAgents: false });
    for (const s of this.subs) s.dispose();
    await this.pipeline.close();
    await o.whileDown?.();
    this.pipeline = await Pipeline.open({
      cwd: this.dir,
      role: 'lead',
      label: 'policy test (restarted)',
      ...(this.o.clock ? { clock: this.o.clock } : {}),
    });
    this.record();
    this.runner = o.reboot ? new MemoryRunner({ agents: this.runner.agents }) : this.runner.restarted();
    this.monitor = Rig.monitorFor(this.pipeline, this.workspace, this.runner, this.checks, this.o);
    await this.monitor.start();
  }

  async close(): Promise<void> {
    await this.monitor.stop();
    this.runner.host.killAll();
    for (const s of this.subs) s.dispose();
    await this.pipeline.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  task(id: string): Task {
    const t = this.pipeline.state.tasks[id];
    assert.ok(t, `task ${id} exists`);
    return t;
  }

  /** The recorded events of one kind, in order. */
  of<K extends keyof PipelineEventMap>(name: K): Array<PipelineEventMap[K]> {
    return this.events.filter((e) => e.name === name).map((e) => e.data as PipelineEventMap[K]);
  }

  /** Resolves with the first event (already recorded or to come) that matches. */
  next<K extends keyof PipelineEventMap>(
    name: K,
    match: (e: PipelineEventMap[K]) => boolean = () => true,
    ms = 10_000,
  ): Promise<PipelineEventMap[K]> {
    const seen = this.of(name).find(match);
    if (seen) return Promise.resolve(seen);
    let sub: Disposable | undefined;
    const p = new Promise<PipelineEventMap[K]>((resolve) => {
      sub = this.pipeline.events.on(name, (e) => {
        if (match(e)) resolve(e);
      });
    });
    return within(`event ${String(name)}`, ms, p).finally(() => sub?.dispose());
  }

  /** When `agentId` has started on `taskId` (optionally a given stage). */
  whenStarted(agentId: string, taskId: string, stage?: string): Promise<PipelineEventMap['agent:started']> {
    return this.next(
      'agent:started',
      (e) => e.agentId === agentId && e.taskId === taskId && (!stage || e.stage === stage),
    );
  }

  /** Waits until `check` holds: asked on every change of the state, and every few milliseconds. */
  async until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
    if (check()) return;
    let sub: Disposable | undefined;
    let poll: NodeJS.Timeout | undefined;
    const p = new Promise<void>((resolve) => {
      const ask = () => {
        if (check()) resolve();
      };
      sub = this.pipeline.events.on('state:changed', ask);
      poll = setInterval(ask, 5);
    });
    try {
      await within(what, ms, p);
    } finally {
      sub?.dispose();
      clearInterval(poll);
    }
  }

  /** The task file an attempt was given, from the agent's worktree on disk. */
  taskFile(agentId: string, taskId: string, attempt: number): Promise<string> {
    return readFile(join(this.workspace.worktreePath(agentId), TASK_DIR, taskFileName(taskId, attempt)), 'utf8');
  }
}

/** Runs `fn` on a new rig, closed after, whatever happens. */
export async function withRig(o: RigOptions, fn: (rig: Rig) => Promise<void>): Promise<void> {
  const rig = await Rig.create(o);
  try {
    await fn(rig);
  } finally {
    await rig.close();
  }
}

export { within };

export function entries(task: Task, event: string): HistoryEntry[] {
  return task.history.filter((h) => h.event === event);
}

/** `event@stage` for each history entry: the story of a task in one line. */
export function story(task: Task): string {
  return task.history.map((h) => `${h.event}@${h.stage}`).join(' ');
}

/** The stages a task was assigned, in order. */
export function assignedStages(task: Task): string[] {
  return entries(task, 'assign').map((h) => h.stage);
}

/** A program that fails (exit 1, nothing written) on its first `n` runs for each task, then is diligent. */
export function failsFirst(n: number, code = 1): ScriptedAgent {
  const runs = new Map<string, number>();
  return async (req: RunRequest, io: AgentIo) => {
    const k = (runs.get(req.taskId) ?? 0) + 1;
    runs.set(req.taskId, k);
    if (k <= n) return code;
    return diligent(req, io);
  };
}
