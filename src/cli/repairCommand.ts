import type { Command } from 'commander';
import { JsonLogger, pipelineLogFile } from '../engine/observability/jsonLogger';
import { notLeaderError } from '../engine/pipeline';
import { PipelineError } from '../engine/errors';
import { loadConfig } from '../engine/home/configFile';
import { findHome } from '../engine/home/pipelineHome';
import { pipelineStateCodec } from '../engine/model/stateCodec';
import { LeaderLease } from '../engine/store/leaderLease';
import { StateStore, type RepairReport } from '../engine/store/stateStore';
import { printJson, println } from './output';

/**
 * `pipeline repair [--dry-run]`: the one way a loss in a damaged journal becomes permanent. A
 * leader refuses to open a journal that lost acknowledged records, so that nobody's work is dropped
 * without a person seeing what; this command shows what is damaged, what is lost and what a repair
 * does, and (without --dry-run) does it: the recovered state becomes a fresh snapshot and every
 * damaged file is moved aside, never deleted. It leads for the moment it writes, so it refuses
 * while a `pipeline run` or a VS Code window leads.
 */
export function registerRepairCommand(program: Command): void {
  program
    .command('repair')
    .description('show what is damaged in the state and repair it: a fresh snapshot, damaged files moved aside')
    .option('--dry-run', 'only show what is damaged and what a repair would do; change nothing')
    .option('--json', 'print the report as JSON')
    .action(async (o: { dryRun?: boolean; json?: boolean }) => {
      const home = await findHome(process.cwd());
      if ((await loadConfig(home.configFile)).store?.kind === 'postgres')
        throw new PipelineError(
          'usage',
          'This pipeline keeps its state in PostgreSQL: there are no state files to repair.',
          {
            file: home.configFile,
            where: 'store',
            fix: 'Every commit there is one transaction, so nothing is half written; `pipeline db status` checks the schema.',
          },
        );
      const dryRun = o.dryRun === true;
      let report: RepairReport;
      if (dryRun) {
        report = await StateStore.repair({ dir: home.stateDir, codec: pipelineStateCodec, dryRun });
      } else {
        const got = await LeaderLease.acquire(home.leaderDir, { label: 'pipeline repair' });
        if (!(got instanceof LeaderLease)) throw notLeaderError(got.leader);
        try {
          report = await StateStore.repair({ dir: home.stateDir, codec: pipelineStateCodec, dryRun, lease: got });
        } finally {
          await got.release();
        }
        if (report.performed) await logRepair(home.logsDir, report);
      }
      if (o.json) printJson(report);
      else printReport(report, dryRun);
    });
}

/** The repair goes into the pipeline's log too, so the loss it made permanent stays on record. */
async function logRepair(logsDir: string, report: RepairReport): Promise<void> {
  const logger = new JsonLogger(pipelineLogFile(logsDir));
  const lost = report.lost.map((l) => l.seq);
  logger.log(
    report.lost.length || report.unapplied.length || report.stop ? 'warn' : 'info',
    'state:repaired',
    `pipeline repair: ${report.actions.join('; ')}`,
    { data: { ...report, lostSeqs: lost } },
  );
  await logger.close();
}

function printReport(r: RepairReport, dryRun: boolean): void {
  if (r.clean) {
    println(`Nothing to repair: no damaged file in ${r.dir}.`);
    return;
  }
  println(`State directory: ${r.dir}`);
  println('Damaged:');
  for (const d of r.damaged) println(`  ${d}`);
  if (r.lost.length > 0) {
    println('Lost (acknowledged records whose lines are damaged; not in the recovered state):');
    for (const l of r.lost)
      println(
        `  record ${l.seq} (${l.file}, line ${l.line}): ${l.guess ? `the damaged bytes read: ${l.guess}` : 'unreadable'}`,
      );
  }
  if (r.unapplied.length > 0) {
    println('Not applied (intact records that could not be applied):');
    for (const u of r.unapplied) println(`  record ${u.seq} (${u.what}; ${u.file}, line ${u.line}): ${u.why}`);
  }
  if (r.stop) println(`Replay stopped at ${r.stop}; no record from there on is in the recovered state.`);
  println(`Recovered: the state up to record ${r.seq}.`);
  println(dryRun ? 'A repair would do this:' : 'Repaired:');
  for (const a of r.actions) println(`  - ${a}`);
  if (dryRun) println('Run `pipeline repair` to do it; every damaged file is kept, moved aside.');
}
