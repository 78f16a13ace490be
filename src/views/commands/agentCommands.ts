import * as vscode from 'vscode';
import { HUMAN_ROLE } from '../../engine/model/humanStage';
import { PRESETS, validateCommand } from '../../engine/agents/commandTemplate';
import { PipelineError, isPipelineError } from '../../engine/errors';
import { NAME_PATTERN } from '../../engine/model/ids';
import { worktreeRootOf } from '../../engine/home/pipelineHome';
import { COMMANDS } from '../../contributions';
import { userPresets } from '../../host/settings';
import { agentIdFrom, type CommandContext, type Handlers } from './commandContext';

/** Adding agents, and the actions on one agent (the Agents tree's context menu). */
export function agentCommands({ session }: CommandContext): Handlers {
  return {
    [COMMANDS.addAgent]: async () => {
      const p = await session.open();
      const extra = userPresets(session.log);
      const preset = await vscode.window.showQuickPick(
        [
          ...Object.entries(PRESETS).map(([id, pr]) => ({ label: id, description: pr.description, command: id })),
          ...Object.entries(extra).map(([id, template]) => ({
            label: id,
            description: `from settings: ${template}`,
            command: template,
          })),
          {
            label: 'Custom command…',
            description: 'a template with {taskFile} {taskId} {worktree} {role}',
            command: '',
          },
        ],
        { title: 'Add Agent (1/3)', placeHolder: 'Which agent CLI runs it?' },
      );
      if (!preset) return;
      let command = preset.command;
      if (!command) {
        const typed = await vscode.window.showInputBox({
          title: 'Add Agent: command template',
          prompt: 'The command; {taskFile}, {taskId}, {worktree} and {role} are filled in per task',
          placeHolder: 'my-agent --task {taskFile}',
          validateInput: (v) => {
            try {
              validateCommand(v);
              return undefined;
            } catch (e) {
              return isPipelineError(e) ? e.message : String(e);
            }
          },
        });
        if (!typed) return;
        command = typed;
      }
      // People work human stages: no agent plays that role.
      const roles = [...new Set(p.config.stages.map((s) => s.role))].filter((r) => r !== HUMAN_ROLE);
      const role = await vscode.window.showQuickPick(
        roles.map((r) => ({
          label: r,
          description: `${Object.values(p.state.agents).filter((a) => a.role === r).length} agent(s) now`,
          detail: `stage ${p.config.stages
            .filter((s) => s.role === r)
            .map((s) => s.name)
            .join(', ')}`,
        })),
        { title: 'Add Agent (2/3)', placeHolder: 'Which role does it play?' },
      );
      if (!role) return;
      let suggestion = role.label;
      for (let n = 2; p.state.agents[suggestion]; n++) suggestion = `${role.label}-${n}`;
      const id = await vscode.window.showInputBox({
        title: 'Add Agent (3/3)',
        prompt: 'Its id',
        value: suggestion,
        validateInput: (v) =>
          !NAME_PATTERN.test(v)
            ? 'Lower-case letters, digits and dashes, starting with a letter.'
            : p.state.agents[v]
              ? `${v} exists already.`
              : undefined,
      });
      if (!id) return;
      const a = await p.addAgent({ id, role: role.label, command });
      void vscode.window.showInformationMessage(`Added agent ${a.id} (${a.role}).`);
      return a.id;
    },
    [COMMANDS.openAgentTerminal]: async (arg) => {
      const p = await session.open();
      const id = await agentIdFrom(p, arg);
      if (!id) return;
      const t = session.terminalRunner?.terminalOf(id);
      if (t) t.show(false);
      else
        void vscode.window.showInformationMessage(
          `${id} has no terminal in this window${session.running ? ' yet (it gets one when it takes a task)' : ' (the pipeline is not running here)'}.`,
        );
    },
    [COMMANDS.openAgentWorktree]: async (arg) => {
      const p = await session.open();
      const id = await agentIdFrom(p, arg);
      if (!id) return;
      const path = session.gitWorkspace?.worktreePath(id) ?? `${worktreeRootOf(p.home, p.config.worktreeRoot)}/${id}`;
      const uri = vscode.Uri.file(path);
      try {
        await vscode.workspace.fs.stat(uri);
      } catch {
        throw new PipelineError('unknown-agent', `${id} has no worktree yet (${path}).`, {
          fix: 'Start the pipeline; each agent gets its worktree then.',
        });
      }
      const folders = vscode.workspace.workspaceFolders ?? [];
      if (folders.some((f) => f.uri.fsPath === uri.fsPath)) return;
      // Appended after the others: changing the first folder would restart every extension.
      vscode.workspace.updateWorkspaceFolders(folders.length, 0, { uri, name: `agent: ${id}` });
    },
    [COMMANDS.restartAgent]: async (arg) => {
      const p = await session.open();
      const id = await agentIdFrom(p, arg, 'Restart which agent?');
      if (id) await session.requireMonitor().interruptAgent(id, false);
    },
    [COMMANDS.stopAgent]: async (arg) => {
      const p = await session.open();
      const id = await agentIdFrom(p, arg, 'Stop which agent?');
      if (id) await session.requireMonitor().interruptAgent(id, true);
    },
  };
}
