/**
 * The hand-offs of a benchmark run, worked out from timestamps only (so the same code reads a run on
 * one machine and a run across workers): what each agent noted (bench/workersAgent.ts: when its
 * process started, when its task file got the marker, when it ended), the tasks' history (every
 * `assign` and `complete` with its time) and, across workers, the claims table and the workers' own
 * lines. Pure functions, tested in test/bench/workersHandoffs.test.ts.
 */

/** What the bench agent noted about one attempt (ms since the epoch). */
export interface AgentMark {
  taskId: string;
  attempt: number;
  /** When the agent's process started (performance.timeOrigin). */
  started: number;
  /** When its task file was last written: the marker's append. */
  marker: number;
  /** When it exited. */
  ended: number;
}

export interface HistoryRow {
  at: number;
  event: string;
  stage: string;
  agent?: string | undefined;
}

/** Times one attempt passed through, where they are known (ms since the epoch). */
export interface AttemptTimes {
  /** The worker's report of the attempt's end (the claim's finished_at). */
  reported?: number;
  /** The offer of the attempt (offered_at). */
  offered?: number;
  /** A worker took it (claimed_at). */
  claimed?: number;
  /** The task branch was received and the agent's log header written (the worker's clock). */
  received?: number;
}

export interface Handoff {
  taskId: string;
  from: { attempt: number; stage: string; agent: string };
  to: { attempt: number; stage: string; agent: string };
  /** Marker written → next stage's agent process started. */
  total: number;
  /** How long the next stage's agent was still busy with another task after the marker. */
  busy: number;
  /** The next agent's first attempt of the run (its worktree is made then): kept apart. */
  firstOfAgent: boolean;
  /** Consecutive parts, named, each end − start (only those whose ends are both known). */
  parts: Record<string, number>;
}

interface Attempt {
  taskId: string;
  attempt: number;
  stage: string;
  agent: string;
  assigned: number;
  /** The `complete` that ended it, when it completed. */
  completed: number | undefined;
}

/**
 * The attempts of each task from its history: the k-th `assign` starts attempt k (every assignment
 * takes the next attempt number), and the `complete` that follows it, before the next `assign`,
 * ends it.
 */
export function attemptsOf(history: ReadonlyMap<string, readonly HistoryRow[]>): Attempt[] {
  const out: Attempt[] = [];
  for (const [taskId, rows] of history) {
    let current: Attempt | undefined;
    let n = 0;
    for (const r of rows) {
      if (r.event === 'assign') {
        current = { taskId, attempt: ++n, stage: r.stage, agent: r.agent ?? '', assigned: r.at, completed: undefined };
        out.push(current);
      } else if (r.event === 'complete' && current && current.completed === undefined) {
        current.completed = r.at;
      }
    }
  }
  return out;
}

const key = (taskId: string, attempt: number) => `${taskId}#${attempt}`;

/**
 * Every hand-off from one stage's marker to the next stage's agent: consecutive attempts of a task
 * whose first completed into the stage the second runs. `stages` is the pipeline's order; `order`
 * names the parts to measure, as the AttemptTimes or the history ('marker', 'complete', 'assign',
 * 'started') of the two attempts: 'marker' and 'reported' are the first attempt's, the rest the
 * second's, except 'complete', which ends the first.
 */
export function handoffsOf(
  stages: readonly string[],
  history: ReadonlyMap<string, readonly HistoryRow[]>,
  marks: ReadonlyMap<string, AgentMark>,
  times: ReadonlyMap<string, AttemptTimes>,
  order: readonly (keyof AttemptTimes | 'marker' | 'complete' | 'assign' | 'started')[],
): Handoff[] {
  const attempts = attemptsOf(history);
  const byTask = new Map<string, Attempt[]>();
  for (const a of attempts) {
    let xs = byTask.get(a.taskId);
    if (!xs) byTask.set(a.taskId, (xs = []));
    xs.push(a);
  }
  const firstOf = new Map<string, Attempt>();
  for (const a of [...attempts].sort((x, y) => x.assigned - y.assigned))
    if (!firstOf.has(a.agent)) firstOf.set(a.agent, a);

  const out: Handoff[] = [];
  for (const [taskId, xs] of byTask) {
    for (let i = 0; i + 1 < xs.length; i++) {
      const a = xs[i]!;
      const b = xs[i + 1]!;
      if (a.completed === undefined || stages.indexOf(b.stage) !== stages.indexOf(a.stage) + 1) continue;
      const ma = marks.get(key(taskId, a.attempt));
      const mb = marks.get(key(taskId, b.attempt));
      if (!ma || !mb) continue;
      // When the next agent became free: its attempt before this one completed and its command ended.
      const previous = attempts
        .filter((x) => x.agent === b.agent && x.assigned < b.assigned)
        .sort((x, y) => x.assigned - y.assigned)
        .pop();
      let busy = 0;
      if (previous) {
        const ended = marks.get(key(previous.taskId, previous.attempt))?.ended ?? 0;
        busy = Math.max(0, Math.max(previous.completed ?? 0, ended) - ma.marker);
      }
      const ta = times.get(key(taskId, a.attempt)) ?? {};
      const tb = times.get(key(taskId, b.attempt)) ?? {};
      const at = (name: (typeof order)[number]): number | undefined => {
        switch (name) {
          case 'marker':
            return ma.marker;
          case 'reported':
            return ta.reported;
          case 'complete':
            return a.completed;
          case 'assign':
            return b.assigned;
          case 'started':
            return mb.started;
          default:
            return tb[name];
        }
      };
      const parts: Record<string, number> = {};
      for (let k = 0; k + 1 < order.length; k++) {
        const s = at(order[k]!);
        const e = at(order[k + 1]!);
        if (s !== undefined && e !== undefined) parts[`${order[k]} → ${order[k + 1]}`] = e - s;
      }
      out.push({
        taskId,
        from: { attempt: a.attempt, stage: a.stage, agent: a.agent },
        to: { attempt: b.attempt, stage: b.stage, agent: b.agent },
        total: mb.started - ma.marker,
        busy,
        firstOfAgent: firstOf.get(b.agent) === b,
        parts,
      });
    }
  }
  return out;
}

export interface Dist {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** The nearest-rank percentile (NaN for no values). */
export function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function dist(xs: readonly number[]): Dist {
  return { n: xs.length, p50: pct(xs, 50), p95: pct(xs, 95), p99: pct(xs, 99), max: xs.length ? Math.max(...xs) : NaN };
}
