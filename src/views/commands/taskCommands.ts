import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { TASK_DIR, taskFileName } from '../../engine/agents/taskFile';
import { PipelineError } from '../../engine/errors';
import { importedNewTasks, importFile } from '../../engine/import/taskImport';
import { worktreeRootOf } from '../../engine/home/pipelineHome';
import { PRIORITIES } from '../../engine/model/schema';
import { COMMANDS } from '../../contributions';
import type { TaskEdit } from '../../engine/model/stateRecords';
import { TaskDiffProvider } from '../diffProvider';
import { taskActions } from '../taskActions';
import { taskIdFrom, type CommandContext, type Handlers } from './commandContext';
import { askDescription, askLabels, askPaths, askPrerequisites, askPriority, askTitle, type Step } from './taskFields';

/** Adding, editing and importing tasks, and the actions on one task (the Tasks tree's context menu). */
export function taskCommands({ session }: CommandContext): Handlers {
  return {
    [COMMANDS.addTask]: async () => {
      const p = await session.open();
      const candidates = Object.values(p.state.tasks)
        .filter((t) => t.status !== 'cancelled')
        .sort((a, b) => a.seq - b.seq);
      // The prerequisites question is asked only when there are tasks to choose from.
      const of = candidates.length ? 6 : 5;
      const step = (n: number): Step => ({ title: 'Add Task', step: [n, of] });
      const title = await askTitle(step(1));
      if (!title) return;
      const description = await askDescription(step(2));
      if (description === undefined) return;
      const priority = await askPriority(step(3));
      if (!priority) return;
      const labels = await askLabels(step(4), p);
      if (!labels) return;
      const paths = await askPaths(step(5));
      if (!paths) return;
      const prerequisites = await askPrerequisites(step(6), candidates);
      if (!prerequisites) return;
      const [t] = await p.addTasks([
        { spec: { title, description, priority, labels, paths, prerequisites }, source: 'the Add Task command' },
      ]);
      void vscode.window.showInformationMessage(`Added ${t!.id}: ${t!.title}`);
      return t!.id;
    },
    [COMMANDS.editTask]: async (arg) => {
      const p = await session.open();
      const id = await taskIdFrom(p, arg, (t) => taskActions(t).canEdit, 'Edit which task?');
      if (!id) return;
      const t = p.task(id);
      const none = '(none)';
      const fields: (vscode.QuickPickItem & { field: keyof TaskEdit })[] = [
        { label: 'Title', field: 'title', description: t.title },
        { label: 'Description', field: 'description', description: t.description.split('\n')[0] || none },
        { label: 'Priority', field: 'priority', description: t.priority },
        { label: 'Labels', field: 'labels', description: t.labels.join(', ') || none },
        { label: 'Paths', field: 'paths', description: t.paths.join(', ') || none },
        { label: 'Prerequisites', field: 'prerequisites', description: t.prerequisites.join(', ') || none },
      ];
      const picked = await vscode.window.showQuickPick(fields, {
        title: `Edit ${id}: ${t.title}`,
        placeHolder: 'Which field?',
      });
      if (!picked) return;
      const s: Step = { title: `Edit ${id}: ${picked.label}` };
      let changes: TaskEdit | undefined;
      switch (picked.field) {
        case 'title': {
          const v = await askTitle(s, t.title);
          if (v !== undefined) changes = { title: v };
          break;
        }
        case 'description': {
          const v = await askDescription(s, t.description);
          if (v !== undefined) changes = { description: v };
          break;
        }
        case 'priority': {
          const v = await askPriority(s, t.priority);
          if (v !== undefined) changes = { priority: v };
          break;
        }
        case 'labels': {
          const v = await askLabels(s, p, t.labels);
          if (v !== undefined) changes = { labels: v };
          break;
        }
        case 'paths': {
          const v = await askPaths(s, t.paths);
          if (v !== undefined) changes = { paths: v };
          break;
        }
        case 'prerequisites': {
          // Every other task that is not cancelled; the engine refuses a cycle, naming it.
          const candidates = Object.values(p.state.tasks)
            .filter((c) => c.id !== id && c.status !== 'cancelled')
            .sort((a, b) => a.seq - b.seq);
          const v = await askPrerequisites(s, candidates, t.prerequisites);
          if (v !== undefined) changes = { prerequisites: v };
          break;
        }
      }
      if (!changes) return;
      const after = await p.editTask(id, changes);
      void vscode.window.showInformationMessage(`Edited ${id}: ${picked.label.toLowerCase()}.`);
      return after.id;
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
      const added = await p.addTasks(importedNewTasks(file, r));
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
