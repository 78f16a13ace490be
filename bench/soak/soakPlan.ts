import { mulberry32 } from '../../test/support/prng';
import type { SoakStoreKind } from './soakStore';

/**
 * A soak trial's plan, drawn from one seed: the tasks (some added before the first run, some while a
 * run leads), the faults in the order they strike, and how long the scripted agents work. The same
 * seed gives the same plan, so a trial that found something is replayed with `--seed`; the moments
 * are events of the run (an agent start, a transition to merging…), so the replay meets the same
 * situation even though the machine's timing differs.
 */

/** When a fault strikes a run: after the nth event of a kind in its `--json` output (plus a lag), or after a time. */
export type Moment =
  | { on: 'assign' | 'agent-started' | 'complete' | 'merging' | 'merged'; nth: number; lagMs: number }
  | { on: 'time'; afterMs: number };

export type GitFault =
  /** `.git/index.lock` left by a crashed git command, older than the stale-lock age. */
  | { kind: 'stale-index-lock' }
  /** `.git/refs/heads/main.lock` left the same way. */
  | { kind: 'stale-ref-lock' }
  /** An agent worktree detached (`git checkout --detach`); with `commit`, work committed on the detached HEAD too. */
  | { kind: 'detached-head'; agentPick: number; commit: boolean }
  /** An agent worktree directory deleted (`rm -rf`), its registration left behind. */
  | { kind: 'deleted-worktree'; agentPick: number }
  /** A person's commit on the target branch, in the main working tree. */
  | { kind: 'human-commit' }
  /**
   * What an agent killed inside `git add` leaves: a file it wrote and a fresh `index.lock` in its
   * worktree's git dir (younger than the stale-lock age), in the worktree of an agent at work.
   */
  | { kind: 'agent-git-killed'; agentPick: number }
  /** A pre-commit hook that refuses the next `times` commits (a failing check), then lets them through. */
  | { kind: 'failing-hook'; times: number };

export type Step =
  /** `kill -9` of `pipeline run` at a moment; with `agentsToo`, of every agent's process group as well. */
  | { kind: 'kill-run'; moment: Moment; agentsToo: boolean; adds: TaskPlan[] }
  /**
   * SIGSTOP of the leader at a moment, longer than its lease; a second run takes over; after
   * `contLagMs` the first gets SIGCONT and must stand down; then the second is killed (-9).
   */
  | { kind: 'sigstop-handover'; moment: Moment; contLagMs: number }
  /**
   * PostgreSQL only: the server stops at a moment of a run (`fast` as `pg_ctl stop -m fast` does,
   * `immediate` as a crash of the server), stays down `downMs`, and starts again; the run waits for
   * it and goes on to its end by itself.
   */
  | { kind: 'pg-restart'; moment: Moment; mode: 'fast' | 'immediate'; downMs: number }
  | { kind: 'git-fault'; fault: GitFault };

export interface TaskPlan {
  id: string;
  title: string;
  prerequisites: string[];
  paths: string[];
  description: string;
}

export interface TrialPlan {
  seed: number;
  /** Where the trial's state is kept (soakStore.ts). */
  store: SoakStoreKind;
  /** SCRIPTED_AGENT_DELAY_MS for the trial's agents. */
  agentDelayMs: number;
  /**
   * The retry limit (`retry.maxAttempts`): above the failures the plan itself causes at one stage (a
   * `scripted: fail` directive and every commit a failing hook refuses), so only the faults' effects
   * can block a task, never the plan's own arithmetic.
   */
  maxAttempts: number;
  /** Added with `pipeline task add` before any run. */
  tasks: TaskPlan[];
  steps: Step[];
}

const PROCESS_FAULTS = ['kill-run', 'kill-run-and-agents', 'sigstop-handover', 'pg-restart'] as const;
type ProcessFault = (typeof PROCESS_FAULTS)[number];
export type FaultKind = ProcessFault | GitFault['kind'];

export const ALL_FAULTS: readonly FaultKind[] = [
  'kill-run',
  'kill-run-and-agents',
  'sigstop-handover',
  'stale-index-lock',
  'stale-ref-lock',
  'detached-head',
  'deleted-worktree',
  'human-commit',
  'agent-git-killed',
  'failing-hook',
  'pg-restart',
];

/** Faults only a store has: left out of the other store's plans. */
export const STORE_ONLY_FAULTS: Record<SoakStoreKind, readonly FaultKind[]> = {
  file: [],
  postgres: ['pg-restart'],
};

/**
 * Faults of the file journal's own bytes (a damaged record, a cut file) that make no sense for
 * PostgreSQL, which keeps no journal file. The battery has none today: a damaged journal is tested
 * by the store's own recovery tests (test/engine/store/), not by the soak; a plan for PostgreSQL
 * says so, and this is where such a fault would be left out of it.
 */
export const JOURNAL_ONLY_FAULTS: readonly FaultKind[] = [];
export interface PlanOptions {
  /** The fault kinds a plan may use (all by default); the quick test leaves out the slow handover. */
  faults?: readonly FaultKind[];
  /** The store the trial runs on (the file journal by default); its faults join the plan, the other's leave it. */
  store?: SoakStoreKind;
}

/** The fault kinds a plan on `store` may draw from `faults`. */
export function faultsFor(store: SoakStoreKind, faults: readonly FaultKind[] = ALL_FAULTS): FaultKind[] {
  const other = store === 'file' ? STORE_ONLY_FAULTS.postgres : [...STORE_ONLY_FAULTS.file, ...JOURNAL_ONLY_FAULTS];
  return faults.filter((f) => !other.includes(f));
}

const DIRECTIVES = ['scripted: fail implementation 1', 'scripted: fail test 1', 'scripted: request-changes 1'];
const MOMENTS = ['assign', 'agent-started', 'complete', 'merging', 'merged', 'time'] as const;

export function planTrial(seed: number, o: PlanOptions = {}): TrialPlan {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const store = o.store ?? 'file';
  // A file plan draws exactly as before PostgreSQL's faults existed: the same seed, the same plan.
  const allowed = faultsFor(store, o.faults);
  const processFaults = allowed.filter((f): f is ProcessFault => (PROCESS_FAULTS as readonly string[]).includes(f));
  const gitFaults = allowed.filter((f): f is GitFault['kind'] => !(PROCESS_FAULTS as readonly string[]).includes(f));

  let next = 1;
  const ids: string[] = [];
  const newTask = (): TaskPlan => {
    const id = `TASK-${String(next++).padStart(3, '0')}`;
    // Prerequisites only on earlier tasks, so the graph has no cycle; about one task in three waits on one.
    const prerequisites = ids.length && rnd() < 0.35 ? [pick(ids)] : [];
    ids.push(id);
    return {
      id,
      title: `Soak work ${id}`,
      prerequisites,
      paths: [`src/${id.toLowerCase()}*`],
      description: rnd() < 0.25 ? pick(DIRECTIVES) : '',
    };
  };

  const tasks = Array.from({ length: int(3, 6) }, newTask);
  const steps: Step[] = [];
  const moment = (): Moment => {
    const on = pick(MOMENTS);
    if (on === 'time') return { on, afterMs: int(200, 4000) };
    return { on, nth: int(1, on === 'merged' || on === 'merging' ? 2 : 5), lagMs: pick([0, 0, 5, 20, 150]) };
  };
  let handovers = 0;
  for (let i = int(1, 3); i > 0; i--) {
    // One handover per trial at most: each costs a whole lease (15 s) of waiting.
    const kinds = processFaults.filter((k) => k !== 'sigstop-handover' || handovers === 0);
    if (kinds.length) {
      const kind = pick(kinds);
      if (kind === 'sigstop-handover') {
        handovers++;
        steps.push({ kind, moment: moment(), contLagMs: int(0, 6000) });
      } else if (kind === 'pg-restart') {
        // Down for less than the lease mostly, and sometimes longer (the leader's heartbeat lapses).
        steps.push({
          kind,
          moment: moment(),
          mode: pick(['fast', 'fast', 'immediate']),
          downMs: pick([200, 1000, 3000, 6000, 17000]),
        });
      } else {
        const adds = rnd() < 0.4 ? Array.from({ length: int(1, 2) }, newTask) : [];
        steps.push({ kind: 'kill-run', moment: moment(), agentsToo: kind === 'kill-run-and-agents', adds });
      }
    }
    if (gitFaults.length && rnd() < 0.6) {
      for (let j = int(1, 2); j > 0; j--) steps.push({ kind: 'git-fault', fault: gitFault(pick(gitFaults), rnd) });
    }
  }
  const refused = steps.reduce(
    (n, s) => n + (s.kind === 'git-fault' && s.fault.kind === 'failing-hook' ? s.fault.times : 0),
    0,
  );
  return { seed, store, agentDelayMs: pick([40, 80, 150, 300]), maxAttempts: Math.max(3, 2 + refused), tasks, steps };
}

function gitFault(kind: GitFault['kind'], rnd: () => number): GitFault {
  switch (kind) {
    case 'detached-head':
      return { kind, agentPick: rnd(), commit: rnd() < 0.6 };
    case 'deleted-worktree':
    case 'agent-git-killed':
      return { kind, agentPick: rnd() };
    case 'failing-hook':
      return { kind, times: 1 + Math.floor(rnd() * 2) };
    default:
      return { kind };
  }
}

/** One line per step, for the report and for replaying a trial by hand. */
export function describePlan(plan: TrialPlan): string[] {
  const when = (m: Moment) =>
    m.on === 'time' ? `${m.afterMs} ms after start` : `${m.lagMs} ms after ${m.on} #${m.nth}`;
  const lines = [
    `seed ${plan.seed} on ${plan.store === 'postgres' ? `PostgreSQL (faults of journal files left out: ${JOURNAL_ONLY_FAULTS.join(', ') || 'the battery has none'}; the server restarted mid-run added)` : 'the file journal'}: ${plan.tasks.length} task(s) added first (${plan.tasks.map((t) => `${t.id}${t.prerequisites.length ? `<-${t.prerequisites.join(',')}` : ''}${t.description ? ` [${t.description}]` : ''}`).join(', ')}), agents work ${plan.agentDelayMs} ms, retry limit ${plan.maxAttempts}`,
  ];
  for (const s of plan.steps) {
    if (s.kind === 'kill-run')
      lines.push(
        `run; ${s.adds.length ? `add ${s.adds.map((t) => t.id).join(', ')} while it leads; ` : ''}kill -9 ${s.agentsToo ? 'it and every agent group' : 'it'} ${when(s.moment)}`,
      );
    else if (s.kind === 'sigstop-handover')
      lines.push(
        `run A; SIGSTOP A ${when(s.moment)}; after its lease lapses run B; SIGCONT A ${s.contLagMs} ms after B leads; A must stand down; kill -9 B`,
      );
    else if (s.kind === 'pg-restart')
      lines.push(
        `run; stop PostgreSQL (${s.mode}) ${when(s.moment)}, start it again ${s.downMs} ms later; the run goes on to its end`,
      );
    else lines.push(`git fault: ${JSON.stringify(s.fault)}`);
  }
  lines.push('last run: pipeline run --until-idle');
  return lines;
}
