import { readFile } from 'node:fs/promises';
import type { LeaderInfo } from '../../src/engine/ports/statePort';
import {
  processesMentioning,
  startCli,
  until,
  within,
  type CliChild,
  type Sandbox,
} from '../../test/engine/monitor/monitorKit';
import type { Moment } from './soakPlan';

/**
 * The process faults of a soak trial: `pipeline run` children watched through their `--json`
 * events, killed with SIGKILL at a moment, their agents' process groups killed too, and the
 * SIGSTOP handover. Every wait is for a condition (an event, an exit, a lease that lapsed); the
 * only times are the plan's own (a lag after an event, a moment after a start), which decide when
 * a fault strikes, never whether something happened.
 */

export const RUN_ARGS = ['run', '--until-idle', '--json'];

export interface JsonEvent {
  event: string;
  taskId?: string;
  commit?: string | null;
  after?: { id: string; status: string; stage?: string };
  transition?: { type: string; commit?: string };
  leader?: { pid: number } | null;
}

/** A `pipeline run` child and whether it has exited. */
export interface Run {
  child: CliChild;
  code: number | null | undefined;
  exitedNow(): boolean;
}

export function startRun(sb: Sandbox, env: NodeJS.ProcessEnv): Run {
  const child = startCli(sb.dir, RUN_ARGS, env);
  const r: Run = {
    child,
    code: undefined,
    exitedNow: () => r.code !== undefined,
  };
  void child.exited.then((code) => (r.code = code));
  return r;
}

export function jsonEvents(c: CliChild): JsonEvent[] {
  const out: JsonEvent[] = [];
  for (const l of c.output().split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as JsonEvent);
    } catch {
      // A line cut by the kill.
    }
  }
  return out;
}

function matches(e: JsonEvent, on: Exclude<Moment['on'], 'time'>): boolean {
  switch (on) {
    case 'assign':
      return e.event === 'task:transition' && e.transition?.type === 'assign';
    case 'complete':
      return e.event === 'task:transition' && e.transition?.type === 'complete';
    case 'merging':
      return e.event === 'task:transition' && e.after?.status === 'merging';
    case 'agent-started':
      return e.event === 'agent:started';
    case 'merged':
      return e.event === 'merge:finished' && !!e.commit;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for the moment in the run's events: true when it came, false when the run ended first
 * (it had fewer such events to give). The run is given `limitMs` before the wait fails.
 */
export async function reach(run: Run, m: Moment, limitMs: number): Promise<boolean> {
  if (m.on === 'time') {
    await Promise.race([sleep(m.afterMs), run.child.exited]);
    return !run.exitedNow();
  }
  const on = m.on;
  const got = await until(
    `the run reaching ${m.on} #${m.nth}`,
    limitMs,
    () => {
      if (jsonEvents(run.child).filter((e) => matches(e, on)).length >= m.nth) return 'reached';
      return run.exitedNow() ? 'ended' : undefined;
    },
    5,
    () => run.child.output().slice(-2000),
  );
  if (got === 'ended') return false;
  if (m.lagMs) await sleep(m.lagMs);
  return !run.exitedNow();
}

export async function kill9(run: Run): Promise<void> {
  run.child.proc.kill('SIGKILL');
  await within('a killed run exiting', 20_000, run.child.exited);
}

async function processGroup(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[2]);
  } catch {
    return undefined;
  }
}

/** SIGKILL to every process working in the sandbox, by process group where it leads one (an agent's). */
export async function killSandboxProcesses(sb: Sandbox): Promise<number> {
  const own = await processGroup(process.pid);
  let killed = 0;
  for (const pid of await processesMentioning(sb.base)) {
    const pgid = await processGroup(pid);
    try {
      if (pgid === pid && pgid !== own) process.kill(-pgid, 'SIGKILL');
      else process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // Gone meanwhile.
    }
  }
  return killed;
}

/** Who leads a trial's pipeline, from its store's lease (soakStore.ts TrialStore.leader). */
export type LeaderOf = (sb: Sandbox) => Promise<LeaderInfo | null>;

/** Who leads the sandbox's pipeline now (its pid), or null. */
export async function leaderPid(sb: Sandbox, leader: LeaderOf): Promise<number | null> {
  return (await leader(sb))?.pid ?? null;
}

export interface HandoverResult {
  /** False when run A ended before the moment came (nothing was stopped). */
  happened: boolean;
  /** A stood down: it printed leader:lost and exited without an uncaught error. */
  stoodDown: boolean;
  note: string;
  runs: Run[];
}

/**
 * SIGSTOP of run A at the moment, until its lease lapses; run B takes over; `contLagMs` after B
 * leads, SIGCONT to A, which must notice and stand down; then B is killed with SIGKILL.
 */
export async function sigstopHandover(
  sb: Sandbox,
  leader: LeaderOf,
  env: NodeJS.ProcessEnv,
  moment: Moment,
  contLagMs: number,
  limitMs: number,
): Promise<HandoverResult> {
  const a = startRun(sb, env);
  if (!(await reach(a, moment, limitMs))) return { happened: false, stoodDown: true, note: 'A ended first', runs: [a] };
  const aPid = a.child.proc.pid;
  a.child.proc.kill('SIGSTOP');
  // Stopped early (a moment in time on a busy machine), A may not have led yet: then it is refused
  // once B leads, which is right, and there is nothing for it to stand down from.
  const aLed = (await leaderPid(sb, leader)) === aPid;
  let b: Run | undefined;
  try {
    await until('the stopped leader lease lapsing', 60_000, async () => (await leaderPid(sb, leader)) !== aPid, 100);
    b = startRun(sb, env);
    const bPid = b.child.proc.pid;
    const bRun = b;
    await until(
      'run B leading',
      60_000,
      async () => (await leaderPid(sb, leader)) === bPid || bRun.exitedNow(),
      20,
      () => bRun.child.output().slice(-2000),
    );
    await Promise.race([sleep(contLagMs), b.child.exited]);
  } finally {
    a.child.proc.kill('SIGCONT');
  }
  // A must stand down by itself: its lease is gone, so it stops and exits non-zero.
  let stoodDown = true;
  let note = '';
  try {
    const code = await within('the replaced leader exiting', 60_000, a.child.exited);
    const out = a.child.output();
    const lostEvent = jsonEvents(a.child).some((e) => e.event === 'leader:lost');
    const uncaught = /\n\s+at .+\(.+:\d+:\d+\)|Uncaught|unhandled/i.test(out);
    const refusedToLead = !aLed && !lostEvent && /This pipeline is led by/.test(out);
    if (refusedToLead && !uncaught) note = `A had not led when stopped; it was refused once B led (exit ${code})`;
    else if (uncaught || (!lostEvent && code !== 0)) {
      stoodDown = false;
      note = `A exited ${code} ${lostEvent ? 'after leader:lost' : 'without leader:lost'}${uncaught ? ' with an uncaught error' : ''}: ${out.slice(-600)}`;
    } else note = lostEvent ? `A stood down (exit ${code})` : `A had ended its work (exit ${code})`;
  } catch (e) {
    stoodDown = false;
    note = `A did not exit after SIGCONT: ${(e as Error).message}`;
    await kill9(a);
  }
  if (b && !b.exitedNow()) await kill9(b);
  return { happened: true, stoodDown, note, runs: b ? [a, b] : [a] };
}
