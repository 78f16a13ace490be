import type { Command } from 'commander';
import { hostname } from 'node:os';
import { PipelineError } from '../engine/errors';
import { loadConfig } from '../engine/home/configFile';
import { findHome } from '../engine/home/pipelineHome';
import { isName } from '../engine/model/ids';
import { Pipeline } from '../engine/pipeline';
import { PgDatabase } from '../engine/postgres/pgDatabase';
import { assertMigrated } from '../engine/postgres/schemaMigrations';
import { databaseUrl } from '../engine/stateBackend';
import { Coordinator } from '../engine/workers/coordinator';
import { Worker } from '../engine/workers/worker';
import { coordinatorLabel } from '../engine/workers/workerStatus';
import { EXIT, println, printable } from './output';
import { SCRIPTED_AGENT } from './runtime';

/**
 * `pipeline worker --agents architect,tester [--name NAME] [--coordinate]`: runs those agents on
 * this machine, in worktrees of this clone, for a pipeline whose state is in PostgreSQL. With
 * `--coordinate` it also stands as coordinator (schedules and merges while it leads; takes over
 * when the coordinator's lease lapses). Runs until interrupted.
 */
interface WorkerCliOptions {
  agents?: string;
  name?: string;
  coordinate?: boolean;
  lease: string;
  poll: string;
}

function seconds(v: string, where: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0)
    throw new PipelineError('usage', `${where} must be a positive number of seconds, not ${JSON.stringify(v)}.`, {
      where,
      fix: `For example ${where} 30.`,
    });
  return Math.round(n * 1000);
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'run some of the pipeline’s agents on this machine (the state in PostgreSQL, branches through the remote)',
    )
    .option('--agents <ids>', 'the agents this worker runs, comma-separated (registered with `pipeline agent add`)')
    .option('--name <name>', 'how this worker is named in status and metrics (default: host-pid)')
    .option('--coordinate', 'also coordinate: schedule and merge while leading, take over when the coordinator goes')
    .option('--lease <seconds>', "how long a claim (and the coordinator's lead) holds without a heartbeat", '30')
    .option('--poll <seconds>', 'how often to look for work when no notification comes', '2')
    .action(async (o: WorkerCliOptions) => {
      process.exitCode = await runWorker(o);
    });
}

async function runWorker(o: WorkerCliOptions): Promise<number> {
  const agents = (o.agents ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const a of agents)
    if (!isName(a))
      throw new PipelineError('usage', `Invalid agent id ${JSON.stringify(a)}.`, {
        where: '--agents',
        fix: 'Give agent ids as `pipeline agent list` shows them, comma-separated.',
      });
  if (agents.length === 0 && !o.coordinate)
    throw new PipelineError('usage', 'A worker needs agents to run, or --coordinate.', {
      where: '--agents',
      fix: 'For example: pipeline worker --agents architect,tester',
    });
  const leaseMs = seconds(o.lease, '--lease');
  const pollMs = seconds(o.poll, '--poll');
  const name = o.name ?? `${hostname()}-${process.pid}`;
  if (!isName(name))
    throw new PipelineError('usage', `Invalid worker name ${JSON.stringify(name)}.`, {
      where: '--name',
      fix: 'Use lower-case letters, digits and dashes, starting with a letter (for example: build-2).',
    });
  const home = await findHome(process.cwd());
  const config = await loadConfig(home.configFile);
  if (config.store?.kind !== 'postgres')
    throw new PipelineError('usage', 'Workers need the pipeline’s state in PostgreSQL; this one keeps it in files.', {
      file: home.configFile,
      where: 'store',
      fix: 'Add "store": { "kind": "postgres", "urlEnv": "PIPELINE_DATABASE_URL" } to the configuration on every machine, set that variable, and run `pipeline db migrate` once.',
    });
  const { url, source } = databaseUrl(home, config.store);
  const db = new PgDatabase(url, { source, max: 3 });
  const log = (line: string) => println(printable(line));
  let pipeline: Pipeline | undefined;
  let coordinator: Coordinator | undefined;
  let worker: Worker | undefined;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (wake = r));
  process.once('SIGINT', wake);
  process.once('SIGTERM', wake);
  try {
    await db.retrying('opening the pipeline state', 30_000, () => assertMigrated(db));
    const known = await db.query<{ id: string }>('SELECT id FROM pipeline.agents');
    const ids = new Set(known.rows.map((r) => r.id));
    const unknown = agents.filter((a) => !ids.has(a));
    if (unknown.length)
      throw new PipelineError('usage', `No agent ${unknown.join(', ')} in this pipeline.`, {
        where: '--agents',
        fix: `Register it first (pipeline agent add ${unknown[0]} --role <role> --command <preset>), or name one of: ${[...ids].join(', ') || '(none yet)'}.`,
      });
    if (o.coordinate) {
      pipeline = await Pipeline.open({
        home,
        role: 'auto',
        takeOver: true,
        label: coordinatorLabel(name),
        storeOptions: { retryMs: 120_000, openRetryMs: 30_000, leaseMs },
      });
      coordinator = new Coordinator({ pipeline, db, url, leaseMs, pollMs, scriptedAgent: SCRIPTED_AGENT, log });
      pipeline.events.on('monitor:warning', (e) => log(`warning: ${e.message}`));
      pipeline.events.on('pipeline:decision', (e) => log(e.text));
      await coordinator.start();
    }
    if (agents.length) {
      worker = await Worker.open({
        name,
        agents,
        home,
        config,
        db,
        url,
        leaseMs,
        pollMs,
        scriptedAgent: SCRIPTED_AGENT,
        coordinate: o.coordinate ?? false,
        log,
      });
      await worker.start();
    }
    log(`worker ${name} runs ${agents.join(', ') || 'no agents'}${o.coordinate ? ' and stands as coordinator' : ''}`);
    await stopped;
    log(`worker ${name} stops`);
    return EXIT.ok;
  } finally {
    process.off('SIGINT', wake);
    process.off('SIGTERM', wake);
    await worker?.stop().catch(() => undefined);
    await coordinator?.stop().catch(() => undefined);
    await pipeline?.close().catch(() => undefined);
    await db.close();
  }
}
