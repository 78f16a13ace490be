import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import type { RolloutMode } from '../engine/model/schema';
import { strategyNames } from '../engine/scheduler/strategyRegistry';
import { homeWarnings } from '../engine/home/pipelineHome';
import { withPipeline } from './openPipeline';
import { EXIT, printJson, println } from './output';
import type { Agent } from '../engine/model/schema';
import type { AgentProgress } from '../engine/progress/progressBoard';
import { tokensText, usd } from '../engine/usage/pricing';
import { agentWorkerNote, workerLines } from './workerLines';

/** One agent in `pipeline status`: who, what it works on, and what it does now or why it waits. */
export function agentLine(a: Agent, progress: AgentProgress | undefined): string {
  const head = `${a.id.padEnd(15)} ${a.role.padEnd(12)} ${a.status.padEnd(8)} ${a.current_task ?? ''}`;
  if (a.status === 'paused' && a.paused_until)
    return `${head} paused until ${hhmm(a.paused_until)}${a.paused_reason ? `: ${a.paused_reason}` : ''}`.trimEnd();
  if (!progress) return head.trimEnd();
  const now = progress.step ?? 'starting';
  const spent = progress.usage ? ` (${tokensText(progress.usage)}, ${usd(progress.usage.costUsd)})` : '';
  return `${head} ${progress.stage} attempt ${progress.attempt}: ${now}${spent}`;
}

/**
 * How many of a queue's ids `pipeline status` prints: a pipeline with thousands of tasks printed
 * each of them (2 905 completed ids in one line on a 6 433-task import). The rest are counted and
 * the line says where to see them all; `status --json` still lists every one.
 */
export const QUEUE_IDS_SHOWN = 20;

/** The task status behind a queue of `status`, where `task list --status` can list that queue alone. */
const STATUS_OF_QUEUE: Readonly<Record<string, string>> = {
  unassigned: 'pending',
  merging: 'merging',
  blocked: 'blocked',
  completed: 'done',
  cancelled: 'cancelled',
};

/** One queue's ids in `pipeline status`: all of them up to QUEUE_IDS_SHOWN, else the first and a count. */
export function queueText(queue: string, ids: readonly string[]): string {
  if (ids.length === 0) return '-';
  if (ids.length <= QUEUE_IDS_SHOWN) return ids.join(' ');
  const status = STATUS_OF_QUEUE[queue];
  const all = status ? `pipeline task list --status ${status}` : 'pipeline status --json';
  return `${ids.slice(0, QUEUE_IDS_SHOWN).join(' ')} and ${ids.length - QUEUE_IDS_SHOWN} more (${ids.length} in all: \`${all}\` lists them)`;
}

/** "17:30" in the local zone: a reset within the day reads best as a time of day. */
function hhmm(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description('show the pipeline: modes, leader, queues, agents, and the workers of a pipeline in PostgreSQL')
    .option('--json', "print the state as JSON (the seed's shape, with queues)")
    .action(async (o: { json?: boolean }) => {
      await withPipeline('follow', 'pipeline status', async (p) => {
        // What the agents do now is in the leader's progress file, not in the journal.
        await p.refreshProgress();
        // The store's warnings, and those about the home directory that no single part sees.
        const warnings = [...(await homeWarnings(p.home, p.storeLocation.kind === 'file')), ...p.storeWarnings];
        // Workers live beside the state in PostgreSQL; a pipeline in files has none.
        const postgres = p.storeLocation.kind === 'postgres';
        const s = { ...p.status(postgres ? await p.workers() : undefined), warnings };
        if (o.json) return printJson(s);
        println(
          `orchestration: ${s.orchestration_mode}${s.pending_switch ? ` (switching to ${s.pending_switch} once in-flight work drains)` : ''}`,
        );
        println(`rollout:       ${s.mode}`);
        println(
          `leader:        ${s.leader ? `${s.leader.label} (pid ${s.leader.pid} on ${s.leader.host}, since ${s.leader.since})` : 'none (no pipeline is running)'}`,
        );
        if (s.orchestration_mode === 'sequential') println(`current task:  ${s.current_task ?? '-'}`);
        println('queues:');
        for (const [q, ids] of Object.entries(s.queues)) println(`  ${q.padEnd(15)} ${queueText(q, ids)}`);
        if (s.awaiting_review.length)
          println(
            `awaiting review: ${s.awaiting_review.join(' ')} (answer with \`pipeline review <id> approve|changes|block\`)`,
          );
        println('agents:');
        const agents = Object.values(s.agents);
        if (agents.length === 0) println('  none');
        for (const a of agents) println(`  ${agentLine(a, s.progress[a.id])} ${agentWorkerNote(a.id, s)}`.trimEnd());
        if (postgres) for (const line of workerLines(s)) println(line);
        if (s.usage.total.input + s.usage.total.output + s.usage.total.cacheRead + s.usage.total.cacheWrite > 0)
          println(
            `spent:         ${usd(s.usage.total.costUsd)} (${tokensText(s.usage.total)})${s.usage.unpriced ? `; ${s.usage.unpriced} model use(s) without a price` : ''}`,
          );
        for (const w of warnings) println(`warning: ${w}`);
      });
    });

  const mode = program.command('mode').description('switch the orchestration or rollout mode');
  mode
    .command('orchestration <mode>')
    .description(`how tasks are assigned: ${strategyNames().join(' | ')}`)
    .option('--drain', 'if agents are busy, switch once their current stage work is finished')
    .option('--force', 'if agents are busy, requeue their work and switch now')
    .action(async (m: string, o: { drain?: boolean; force?: boolean }) => {
      if (o.drain && o.force) throw new PipelineError('usage', 'Pass --drain or --force, not both.');
      await withPipeline('auto', 'pipeline mode orchestration', async (p) => {
        const r = await p.setOrchestrationMode(m, { drain: o.drain ?? false, force: o.force ?? false });
        if (r.outcome === 'unchanged') println(`Already in ${m} mode.`);
        else if (r.outcome === 'cancelled')
          println(`Cancelled the pending switch to ${r.cancelled ?? 'another'} mode; staying in ${m} mode.`);
        else if (r.outcome === 'pending')
          println(
            `Switching to ${m} mode once in-flight work drains (${p.busyAgents().join(', ')}); no new work starts meanwhile.`,
          );
        else println(`Switched to ${m} mode.${r.requeued.length ? ` Requeued: ${r.requeued.join(', ')}.` : ''}`);
      });
    });
  mode
    .command('rollout <mode>')
    .description('what actions are taken: shadow | pilot | production')
    .option('--force', 'switching to shadow while agents are busy: requeue their work now')
    .action(async (m: string, o: { force?: boolean }) => {
      await withPipeline('auto', 'pipeline mode rollout', async (p) => {
        const r = await p.setRolloutMode(m as RolloutMode, { force: o.force ?? false });
        println(
          r.from === r.to
            ? `Already in ${r.to} mode.`
            : `Rollout mode: ${r.from} → ${r.to}.${r.requeued.length ? ` Requeued: ${r.requeued.join(', ')}.` : ''}`,
        );
      });
    });

  program
    .command('rollout')
    .description('rollout readiness')
    .command('check')
    .description('is the pipeline ready for the next rollout mode? exits 3 when it is not')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withPipeline('follow', 'pipeline rollout check', async (p) => {
        // Imported here: `pipeline status` and `mode` need no git or agent-CLI code.
        const [{ gitFactsOf }, { checkAgents }] = await Promise.all([
          import('../engine/rollout/rolloutGitFacts.js'),
          import('../engine/agents/cli/doctor.js'),
        ]);
        const r = p.rolloutCheck(
          await gitFactsOf(p),
          await checkAgents(Object.values(p.state.agents), { permissions: p.config.agentCli }),
        );
        if (o.json) printJson(r);
        else {
          println(
            r.next
              ? `${r.mode} → ${r.next}: ${r.ready ? 'READY' : 'NOT READY'}`
              : `${r.mode}: ${r.ready ? 'HEALTHY' : 'NOT HEALTHY'}`,
          );
          for (const ok of r.passed) println(`  ok   ${ok}`);
          for (const bad of r.reasons) println(`  FAIL ${bad}`);
        }
        if (!r.ready) process.exitCode = EXIT.notReady;
      });
    });
}
