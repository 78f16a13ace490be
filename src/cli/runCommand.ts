import type { Command } from 'commander';
import { isPipelineError, PipelineError } from '../engine/errors';
import { findHome } from '../engine/home/pipelineHome';
import { loadConfig } from '../engine/home/configFile';
import { untilNoOneChangeLead } from '../engine/oneChangeLead';
import type { LeaderInfo } from '../engine/ports/statePort';
import { stateBackend } from '../engine/storeSelection';
import { Pipeline } from '../engine/pipeline';
import { withPipeline } from './openPipeline';
import { EXIT, println, printable } from './output';
import type { RunnerKind } from './runtime';

interface RunOptions {
  dry?: boolean;
  untilIdle?: boolean;
  json?: boolean;
  runner: string;
  metricsPort?: string;
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the pipeline (the monitor) until interrupted, or with --until-idle until nothing is left to do')
    .option('--dry', 'print what the scheduler would do now, and do nothing')
    .option(
      '--until-idle',
      'exit when idle: 0 when every task is completed, 1 when some are blocked or cannot go on (in shadow mode: 0 once every decision is recorded)',
    )
    .option('--json', 'print events as JSON lines')
    .option(
      '--runner <kind>',
      'how agents run: process (a child process per stage) or tmux (a window per agent)',
      'process',
    )
    .option(
      '--metrics-port <port>',
      'serve /metrics, /healthz, /readyz and /snapshot.json on 127.0.0.1 at this port (0: any free port)',
    )
    .action(async (o: RunOptions) => {
      if (o.dry) return dryRun();
      if (o.runner !== 'process' && o.runner !== 'tmux')
        throw new PipelineError('usage', `Unknown runner ${JSON.stringify(o.runner)}.`, {
          where: '--runner',
          fix: 'Use process or tmux.',
        });
      // Imported here, not at the top: `run --dry` needs no metrics, git or monitor code.
      const { parsePort } = await import('./metricsCommand.js');
      const metricsPort = o.metricsPort === undefined ? undefined : parsePort(o.metricsPort, '--metrics-port');
      process.exitCode = await runMonitor(o.runner, o.untilIdle ?? false, o.json ?? false, process.cwd(), {
        metricsPort,
      });
    });
}

async function dryRun(): Promise<void> {
  await withPipeline('follow', 'pipeline run --dry', (p) => {
    const r = p.dryRun();
    println(`${p.state.orchestration_mode} mode, ${p.state.mode} rollout:`);
    if (r.lines.length === 0) println('  nothing to do now');
    for (const l of r.lines) println(`  ${printable(l)}`);
    for (const t of Object.values(p.state.tasks)) {
      if (t.status === 'queued' && !r.plan.assignments.some((a) => a.taskId === t.id))
        println(`  ${printable(p.scheduler.explain(t.id, p.state, Date.now()))}`);
    }
  });
}

/**
 * How long `pipeline run` waits for a short command that leads for one change (a `task add` while no
 * pipeline ran) to let go: far longer than such a change takes, and past the lease a holder that
 * hangs keeps (15 s), after which the lease lapses and the run takes over.
 */
export const ONE_CHANGE_WAIT_MS = 30_000;

/**
 * Opens the pipeline as its leader. A short command leading for one change is waited for, then the
 * lead is taken; a pipeline led by a run, a window or a one-change holder that does not let go within
 * ONE_CHANGE_WAIT_MS is refused, naming the holder.
 */
async function openToLead(cwd: string, json: boolean): Promise<Pipeline> {
  const home = await findHome(cwd);
  const end = Date.now() + ONE_CHANGE_WAIT_MS;
  for (;;) {
    try {
      return await Pipeline.open({ home, role: 'lead', label: 'pipeline run' });
    } catch (e) {
      if (!isPipelineError(e) || e.code !== 'not-leader') throw e;
      const left = end - Date.now();
      // Asked of the store the config names: the file lease or PostgreSQL's leader row.
      const backend = await stateBackend(home, await loadConfig(home.configFile));
      try {
        const holder = await backend.leases.current();
        // Let go between the refusal and this look (a one-change holder done with its change): lead now.
        if (!holder && left > 0) continue;
        if (!holder?.oneChange || left <= 0) throw holder?.oneChange ? oneChangeHeld(holder) : e;
        const after = await untilNoOneChangeLead(backend.leases, left, (h) => {
          if (json) println(JSON.stringify({ event: 'leader:waiting', holder: h, at: new Date().toISOString() }));
          else println(`Waiting for ${h.label || 'another process'} (pid ${h.pid}) to finish its change…`);
        });
        if (after?.oneChange) throw oneChangeHeld(after);
      } finally {
        await backend.close();
      }
    }
  }
}

function oneChangeHeld(holder: LeaderInfo): PipelineError {
  return new PipelineError(
    'not-leader',
    `This pipeline is led for one change by ${holder.label || 'another process'} (pid ${holder.pid} on ${holder.host}, since ${holder.since}), which did not let go within ${ONE_CHANGE_WAIT_MS / 1000} s.`,
    {
      fix: `Look at what pid ${holder.pid} is doing (a stopped or hung command keeps the lead until its lease lapses), end it, then run again.`,
    },
  );
}

/** Runs the monitor in this process, leading the pipeline; returns the exit code. Logs to .pipeline/logs/pipeline.log. */
export async function runMonitor(
  runner: RunnerKind,
  untilIdle: boolean,
  json: boolean,
  cwd = process.cwd(),
  opts: { metricsPort?: number | undefined } = {},
): Promise<number> {
  const [{ startObservability }, { printProgress }, { createMonitor }] = await Promise.all([
    import('../engine/observability/observability.js'),
    import('./progressPrinter.js'),
    import('./runtime.js'),
  ]);
  const p = await openToLead(cwd, json);
  const obs = await startObservability(p, {
    ...(opts.metricsPort !== undefined ? { port: opts.metricsPort } : {}),
  }).catch(async (e: unknown) => {
    await p.close();
    throw e;
  });
  if (obs.server && !json) println(`Metrics: ${obs.server.url}/metrics`);
  const progress = printProgress(p, json);
  const monitor = await createMonitor(p, runner);
  let interrupted = false;
  let lostTo: string | null | undefined;
  let wake: () => void = () => undefined;
  // Created first, so a signal or a lost lead during the monitor's start is not missed.
  const stop = new Promise<'stop'>((r) => (wake = () => r('stop')));
  const onSignal = () => {
    interrupted = true;
    wake();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Shadow mode runs nothing: what this run decided is all it does, and what it reports at the end.
  let shadowDecisions = 0;
  const decided = p.events.on('pipeline:decision', (e) => {
    if (e.shadow) shadowDecisions++;
  });
  const lost = p.events.on('leader:lost', (e) => {
    lostTo = e.leader ? `${e.leader.label} (pid ${e.leader.pid} on ${e.leader.host}, epoch ${e.leader.epoch})` : null;
    wake();
  });
  try {
    await monitor.start();
    if (!json)
      println(
        `Running: ${p.state.orchestration_mode} mode, ${p.state.mode} rollout, ${Object.keys(p.state.agents).length} agent(s). ${untilIdle ? 'Exits when idle.' : 'Ctrl-C stops.'}`,
      );
    const idle = untilIdle ? monitor.untilIdle() : new Promise<never>(() => undefined);
    const r = await Promise.race([idle, stop]);
    if (r === 'stop' && lostTo !== undefined) {
      // The monitor stood down by itself and left the agents to the new leader.
      if (!json)
        println(`Lost the lead${lostTo ? ` to ${lostTo}` : ''}: stepping down; agents are left to the new leader.`);
      return EXIT.error;
    }
    if (r === 'stop') {
      if (!json) println('Stopping: agents are stopped and their tasks requeued.');
      return interrupted ? 130 : EXIT.error;
    }
    if (p.state.mode === 'shadow') {
      // Idle in shadow mode means every decision is recorded: the run did what it is for.
      if (!json)
        println(
          `Idle (shadow mode): recorded ${shadowDecisions} decision(s) in this run (${p.state.decisions.length} in all); nothing ran and no git state changed.`,
        );
      return EXIT.ok;
    }
    const ok = r.blocked.length === 0 && r.waiting.length === 0;
    if (!json) {
      println(
        `Idle: ${r.done} task(s) completed${r.blocked.length ? `; blocked: ${r.blocked.join(', ')}` : ''}${r.waiting.length ? `; cannot go on: ${r.waiting.join(', ')}` : ''}.`,
      );
      // Each reason on a line of its own: it is a sentence of its own, with parentheses of its own.
      for (const id of r.waiting) println(`  ${printable(p.scheduler.explain(id, p.state, Date.now()))}`);
    }
    return ok ? EXIT.ok : EXIT.error;
  } finally {
    decided.dispose();
    lost.dispose();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await monitor.stop();
    progress.dispose();
    await p.close();
    await obs.close();
  }
}
