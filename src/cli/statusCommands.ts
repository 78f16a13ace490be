import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import type { RolloutMode } from '../engine/model/schema';
import { strategyNames } from '../engine/scheduler/strategyRegistry';
import { homeWarnings } from '../engine/home/pipelineHome';
import { gitFactsOf } from '../engine/rollout/rolloutGitFacts';
import { checkAgents } from '../engine/agents/cli/doctor';
import { withPipeline } from './openPipeline';
import { EXIT, printJson, println } from './output';

export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description('show the pipeline: modes, leader, queues, agents')
    .option('--json', "print the state as JSON (the seed's shape, with queues)")
    .action(async (o: { json?: boolean }) => {
      await withPipeline('follow', 'pipeline status', async (p) => {
        // The store's warnings, and those about the home directory that no single part sees.
        const warnings = [...(await homeWarnings(p.home)), ...p.storeWarnings];
        const s = { ...p.status(), warnings };
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
        for (const [q, ids] of Object.entries(s.queues))
          println(`  ${q.padEnd(15)} ${ids.length ? ids.join(' ') : '-'}`);
        println('agents:');
        const agents = Object.values(s.agents);
        if (agents.length === 0) println('  none');
        for (const a of agents)
          println(`  ${a.id.padEnd(15)} ${a.role.padEnd(12)} ${a.status.padEnd(8)} ${a.current_task ?? ''}`);
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
