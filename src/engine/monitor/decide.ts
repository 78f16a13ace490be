import type { PipelineConfig } from '../model/configSchema';
import type { PipelineState, Task } from '../model/schema';
import { isFinal } from '../model/taskLifecycle';
import { rolloutEligibility } from '../scheduler/eligibility';
import type { PlanResult, SchedulerIndex } from '../scheduler/schedulerIndex';

/**
 * What to do now, as one pure function of the state, the configuration and the time: the monitor's
 * tick, its idle check and `pipeline run --dry` all ask it, so they cannot disagree. The scheduler
 * index is a cache derived from the state (see schedulerIndex.ts) and is passed in with it.
 *
 * A decision is read in this order: queue the tasks in `promote` (their prerequisites are merged);
 * if `draining`, start nothing; else make the plan's assignments (in shadow mode, only record them);
 * when there is nothing to do at all, `idle` says what is done, blocked and waiting.
 *
 * Human stages (model/humanStage.ts) are left to people: the scheduler has no agent for them, so a
 * task queued at one is never assigned; it counts as waiting (for its review) in the idle report,
 * and the `reviewTask` mutation moves it on.
 */
export interface DecideInput {
  state: PipelineState;
  config: PipelineConfig;
  scheduler: SchedulerIndex;
  now: number;
  /** Idle agents that cannot start yet (see PlanOptions.unavailable). */
  unavailable?: (agentId: string) => boolean;
  /** False: leave `idle` null without looking at every task (a dry run does not show it). */
  idleReport?: boolean;
}

export interface IdleReport {
  /** Tasks that are done or cancelled. */
  done: number;
  /** Blocked tasks, which need a person. */
  blocked: string[];
  /** Tasks that cannot start: their prerequisites are blocked, no agent can take them, or they await a person's review. */
  waiting: string[];
}

export interface Decision {
  /** Pending tasks whose prerequisites are merged and that may run in this rollout mode. */
  promote: string[];
  /** A drained orchestration switch waits for in-flight work: nothing new starts. */
  draining: boolean;
  /** Shadow mode: assignments are recorded as decisions, never made. */
  shadow: boolean;
  /** The scheduler's assignments; empty while there are tasks to promote (decide again after). */
  plan: PlanResult;
  /** Non-null when nothing is in flight, due or assignable: the pipeline has nothing left to do. */
  idle: IdleReport | null;
}

/** Which tasks may run under the state's rollout mode (pilot: only labelled ones). */
export function eligibility(state: PipelineState, config: PipelineConfig): (t: Task) => boolean {
  return rolloutEligibility(state, config) ?? (() => true);
}

export function decide({
  state,
  config,
  scheduler,
  now,
  unavailable,
  idleReport: wantIdle = true,
}: DecideInput): Decision {
  const eligible = eligibility(state, config);
  const shadow = state.mode === 'shadow';
  const promote = scheduler.readyPending().filter((id) => eligible(state.tasks[id]!));
  const draining = state.pending_switch !== null;
  // Tasks to promote come first: planning before they are queued would plan for a stale picture.
  if (promote.length) return { promote, draining, shadow, plan: { assignments: [], wakeAt: null }, idle: null };
  const plan: PlanResult = draining
    ? { assignments: [], wakeAt: null }
    : scheduler.plan(state.orchestration_mode, state, { now, eligible, ...(unavailable ? { unavailable } : {}) });
  const idle = wantIdle ? idleReport(state, now, shadow, eligible, plan) : null;
  return { promote, draining, shadow, plan, idle };
}

/**
 * Whether the pipeline has nothing left to do, judged on the state alone: no task in flight, no
 * retry due (outside shadow mode, where nothing runs), no switch draining, and no assignment the
 * plan could make. Tasks held back by the rollout mode (no pilot label) are neither done nor waiting.
 */
function idleReport(
  state: PipelineState,
  now: number,
  shadow: boolean,
  eligible: (t: Task) => boolean,
  plan: PlanResult,
): IdleReport | null {
  const waiting: string[] = [];
  const blocked: string[] = [];
  let done = 0;
  let queued = false;
  for (const t of Object.values(state.tasks)) {
    if (isFinal(t.status)) done++;
    else if (t.status === 'blocked') blocked.push(t.id);
    else if (t.status === 'working' || t.status === 'merging') return null;
    else if (t.status === 'queued' && !shadow && t.not_before && Date.parse(t.not_before) > now) return null;
    else if (eligible(t)) {
      waiting.push(t.id);
      if (t.status === 'queued') queued = true;
    }
  }
  if (state.pending_switch) return null;
  // Queued work that the plan assigns is about to start; queued work it cannot assign (no agent for
  // its role) is waiting.
  if (!shadow && queued && plan.assignments.length > 0) return null;
  return { done, blocked, waiting };
}
