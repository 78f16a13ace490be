import { readFile } from 'node:fs/promises';
import {
  cli,
  FAST_RETRY,
  processesMentioning,
  readState,
  sandbox,
  until,
  within,
  type ConfigInput,
  type Sandbox,
} from '../../test/engine/monitor/monitorKit';
import { applyGitFault } from './gitFaults';
import {
  jsonEvents,
  kill9,
  killSandboxProcesses,
  leaderPid,
  reach,
  sigstopHandover,
  startRun,
  type Run,
} from './runFaults';
import { auditTrial } from './soakAudit';
import { openSoakStore, type SoakStore } from './soakStore';
import { describePlan, type TaskPlan, type TrialPlan } from './soakPlan';

/**
 * One soak trial: a fresh repository with five scripted agents, the plan's tasks added with
 * `pipeline task add`, its faults one after another (each run is a real `pipeline run --until-idle
 * --json` child), then a last run to the end and the audit. The counts are the battery's figures;
 * anything the trial could not do (a run that hung) is an error of the trial, reported with its seed.
 */

export interface TrialResult {
  seed: number;
  /** Task adds the CLI acknowledged (exit 0) plus merge commits the runs reported. */
  acknowledged: number;
  /** Of which task adds. */
  tasksAcknowledged: number;
  /** Tasks unfinished when a fault struck that ended merged with all their commits on main. */
  recovered: number;
  lost: string[];
  duplicated: string[];
  unreachable: string[];
  /** Other findings: tasks the last run did not finish, unhealthy git, a leader that did not stand down, processes left. */
  findings: string[];
  /** Faults that struck, by kind. */
  faults: Record<string, number>;
  /** What happened, one line per step. */
  log: string[];
  ms: number;
}

export interface TrialOptions {
  /** Where the trial keeps its state (soakStore.ts); the file journal when absent. */
  store?: SoakStore;
  /** Keep the repository for inspection (its path is in the log). */
  keep?: boolean;
  /** Limit for each wait, before the patience factor (default 120 s). */
  limitMs?: number;
  onLine?: (line: string) => void;
  /** Settings for `.pipeline/config.json` (the sandbox's fast retries by default). */
  config?: Partial<ConfigInput>;
}

const AGENTS: Array<[string, string]> = [
  ['architect', 'architect'],
  ['tester', 'tester'],
  ['implementer', 'implementer'],
  ['implementer-2', 'implementer'],
  ['supervisor', 'supervisor'],
];

function addArgs(t: TaskPlan): string[] {
  return [
    'task',
    'add',
    t.title,
    '--id',
    t.id,
    '--paths',
    t.paths.join(','),
    ...(t.prerequisites.length ? ['--depends-on', t.prerequisites.join(',')] : []),
    ...(t.description ? ['--description', t.description] : []),
  ];
}

export async function runTrial(plan: TrialPlan, o: TrialOptions = {}): Promise<TrialResult> {
  const t0 = Date.now();
  const limitMs = o.limitMs ?? 120_000;
  const log: string[] = [];
  const say = (l: string) => {
    log.push(l);
    o.onLine?.(l);
  };
  const r: TrialResult = {
    seed: plan.seed,
    acknowledged: 0,
    tasksAcknowledged: 0,
    recovered: 0,
    lost: [],
    duplicated: [],
    unreachable: [],
    findings: [],
    faults: {},
    log,
    ms: 0,
  };
  const fault = (kind: string) => (r.faults[kind] = (r.faults[kind] ?? 0) + 1);
  for (const l of describePlan(plan)) say(`plan: ${l}`);
  const store = await (o.store ?? FILE_STORE).forTrial(plan.seed);
  if (store.kind !== plan.store)
    throw new Error(`the plan is for the ${plan.store} store, the trial got ${store.kind}`);
  const config = { ...(o.config ?? { retry: { ...FAST_RETRY, maxAttempts: plan.maxAttempts } }), ...store.config };
  let sb: Sandbox;
  try {
    sb = await sandbox({ tasks: [], agents: AGENTS, config });
  } catch (e) {
    await store.dispose(false);
    throw e;
  }
  say(`repository: ${sb.dir}; state: ${store.where}`);
  const env = { SCRIPTED_AGENT_DELAY_MS: String(plan.agentDelayMs) };
  const acknowledged = new Set<string>();
  const reportedMerges = new Map<string, string>();
  const exposed = new Set<string>();
  const runs: Run[] = [];

  const add = async (t: TaskPlan) => {
    const c = await cli(sb.dir, addArgs(t), limitMs);
    if (c.code === 0) acknowledged.add(t.id);
    else say(`task add ${t.id} not acknowledged (exit ${c.code}): ${c.output.trim().slice(-300)}`);
  };
  const collect = (run: Run) => {
    for (const e of jsonEvents(run.child))
      if (e.event === 'merge:finished' && e.commit && e.taskId) reportedMerges.set(e.commit, e.taskId);
  };
  // The tasks a fault finds unfinished: the ones "recovered" counts when they end merged.
  const markExposed = async () => {
    for (const t of Object.values((await readState(sb.dir)).tasks)) if (t.status !== 'done') exposed.add(t.id);
  };

  try {
    for (const t of plan.tasks) await add(t);
    let serial = 0;
    for (const step of plan.steps) {
      serial++;
      if (step.kind === 'git-fault') {
        const what = await applyGitFault(sb, step.fault, serial);
        if (!/^(no|could not) /.test(what)) fault(step.fault.kind);
        say(`git fault: ${what}`);
        await markExposed();
      } else if (step.kind === 'kill-run') {
        const run = startRun(sb, env);
        runs.push(run);
        // Tasks added while the run leads go through its inbox; the kill may come right after. Not
        // before it leads: an add that leads for its own change would not go through the inbox (the
        // run waits for it, runLeadWait.test.ts).
        const adding = (async () => {
          if (!step.adds.length) return;
          await until(
            'the run leading',
            limitMs,
            async () => run.exitedNow() || (await leaderPid(sb, store.leader)) === run.child.proc.pid,
            10,
          );
          await Promise.all(step.adds.map(add));
        })();
        const struck = await reach(run, step.moment, limitMs);
        if (struck) {
          await kill9(run);
          const agents = step.agentsToo ? await killSandboxProcesses(sb) : 0;
          fault(step.agentsToo ? 'kill-run-and-agents' : 'kill-run');
          say(`kill -9 of the run${step.agentsToo ? ` and ${agents} process(es) of its agents` : ''}`);
        } else say(`the run ended (exit ${run.code}) before the moment came: ${lastWords(run)}`);
        await adding;
        collect(run);
        await markExposed();
      } else if (step.kind === 'pg-restart') {
        if (!store.restart) throw new Error(`a ${store.kind} store cannot restart: the plan is for another store`);
        const run = startRun(sb, env);
        runs.push(run);
        if (await reach(run, step.moment, limitMs)) {
          await store.restart(step.mode, step.downMs);
          fault('pg-restart');
          say(`PostgreSQL stopped (${step.mode}) and started again ${step.downMs} ms later`);
          // The run waits for the database and goes on to its end by itself.
          const code = await within('the run after PostgreSQL came back', limitMs * 2, run.child.exited).catch(
            async (e: Error) => {
              await kill9(run);
              return `hung (${e.message})`;
            },
          );
          const idle = jsonEvents(run.child).some((e) => e.event === 'monitor:idle');
          say(`the run after the restart: exit ${code}${idle ? ', idle' : ''}`);
          if (typeof code === 'string' || !idle || UNCAUGHT.test(run.child.output()))
            r.findings.push(
              `seed ${plan.seed}: the run did not go on after PostgreSQL restarted (${step.mode}, down ${step.downMs} ms): exit ${code}: ${lastWords(run)}`,
            );
        } else say(`the run ended (exit ${run.code}) before the moment came: ${lastWords(run)}`);
        collect(run);
        await markExposed();
      } else {
        const h = await sigstopHandover(sb, store.leader, env, step.moment, step.contLagMs, limitMs);
        runs.push(...h.runs);
        h.runs.forEach(collect);
        if (h.happened) fault('sigstop-handover');
        if (!h.stoodDown) r.findings.push(`seed ${plan.seed}: the replaced leader did not stand down: ${h.note}`);
        say(`handover: ${h.note}`);
        await markExposed();
      }
    }

    // The last run, to the end.
    const last = startRun(sb, env);
    runs.push(last);
    const code = await within('the last run', limitMs * 2, last.child.exited).catch(async (e: Error) => {
      // What it was doing, for the report: the state as a follower reads it, and its last events.
      const status = await cli(sb.dir, ['status'], limitMs).catch((x: Error) => ({ output: x.message }));
      say(`the last run hung: ${e.message}\n${status.output}\n${last.child.output().slice(-3000)}`);
      await kill9(last);
      return 'hung';
    });
    collect(last);
    say(`last run: exit ${code}`);
    if (code !== 0) {
      // The idle event says what was left (blocked, waiting); without one, the run's last words.
      const idle = jsonEvents(last.child)
        .filter((e) => e.event === 'monitor:idle')
        .at(-1);
      const said = idle ? JSON.stringify({ ...idle, at: undefined }) : last.child.output().slice(-800);
      r.findings.push(`seed ${plan.seed}: the last run ended ${code}: ${said}`);
    }
    await until('no agent process left', 60_000, async () => (await processesMentioning(sb.base)).length === 0).catch(
      async () => {
        r.findings.push(`seed ${plan.seed}: processes left after the last run: ${await describeProcesses(sb)}`);
      },
    );

    const state = await readState(sb.dir);
    const audit = await auditTrial(sb, state, acknowledged, reportedMerges);
    r.tasksAcknowledged = acknowledged.size;
    r.acknowledged = acknowledged.size + reportedMerges.size;
    r.recovered = [...exposed].filter((id) => audit.merged.has(id)).length;
    r.lost = audit.lost;
    r.duplicated = audit.duplicated;
    r.unreachable = audit.unreachable;
    r.findings.push(...audit.stuck.map((s) => `seed ${plan.seed}: not finished: ${s}`));
    r.findings.push(...audit.unhealthy.map((s) => `seed ${plan.seed}: git: ${s}`));
    r.findings.push(...(await store.audit(sb)).map((s) => `seed ${plan.seed}: ${store.kind}: ${s}`));
  } catch (e) {
    r.findings.push(`seed ${plan.seed}: the trial failed: ${(e as Error).stack ?? String(e)}`);
  } finally {
    for (const run of runs) if (!run.exitedNow()) run.child.proc.kill('SIGKILL');
    await killSandboxProcesses(sb);
    const bad = r.lost.length + r.duplicated.length + r.unreachable.length + r.findings.length;
    const keep = o.keep === true || bad > 0;
    await store.dispose(keep).catch((e: Error) => say(`could not clean up ${store.where}: ${e.message}`));
    if (!keep) await sb.cleanup();
    else say(`kept ${sb.base}${store.kind === 'postgres' ? ` and ${store.where}` : ''} for inspection`);
    r.ms = Date.now() - t0;
  }
  return r;
}

/** What an uncaught error looks like in a run's output: a stack trace. */
const UNCAUGHT = /\n\s+at .+\(.+:\d+:\d+\)|Uncaught|unhandled/i;

/** The file journal, for trials that name no store. */
const FILE_STORE: SoakStore = {
  kind: 'file',
  where: 'the file journal',
  forTrial: async () => (await openSoakStore('file')).forTrial(0),
  close: () => Promise.resolve(),
};

/** A run's last line that is not a JSON event (an error it printed), else its last event. */
function lastWords(run: Run): string {
  const lines = run.child.output().trim().split('\n');
  return (lines.filter((l) => !l.startsWith('{')).at(-1) ?? lines.at(-1) ?? '').slice(0, 400);
}

async function describeProcesses(sb: Sandbox): Promise<string> {
  const out: string[] = [];
  for (const pid of await processesMentioning(sb.base)) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    out.push(`${pid} ${cmd.replace(/\0/g, ' ').slice(0, 200)}`);
  }
  return out.join('; ');
}
