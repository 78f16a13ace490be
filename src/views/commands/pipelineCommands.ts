import { writeFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import { PRESETS } from '../../engine/agents/commandTemplate';
import { PipelineError, isPipelineError } from '../../engine/errors';
import { initPipelineAt } from '../../engine/home/pipelineInit';
import { ROLLOUT_MODES, type RolloutMode } from '../../engine/model/schema';
import { getStrategy, strategyNames } from '../../engine/scheduler/strategyRegistry';
import { gitFactsOf } from '../../engine/rollout/rolloutGitFacts';
import { GitRepo } from '../../engine/git/gitRepo';
import { planPromotion, promoteBranch } from '../../engine/git/promote';
import { COMMANDS } from '../../contributions';
import type { CommandContext, Handlers } from './commandContext';

const ROLLOUT_TEXT: Record<RolloutMode, string> = {
  shadow: 'decides and records what it would do; starts no agent, changes no git state',
  pilot: 'runs only tasks labelled "pilot", merges onto the pilot branch until a person promotes it',
  production: 'full automation: the supervisor approves and the work is merged into the target branch',
};

/** Initialising, starting and stopping, modes, rollout check, status export. */
export function pipelineCommands({ session }: CommandContext): Handlers {
  return {
    [COMMANDS.init]: async () => {
      const root = session.root;
      if (!root) throw new PipelineError('not-initialised', 'Open a folder (a git repository) first.');
      const { target } = await initPipelineAt(root, { here: true });
      const p = await session.open();
      const preset = await vscode.window.showQuickPick(
        [
          { label: 'No agents for now', id: '' },
          ...Object.entries(PRESETS).map(([id, pr]) => ({
            label: `One ${id} agent per role`,
            description: pr.description,
            id,
          })),
        ],
        { placeHolder: `Pipeline initialised (target branch ${target}). Add agents?` },
      );
      if (preset?.id)
        for (const s of p.config.stages) await p.addAgent({ id: s.role, role: s.role, command: preset.id });
      await session.updateContext();
      void vscode.window.showInformationMessage(`Agent Pipeline initialised in ${root} (target branch ${target}).`);
    },
    [COMMANDS.start]: async () => {
      await session.start();
    },
    [COMMANDS.stop]: async () => {
      await session.stop();
    },
    [COMMANDS.showStatus]: async () => {
      const p = await session.open();
      const s = p.state;
      const tasks = Object.values(s.tasks);
      const count = (st: string) => tasks.filter((t) => t.status === st).length;
      const actions: { label: string; description?: string; command?: string }[] = [
        {
          label: `$(info) ${s.orchestration_mode} · ${s.mode} · ${tasks.length} ${tasks.length === 1 ? 'task' : 'tasks'}: ${count('working')} working, ${count('queued') + count('pending')} waiting, ${count('blocked')} blocked, ${count('done')} done`,
          description: p.leader
            ? `led by ${p.isLeader ? 'this window' : `${p.leader.label} (pid ${p.leader.pid})`}`
            : 'not running',
        },
        session.running
          ? { label: '$(debug-stop) Stop Pipeline', command: COMMANDS.stop }
          : { label: '$(play) Start Pipeline', command: COMMANDS.start },
        { label: '$(add) Add Task', command: COMMANDS.addTask },
        { label: '$(person-add) Add Agent from a Preset', command: COMMANDS.addAgent },
        { label: '$(arrow-swap) Switch Orchestration Mode…', command: COMMANDS.switchOrchestration },
        { label: '$(shield) Switch Rollout Mode…', command: COMMANDS.switchRollout },
        { label: '$(checklist) Rollout Check', command: COMMANDS.rolloutCheck },
        { label: '$(graph) Show Metrics', command: COMMANDS.showMetrics },
        { label: '$(output) Show Log', command: COMMANDS.showLog },
      ];
      const picked = await vscode.window.showQuickPick(actions, { placeHolder: 'Agent Pipeline' });
      if (picked?.command) await vscode.commands.executeCommand(picked.command);
    },
    [COMMANDS.switchOrchestration]: async () => {
      const p = await session.open();
      const current = p.state.orchestration_mode;
      const picked = await vscode.window.showQuickPick(
        strategyNames().map((n) => ({
          label: n,
          description: n === current ? '(current)' : '',
          detail: getStrategy(n).summary,
        })),
        { placeHolder: `Orchestration mode (now ${current})` },
      );
      if (!picked || picked.label === current) return;
      try {
        await p.setOrchestrationMode(picked.label);
      } catch (e) {
        if (!isPipelineError(e) || e.code !== 'busy') throw e;
        const choice = await vscode.window.showWarningMessage(
          e.message,
          { modal: true },
          'Drain (switch after their stage)',
          'Force (requeue their work now)',
        );
        if (!choice) return;
        const r = await p.setOrchestrationMode(
          picked.label,
          choice.startsWith('Drain') ? { drain: true } : { force: true },
        );
        void vscode.window.showInformationMessage(
          r.outcome === 'pending'
            ? `Switching to ${picked.label} once in-flight work drains.`
            : `Switched to ${picked.label}.${r.requeued.length ? ` Requeued ${r.requeued.join(', ')}.` : ''}`,
        );
      }
    },
    [COMMANDS.switchRollout]: async () => {
      const p = await session.open();
      const current = p.state.mode;
      const picked = await vscode.window.showQuickPick(
        ROLLOUT_MODES.map((m) => ({
          label: m,
          description: m === current ? '(current)' : '',
          detail: ROLLOUT_TEXT[m],
        })),
        { placeHolder: `Rollout mode (now ${current})` },
      );
      if (!picked || picked.label === current) return;
      const ok = await vscode.window.showWarningMessage(
        `Switch the rollout mode from ${current} to ${picked.label}?`,
        { modal: true, detail: `In ${picked.label} mode the pipeline ${ROLLOUT_TEXT[picked.label]}.` },
        'Switch',
      );
      if (ok !== 'Switch') return;
      await p.setRolloutMode(picked.label);
    },
    [COMMANDS.rolloutCheck]: async () => {
      const p = await session.open();
      const r = p.rolloutCheck(await gitFactsOf(p));
      const head = r.next
        ? `${r.mode} → ${r.next}: ${r.ready ? 'ready' : 'not ready'}`
        : `${r.mode}: ${r.ready ? 'healthy' : 'not healthy'}`;
      session.log.info(`Rollout check: ${head}`);
      for (const x of r.passed) session.log.info(`  ok   ${x}`);
      for (const x of r.reasons) session.log.warn(`  FAIL ${x}`);
      const show = r.ready ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
      const choice = await show(
        `Rollout check: ${head}.${r.reasons.length ? ` ${r.reasons[0]}${r.reasons.length > 1 ? ` (+${r.reasons.length - 1} more)` : ''}` : ''}`,
        'Show Details',
      );
      if (choice) session.log.show(true);
      return r;
    },
    // `pipeline pilot promote`: the pilot branch merged into the target branch the way every task's
    // merge is done (a dry run, then a compare-and-swap); a conflict changes nothing and names the files.
    [COMMANDS.promotePilot]: async () => {
      const p = await session.open();
      const { pilotBranch, targetBranch } = p.config;
      const repo = await GitRepo.open(p.home.root);
      const merged = Object.values(p.state.tasks).flatMap((t) =>
        t.merged_commit ? [{ id: t.id, commit: t.merged_commit }] : [],
      );
      const plan = await planPromotion(repo, pilotBranch, targetBranch, merged);
      if (plan.commits === 0) {
        void vscode.window.showInformationMessage(
          `Nothing to promote: ${targetBranch} has everything ${pilotBranch} has.`,
        );
        return plan;
      }
      const tasks = plan.tasks.length ? ` (${plan.tasks.join(', ')})` : '';
      if (plan.conflicts.length)
        throw new PipelineError(
          'git',
          `Promoting ${pilotBranch} into ${targetBranch} would conflict in ${plan.conflicts.join(', ')}; nothing was changed.`,
          { fix: `Merge ${targetBranch} into ${pilotBranch} and resolve the files there, then promote again.` },
        );
      const ok = await vscode.window.showWarningMessage(
        `Promote ${plan.commits} commit(s) of ${pilotBranch} into ${targetBranch}${tasks}?`,
        { modal: true, detail: 'One merge commit on the target branch; a conflict would change nothing.' },
        'Promote',
      );
      if (ok !== 'Promote') return;
      const r = await promoteBranch(repo, pilotBranch, targetBranch, merged);
      void vscode.window.showInformationMessage(
        `Promoted ${pilotBranch} into ${targetBranch} as ${r.sha.slice(0, 12)}: ${r.commits} commit(s)${tasks}.`,
      );
      return r;
    },
    [COMMANDS.exportStatus]: async () => {
      const p = await session.open();
      const uri = await vscode.window.showSaveDialog({
        defaultUri: vscode.Uri.file(`${p.home.root}/pipeline-status.json`),
        filters: { JSON: ['json'] },
      });
      if (!uri) return;
      await writeFile(uri.fsPath, JSON.stringify(p.status(), null, 2) + '\n');
      void vscode.window.showInformationMessage(`Status exported to ${uri.fsPath}.`);
    },
    [COMMANDS.showLog]: () => {
      session.log.show();
      return Promise.resolve();
    },
  };
}
