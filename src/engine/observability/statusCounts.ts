import {
  AGENT_STATUSES,
  TASK_STATUSES,
  type Agent,
  type AgentStatus,
  type PipelineState,
  type TaskStatus,
} from '../model/schema';
import { type PipelineConfig } from '../model/configSchema';
import type { MetricsSnapshot } from './metricsSnapshot';
import type { PrometheusMetrics } from './prometheusMetrics';

/**
 * The levels behind the metrics: how many tasks are in each status and stage, and how many agents
 * in each status, kept incrementally (never by counting the state again) and mirrored into the
 * `pipeline_tasks` and `pipeline_agents*` gauges. Read once from the state when created.
 */

/** What this process last knew of a task. */
export interface KnownTask {
  status: TaskStatus;
  stage: string;
  /** Its number of history entries then. */
  history: number;
}

const key = (status: string, stage: string) => `${status}\u0000${stage}`;

export class StatusCounts {
  private readonly knownTasks = new Map<string, KnownTask>();
  private readonly taskCounts = new Map<string, number>();
  private readonly knownAgents = new Map<string, { role: string; status: AgentStatus }>();
  private readonly agentCounts = new Map<string, number>();

  constructor(
    private readonly source: { readonly state: Readonly<PipelineState>; readonly config: PipelineConfig },
    private readonly prom: PrometheusMetrics,
  ) {
    const { state, config } = source;
    for (const s of config.stages) for (const st of TASK_STATUSES) this.setTaskCount(st, s.name, 0);
    for (const t of Object.values(state.tasks)) this.moveTask(t.id, t.status, t.stage, t.history.length);
    const roles = new Set(config.stages.map((s) => s.role));
    for (const r of roles) for (const st of AGENT_STATUSES) prom.agents.set({ role: r, status: st }, 0);
    for (const a of Object.values(state.agents)) this.agentArrived(a);
    this.updateAgentTotals();
  }

  // ------------------------------------------------------------------------------------------
  // Tasks.

  knownTask(id: string): KnownTask | undefined {
    return this.knownTasks.get(id);
  }

  moveTask(id: string, status: TaskStatus, stage: string, history: number): void {
    const k = this.knownTasks.get(id);
    if (k && (k.status !== status || k.stage !== stage)) this.bumpTask(k.status, k.stage, -1);
    if (!k || k.status !== status || k.stage !== stage) this.bumpTask(status, stage, 1);
    this.knownTasks.set(id, { status, stage, history });
  }

  /** Forgets the tasks not in `seen` (gone from a refreshed state); returns their ids. */
  forgetTasksExcept(seen: ReadonlySet<string>): string[] {
    const gone: string[] = [];
    for (const [id, k] of this.knownTasks) {
      if (seen.has(id)) continue;
      this.bumpTask(k.status, k.stage, -1);
      this.knownTasks.delete(id);
      gone.push(id);
    }
    return gone;
  }

  queueDepth(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.source.config.stages) out[s.name] = this.taskCounts.get(key('queued', s.name)) ?? 0;
    return out;
  }

  tasks(): MetricsSnapshot['tasks'] {
    const byStatus = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const byStage: Record<string, Partial<Record<TaskStatus, number>>> = {};
    let total = 0;
    for (const [k, n] of this.taskCounts) {
      if (n === 0) continue;
      const [status, stage] = k.split('\u0000') as [TaskStatus, string];
      byStatus[status] += n;
      (byStage[stage] ??= {})[status] = n;
      total += n;
    }
    return { byStatus, byStage, total };
  }

  private setTaskCount(status: string, stage: string, n: number): void {
    this.taskCounts.set(key(status, stage), n);
    this.prom.tasks.set({ status, stage }, n);
  }

  private bumpTask(status: string, stage: string, by: number): void {
    this.setTaskCount(status, stage, Math.max(0, (this.taskCounts.get(key(status, stage)) ?? 0) + by));
  }

  // ------------------------------------------------------------------------------------------
  // Agents.

  addAgent(a: Agent): void {
    this.agentArrived(a);
    this.updateAgentTotals();
  }

  removeAgent(id: string): void {
    this.agentLeft(id);
    this.updateAgentTotals();
  }

  changeAgent(a: Agent): void {
    this.agentLeft(a.id);
    this.agentArrived(a);
    this.updateAgentTotals();
  }

  /** Brings the agents in line with a refreshed state. */
  syncAgents(agents: Readonly<Record<string, Agent>>): void {
    for (const id of [...this.knownAgents.keys()]) {
      const a = agents[id];
      const k = this.knownAgents.get(id)!;
      if (!a || a.status !== k.status || a.role !== k.role) this.agentLeft(id);
    }
    for (const a of Object.values(agents)) if (!this.knownAgents.has(a.id)) this.agentArrived(a);
    this.updateAgentTotals();
  }

  busyAgents(): number {
    return this.agentCounts.get('working') ?? 0;
  }

  agentTotal(): number {
    return this.knownAgents.size;
  }

  agents(): MetricsSnapshot['agents'] {
    const byStatus = Object.fromEntries(AGENT_STATUSES.map((s) => [s, this.agentCounts.get(s) ?? 0])) as Record<
      AgentStatus,
      number
    >;
    return { byStatus, busy: byStatus.working, idle: byStatus.idle, total: this.knownAgents.size };
  }

  private agentArrived(a: Agent): void {
    this.knownAgents.set(a.id, { role: a.role, status: a.status });
    this.agentCounts.set(a.status, (this.agentCounts.get(a.status) ?? 0) + 1);
    this.prom.agents.inc({ role: a.role, status: a.status });
  }

  private agentLeft(id: string): void {
    const k = this.knownAgents.get(id);
    if (!k) return;
    this.knownAgents.delete(id);
    this.agentCounts.set(k.status, Math.max(0, (this.agentCounts.get(k.status) ?? 0) - 1));
    this.prom.agents.dec({ role: k.role, status: k.status });
  }

  private updateAgentTotals(): void {
    this.prom.agentsBusy.set(this.agentCounts.get('working') ?? 0);
    this.prom.agentsIdle.set(this.agentCounts.get('idle') ?? 0);
  }
}
