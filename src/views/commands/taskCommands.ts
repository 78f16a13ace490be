import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { TASK_DIR, taskFileName } from '../../engine/agents/taskFile';
import { PipelineError } from '../../engine/errors';
import { importFile } from '../../engine/import/taskImport';
import { worktreeRootOf } from '../../engine/home/pipelineHome';
import { PRIORITIES } from '../../engine/model/schema';
import { taskPathProblem } from '../../engine/model/taskFactory';
import { COMMANDS } from '../../contributions';
import { TaskDiffProvider } from '../diffProvider';
import { taskActions } from '../taskActions';
import { taskIdFrom, type CommandContext, type Handlers } from './commandContext';

/** Adding and importing tasks, and the actions on one task (the Tasks tree's context menu). */
export function taskCommands({ session }: CommandContext): Handlers {
  return {
    [COMMANDS.addTask]: async () => {
      const p = await session.open();
      const title = await vscode.window.showInputBox({
        title: 'Add Task (1/4)',
        prompt: 'Title of the task',
        validateInput: (v) => (v.trim() ? undefined : 'A title is required.'),
      });
      if (!title) return;
      const description = await vscode.window.showInputBox({
        title: 'Add Task (2/4)',
        prompt: 'Description (markdown, optional)',
      });
      if (description === undefined) return;
      const open = Object.values(p.state.tasks)
        .filter((t) => t.status !== 'cancelled')
        .sort((a, b) => a.seq - b.seq);
      let prerequisites: string[] = [];
      if (open.length) {
        const picked = await vscode.window.showQuickPick(
          open.map((t) => ({ label: t.id, description: t.status, detail: t.title })),
          {
            title: 'Add Task (3/4)',
            placeHolder: 'Prerequisites (tasks that must be merged first); none is fine',
            canPickMany: true,
            matchOnDetail: true,
          },
        );
        if (!picked) return;
        prerequisites = picked.map((x) => x.label);
      }
      const paths = await vscode.window.showInputBox({
        title: 'Add Task (4/4)',
        prompt: 'Paths it will touch, as comma-separated globs (for conflict avoidance; optional)',
        placeHolder: 'src/parser/**, docs/parser.md',
        validateInput: (v) => {
          const problem = splitPaths(v).map(taskPathProblem).find(Boolean);
          return problem ? `Invalid path: ${problem}. Use paths relative to the repository root.` : undefined;
        },
      });
      if (paths === undefined) return;
      const [t] = await p.addTasks([
        {
          spec: {
            title: title.trim(),
            description,
            prerequisites,
            paths: splitPaths(paths),
          },
          source: 'the Add Task command',
        },
      ]);
      void vscode.window.showInformationMessage(`Added ${t!.id}: ${t!.title}`);
      return t!.id;
    },
    [COMMANDS.importTasks]: async () => {
      const p = await session.open();
      const files = await vscode.window.showOpenDialog({
        canSelectMany: false,
        filters: { 'Task files': ['json'] },
        openLabel: 'Import',
        title: "Import tasks (the seed's state JSON or a Task Master tasks.json)",
      });
      const file = files?.[0]?.fsPath;
      if (!file) return;
      const r = await importFile(file);
      for (const w of r.warnings) session.log.warn(`import: ${w}`);
      const added = await p.addTasks(
        r.tasks.map((t) => ({
          spec: t.spec,
          status: t.status,
          source: `${file} ${t.source}`,
          ...(t.reason ? { reason: t.reason } : {}),
        })),
      );
      void vscode.window.showInformationMessage(
        `Imported ${added.length} task(s) from ${file} (${r.format}).${r.warnings.length ? ` ${r.warnings.length} warning(s) in the log.` : ''}`,
      );
    },
    [COMMANDS.openTaskFile]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, (t) => taskActions(t).hasTaskFile);
      if (!id) return;
      const t = p.task(id);
      const agent = t.assigned_to ?? [...t.history].reverse().find((h) => h.event === 'assign')?.agent;
      if (!agent)
        throw new PipelineError('unknown-task', `${id} has not been given to an agent yet, so it has no task file.`);
      const dir = join(
        session.gitWorkspace?.worktreePath(agent) ?? join(worktreeRootOf(p.home, p.config.worktreeRoot), agent),
        TASK_DIR,
      );
      let file = join(dir, taskFileName(id, t.attempt));
      const names = await readdir(dir).catch(() => [] as string[]);
      if (!names.includes(taskFileName(id, t.attempt))) {
        // The agent may have moved on; the newest file of this task is the one to show.
        const mine = names
          .filter((n) => n.startsWith(`${id}.attempt-`))
          .sort((a, b) => Number(/(\d+)\.md$/.exec(b)?.[1]) - Number(/(\d+)\.md$/.exec(a)?.[1]));
        if (!mine[0]) throw new PipelineError('unknown-task', `No task file of ${id} is left in ${dir}.`);
        file = join(dir, mine[0]);
      }
      await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: true });
    },
    [COMMANDS.showTaskDiff]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg);
      if (!id) return;
      const base = p.state.mode === 'pilot' ? p.config.pilotBranch : p.config.targetBranch;
      const doc = await vscode.workspace.openTextDocument(TaskDiffProvider.uri(id, base));
      await vscode.languages.setTextDocumentLanguage(doc, 'diff');
      await vscode.window.showTextDocument(doc, { preview: true });
    },
    [COMMANDS.retryTask]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, (t) => taskActions(t).canRetry, 'Retry which blocked task?');
      if (id) await p.retryTask(id);
    },
    [COMMANDS.unblockTask]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, (t) => taskActions(t).canUnblock, 'Unblock which task?');
      if (id) await p.unblockTask(id);
    },
    [COMMANDS.blockTask]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, (t) => taskActions(t).canBlock, 'Block which task?');
      if (!id) return;
      const reason = await vscode.window.showInputBox({
        prompt: `Why is ${id} blocked?`,
        value: 'blocked by a person',
      });
      if (reason !== undefined) await p.blockTask(id, reason || 'blocked by a person');
    },
    [COMMANDS.cancelTask]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, (t) => taskActions(t).canCancel, 'Cancel which task?');
      if (!id) return;
      const ok = await vscode.window.showWarningMessage(
        `Cancel ${id} (${p.task(id).title})? Its branch is kept.`,
        { modal: true },
        'Cancel Task',
      );
      if (ok) await p.cancelTask(id, 'cancelled by a person');
    },
    [COMMANDS.reprioritiseTask]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, (t) => taskActions(t).canReprioritise, 'Change the priority of which task?');
      if (!id) return;
      const cur = p.task(id).priority;
      const picked = await vscode.window.showQuickPick(
        PRIORITIES.map((x) => ({ label: x, description: x === cur ? '(current)' : '' })),
        { placeHolder: `Priority of ${id}` },
      );
      if (picked && picked.label !== cur) await p.reprioritise(id, picked.label);
    },
  };
}

function splitPaths(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}
