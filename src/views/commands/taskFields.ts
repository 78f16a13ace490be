import * as vscode from 'vscode';
import { NAME_PATTERN } from '../../engine/model/ids';
import { PRIORITIES, type Priority, type Task } from '../../engine/model/schema';
import { taskPathProblem } from '../../engine/model/taskFactory';
import type { Pipeline } from '../../engine/pipeline';

/**
 * The questions for a task's fields, shared by Add Task (one after another, `step` numbering them)
 * and Edit Task (one, prefilled with the current value). Each resolves to the answer, or undefined
 * when the person closed the question (the command then stops and changes nothing).
 */
export interface Step {
  /** The command's title, "Add Task" or "Edit TASK-004". */
  title: string;
  /** `[n, of]` when the question is one of several. */
  step?: [number, number];
}

function titleOf(s: Step): string {
  return s.step ? `${s.title} (${s.step[0]}/${s.step[1]})` : s.title;
}

/** Comma-separated input as a list, blanks dropped. */
export function splitCommas(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

export async function askTitle(s: Step, value = ''): Promise<string | undefined> {
  const v = await vscode.window.showInputBox({
    title: titleOf(s),
    prompt: 'Title of the task',
    value,
    validateInput: (x) => (x.trim() ? undefined : 'A title is required.'),
  });
  return v?.trim() || undefined;
}

export function askDescription(s: Step, value = ''): Thenable<string | undefined> {
  return vscode.window.showInputBox({ title: titleOf(s), prompt: 'Description (markdown, optional)', value });
}

/** A single choice with `current` preselected, so accepting keeps it. */
export function askPriority(s: Step, current: Priority = 'medium'): Promise<Priority | undefined> {
  return new Promise((resolve) => {
    const q = vscode.window.createQuickPick<vscode.QuickPickItem & { priority: Priority }>();
    q.title = titleOf(s);
    q.placeholder = 'Priority: ready tasks go by priority, then age';
    q.items = PRIORITIES.map((x) => ({ label: x, priority: x, description: x === current ? '(current)' : '' }));
    q.activeItems = q.items.filter((i) => i.priority === current);
    let picked: Priority | undefined;
    q.onDidAccept(() => {
      picked = q.selectedItems[0]?.priority ?? q.activeItems[0]?.priority;
      q.hide();
    });
    q.onDidHide(() => {
      q.dispose();
      resolve(picked);
    });
    q.show();
  });
}

/** Labels, comma-separated; in pilot mode the pilot label is proposed, since only labelled tasks run. */
export function askLabels(s: Step, p: Pipeline, current?: readonly string[]): Promise<string[] | undefined> {
  const pilot = p.config.pilotLabel;
  const value = current ? current.join(', ') : p.state.mode === 'pilot' ? pilot : '';
  return Promise.resolve(
    vscode.window.showInputBox({
      title: titleOf(s),
      prompt: `Labels, comma-separated (optional); "${pilot}" lets the task run in pilot mode`,
      placeHolder: `${pilot}, backend`,
      value,
      validateInput: (v) => {
        const bad = splitCommas(v).find((l) => !NAME_PATTERN.test(l));
        return bad ? `"${bad}": labels are lower-case letters, digits and dashes, starting with a letter.` : undefined;
      },
    }),
  ).then((v) => (v === undefined ? undefined : [...new Set(splitCommas(v))]));
}

export function askPaths(s: Step, current: readonly string[] = []): Promise<string[] | undefined> {
  return Promise.resolve(
    vscode.window.showInputBox({
      title: titleOf(s),
      prompt: 'Paths it will touch, as comma-separated globs (for conflict avoidance; optional)',
      placeHolder: 'src/parser/**, docs/parser.md',
      value: current.join(', '),
      // The engine's rule for paths (the CLI's and imports' too), said before the task is added.
      validateInput: (v) => {
        const problem = splitCommas(v).map(taskPathProblem).find(Boolean);
        return problem ? `Invalid path: ${problem}. Use paths relative to the repository root.` : undefined;
      },
    }),
  ).then((v) => (v === undefined ? undefined : splitCommas(v)));
}

/** Tasks that must be merged first: a multi-select of the tasks that are not cancelled (none is fine). */
export async function askPrerequisites(
  s: Step,
  candidates: readonly Task[],
  current: readonly string[] = [],
): Promise<string[] | undefined> {
  if (candidates.length === 0) return [];
  const picked = await vscode.window.showQuickPick(
    candidates.map((t) => ({ label: t.id, description: t.status, detail: t.title, picked: current.includes(t.id) })),
    {
      title: titleOf(s),
      placeHolder: 'Prerequisites (tasks that must be merged first); none is fine',
      canPickMany: true,
      matchOnDetail: true,
    },
  );
  return picked?.map((x) => x.label);
}
