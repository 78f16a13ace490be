import type { PipelineConfig } from '../model/configSchema';
import { HUMAN_ROLE } from '../model/humanStage';
import type { PipelineState } from '../model/schema';
import type { LeaderInfo } from '../ports/statePort';
import type { Sql } from '../postgres/pgDatabase';

/**
 * The workers of a pipeline in PostgreSQL as `pipeline status`, `/metrics` and the coordinator see
 * them: each worker with its agents, the claims it holds and the age of its heartbeat, which agents
 * a live worker runs, and which work waits because none does. Ages are measured by the database's
 * clock (`now() - heartbeat_at`), so machines whose clocks disagree still agree on who is live.
 *
 * A worker is live while it has not stopped and its last heartbeat is younger than its lease (it
 * beats three times per lease); otherwise it is offline, and so is every agent that no live worker
 * runs. Those agents are not offered work (coordinator.ts), and status names what waits for them.
 */

/** The lease of a worker whose row predates the `lease_ms` column: `pipeline worker --lease`'s default. */
export const DEFAULT_WORKER_LEASE_MS = 30_000;

/** How the coordinator names itself as leader (`pipeline worker --coordinate --name <name>`). */
export function coordinatorLabel(name: string): string {
  return `pipeline worker ${name}`;
}

/** True when the leader is a coordinator: its agents run on workers, not in its own process. */
export function ledByCoordinator(leader: LeaderInfo | null): boolean {
  return leader?.label.startsWith(coordinatorLabel('')) ?? false;
}

export interface WorkerRow {
  name: string;
  host: string;
  pid: number;
  agents: string[];
  coordinate: boolean;
  lease_ms: number | null;
  stopped: boolean;
  started_at: Date;
  heartbeat_age: number;
}

export interface OpenClaimRow {
  task_id: string;
  attempt: number;
  stage: string;
  agent: string;
  epoch: string;
  status: 'offered' | 'claimed';
  worker: string | null;
  lease_left: number | null;
  offered_age: number;
}

/** What the database holds about workers and open claims, read in one go. */
export interface WorkersSnapshot {
  workers: WorkerRow[];
  claims: OpenClaimRow[];
}

export interface WorkerClaim {
  task: string;
  stage: string;
  agent: string;
  attempt: number;
  /** The claim's fencing epoch (a bigint, as text). */
  epoch: string;
  /** Seconds until the lease runs out (negative: it ran out and the coordinator will take it back). */
  lease_left_seconds: number;
}

export interface WorkerEntry {
  name: string;
  host: string;
  pid: number;
  agents: string[];
  coordinate: boolean;
  lease_seconds: number;
  heartbeat_age_seconds: number;
  /** Not stopped, and heard from within its lease. */
  live: boolean;
  /** It said it stopped (an orderly end); a worker that died says nothing and goes offline by its heartbeat. */
  stopped: boolean;
  started_at: string;
  claims: WorkerClaim[];
}

export interface AgentWorkers {
  /** Every worker that says it runs the agent, live or not. */
  workers: string[];
  /** Those of them that are live. */
  live_workers: string[];
  /** True when at least one of them is live: else the agent is offline. */
  live: boolean;
}

export interface WaitingForWorker {
  task: string;
  stage: string;
  /** The attempt offered in the claims table, or null for a task queued and not offered. */
  attempt: number | null;
  /** The agents any of which a live worker would have to run. */
  agents: string[];
  /** Seconds since the offer (null when not offered). */
  waiting_seconds: number | null;
  message: string;
}

export interface WorkersStatus {
  workers: WorkerEntry[];
  /**
   * Per agent, the workers that run it; empty when the pipeline's agents do not run on workers
   * (a `pipeline run` or a VS Code window leads and runs them itself).
   */
  agent_workers: Record<string, AgentWorkers>;
  /** Work nobody can take now: no live worker runs an agent that could do it. */
  waiting_for_workers: WaitingForWorker[];
  /** Offers no worker has taken yet, per agent (whether or not a live worker runs it: it may be busy). */
  offers_not_taken: Record<string, number>;
}

export const NO_WORKERS: WorkersStatus = {
  workers: [],
  agent_workers: {},
  waiting_for_workers: [],
  offers_not_taken: {},
};

const SELECT_WORKERS = `SELECT name, host, pid, agents, coordinate, lease_ms, stopped, started_at,
    EXTRACT(EPOCH FROM now() - heartbeat_at)::float8 AS heartbeat_age
  FROM pipeline.workers`;

/** Reads the workers and the open claims (two statements, one snapshot each). */
export async function readWorkersSnapshot(sql: Sql): Promise<WorkersSnapshot> {
  const workers = await sql.query<WorkerRow>(`${SELECT_WORKERS} ORDER BY name`);
  const claims = await sql.query<OpenClaimRow>(
    `SELECT task_id, attempt, stage, agent, epoch::text AS epoch, status, worker,
       EXTRACT(EPOCH FROM lease_expires_at - now())::float8 AS lease_left,
       EXTRACT(EPOCH FROM now() - offered_at)::float8 AS offered_age
     FROM pipeline.claims WHERE status IN ('offered', 'claimed') ORDER BY offered_at, task_id, attempt`,
  );
  return { workers: workers.rows, claims: claims.rows };
}

/** Whether a worker row is live: not stopped, and heard from within its lease. */
export function isLive(w: WorkerRow): boolean {
  return !w.stopped && w.heartbeat_age * 1000 <= (w.lease_ms ?? DEFAULT_WORKER_LEASE_MS);
}

/** The agents some live worker runs. */
export function liveAgents(workers: readonly WorkerRow[]): Set<string> {
  const out = new Set<string>();
  for (const w of workers) if (isLive(w)) for (const a of w.agents) out.add(a);
  return out;
}

/** The agents some live worker runs, as the database has them now (the coordinator's poll). */
export async function readLiveAgents(sql: Sql): Promise<Set<string>> {
  return liveAgents((await sql.query<WorkerRow>(SELECT_WORKERS)).rows);
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Reads and judges: what status, metrics and the coordinator show of the workers. */
export async function readWorkersStatus(
  sql: Sql,
  state: Readonly<PipelineState>,
  config: PipelineConfig,
  leader: LeaderInfo | null,
): Promise<WorkersStatus> {
  return workersStatus(await readWorkersSnapshot(sql), state, config, leader);
}

export function workersStatus(
  snap: WorkersSnapshot,
  state: Readonly<PipelineState>,
  config: PipelineConfig,
  leader: LeaderInfo | null,
): WorkersStatus {
  const claimsBy = new Map<string, WorkerClaim[]>();
  const offered: Record<string, number> = {};
  for (const c of snap.claims) {
    if (c.status === 'offered') offered[c.agent] = (offered[c.agent] ?? 0) + 1;
    else if (c.worker) {
      const list = claimsBy.get(c.worker) ?? [];
      list.push({
        task: c.task_id,
        stage: c.stage,
        agent: c.agent,
        attempt: c.attempt,
        epoch: c.epoch,
        lease_left_seconds: round(c.lease_left ?? 0),
      });
      claimsBy.set(c.worker, list);
    }
  }
  const workers = snap.workers.map((w): WorkerEntry => ({
    name: w.name,
    host: w.host,
    pid: w.pid,
    agents: [...w.agents],
    coordinate: w.coordinate,
    lease_seconds: (w.lease_ms ?? DEFAULT_WORKER_LEASE_MS) / 1000,
    heartbeat_age_seconds: round(Math.max(0, w.heartbeat_age)),
    live: isLive(w),
    stopped: w.stopped,
    started_at: w.started_at.toISOString(),
    claims: claimsBy.get(w.name) ?? [],
  }));
  // Agents run on workers when a coordinator leads, or when nobody leads and workers were seen;
  // under a `pipeline run` or a VS Code window they run in the leader's own process.
  const onWorkers = ledByCoordinator(leader) || (leader === null && snap.workers.length > 0);
  if (!onWorkers) return { workers, agent_workers: {}, waiting_for_workers: [], offers_not_taken: offered };

  const live = liveAgents(snap.workers);
  const agent_workers: Record<string, AgentWorkers> = {};
  for (const id of Object.keys(state.agents).sort()) {
    const runs = snap.workers.filter((w) => w.agents.includes(id));
    agent_workers[id] = {
      workers: runs.map((w) => w.name),
      live_workers: runs.filter(isLive).map((w) => w.name),
      live: live.has(id),
    };
  }
  const waiting: WaitingForWorker[] = [];
  const offeredTasks = new Set<string>();
  for (const c of snap.claims) {
    offeredTasks.add(c.task_id);
    if (c.status !== 'offered' || live.has(c.agent)) continue;
    waiting.push({
      task: c.task_id,
      stage: c.stage,
      attempt: c.attempt,
      agents: [c.agent],
      waiting_seconds: round(Math.max(0, c.offered_age)),
      message: `${c.task_id} attempt ${c.attempt} (${c.stage}) is offered to ${c.agent}: waiting for a worker running ${c.agent}`,
    });
  }
  const tasks = Object.values(state.tasks).sort((a, b) => a.seq - b.seq);
  for (const t of tasks) {
    if (t.status !== 'queued' || offeredTasks.has(t.id)) continue;
    const role = config.stages.find((s) => s.name === t.stage)?.role;
    if (!role || role === HUMAN_ROLE) continue;
    const agents = Object.values(state.agents)
      .filter((a) => a.role === role)
      .map((a) => a.id)
      .sort();
    if (agents.length === 0 || agents.some((a) => live.has(a))) continue;
    waiting.push({
      task: t.id,
      stage: t.stage,
      attempt: null,
      agents,
      waiting_seconds: null,
      message: `${t.id} (${t.stage}) is queued: waiting for a worker running ${agents.join(' or ')}`,
    });
  }
  return { workers, agent_workers, waiting_for_workers: waiting, offers_not_taken: offered };
}
