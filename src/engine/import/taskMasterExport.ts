import { PipelineError } from '../errors';
import type { Priority, Task } from '../model/schema';
import { DEFAULT_PREFIX, DEFAULT_TAG, ImportWarnings, PREFIX_PATTERN } from './importTypes';
import { describeJsonSyntaxError, stripByteOrderMark } from './jsonLocation';

/**
 * `pipeline task export --format taskmaster`: the pipeline's tasks as a Task Master tasks.json, in
 * the tagged shape current Task Master (tm-core) writes: `{ "<tag>": { "tasks": [...], "metadata":
 * {...} } }`, task ids and task dependencies as strings, subtask ids as numbers with a `parentId`.
 *
 * It undoes what the import does (docs/task-import.md), so that importing a Task Master file,
 * exporting it and importing the export gives the same tasks:
 * - `TM-12` is task 12 and `TM-12.3` subtask 3 of it (the prefix is an option); other ids
 *   (`TASK-001`) get the next free numbers, in creation order, with a warning.
 * - The links the import adds are left out: a parent's dependencies on its own subtasks, and the
 *   parent's dependencies that its subtasks inherit.
 * - The description is split back into `description`, `details` and `testStrategy`, without the
 *   `## Parent task` / `## Subtasks` sections the import wrote. Task Master refuses a task without
 *   a description, so a task with none gets its title (which the import reads as no description).
 * - Statuses: done → done, cancelled → cancelled, blocked → blocked (or `deferred`, when the import
 *   blocked it for that status), pending and queued → pending, working → in-progress, merging →
 *   review. Priorities are the same four words.
 * - Paths and labels have no place in Task Master's format; a warning counts the tasks that had them.
 */

export type ExportTask = Pick<
  Task,
  'id' | 'title' | 'description' | 'prerequisites' | 'priority' | 'status' | 'blocked_reason' | 'paths' | 'labels'
> &
  Partial<Pick<Task, 'seq'>>;

export interface TaskMasterExportOptions {
  /** The prefix of the ids that carry Task Master numbers: `TM` reads `TM-12` as task 12. */
  prefix?: string;
  /** The tag to write the tasks under (default `master`). */
  tag?: string;
  /** The time written in the metadata (default now). */
  now?: Date;
}

export interface TmExportSubtask {
  id: number;
  title: string;
  description: string;
  details: string;
  testStrategy: string;
  status: string;
  priority: Priority;
  dependencies: Array<number | string>;
  parentId: string;
}

export interface TmExportTask {
  id: string;
  title: string;
  description: string;
  details: string;
  testStrategy: string;
  status: string;
  priority: Priority;
  dependencies: string[];
  subtasks: TmExportSubtask[];
}

export interface TmExportTag {
  tasks: TmExportTask[];
  metadata: {
    version: string;
    lastModified: string;
    taskCount: number;
    completedCount: number;
    tags: string[];
  };
}

export interface TaskMasterExport {
  /** The file's content: one tag. */
  file: Record<string, TmExportTag>;
  tag: string;
  /** Counts for the command's summary. */
  tasks: number;
  subtasks: number;
  warnings: string[];
}

/** Where a pipeline task goes in Task Master's numbering. */
interface Place {
  task: ExportTask;
  /** The Task Master task number, or the parent's for a subtask. */
  n: number;
  /** The subtask number, for subtasks. */
  k?: number;
  children: Place[];
  parent?: Place;
}

/** The reason the import gives a task blocked in Task Master (importTypes/taskMasterDrafts). */
const IMPORTED_HELD = /^Imported from Task Master with status "(blocked|deferred)"\.$/;
/** The reason the import gives a pending subtask of a blocked or deferred parent. */
const IMPORTED_HELD_PARENT = /^Its parent \S+ was imported from Task Master with status "(blocked|deferred)"\.$/;

export function exportTaskMaster(tasks: readonly ExportTask[], opts: TaskMasterExportOptions = {}): TaskMasterExport {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new PipelineError('usage', `Invalid id prefix ${JSON.stringify(prefix)}.`, {
      where: '--prefix',
      fix: 'Use 1 to 16 upper-case letters and digits, starting with a letter, such as TM.',
    });
  }
  const tag = opts.tag ?? DEFAULT_TAG;
  if (!tag.trim() || tag === 'tasks' || tag === 'metadata') {
    throw new PipelineError('usage', `Invalid tag ${JSON.stringify(tag)}.`, {
      where: '--tag',
      fix: 'Name a Task Master tag such as master or feature-x ("tasks" and "metadata" are not tags).',
    });
  }
  const warnings = new ImportWarnings();
  const ordered = [...tasks].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  const topPattern = new RegExp(`^${prefix}-(\\d{1,9})$`);
  const subPattern = new RegExp(`^${prefix}-(\\d{1,9})\\.(\\d{1,9})$`);

  const byNumber = new Map<number, Place>();
  const placeOf = new Map<string, Place>();

  for (const task of ordered) {
    const m = topPattern.exec(task.id);
    const n = m ? Number(m[1]) : NaN;
    if (!m || byNumber.has(n)) continue;
    const place: Place = { task, n, children: [] };
    byNumber.set(n, place);
    placeOf.set(task.id, place);
  }
  for (const task of ordered) {
    const m = subPattern.exec(task.id);
    const parent = m ? byNumber.get(Number(m[1])) : undefined;
    const k = m ? Number(m[2]) : NaN;
    if (!m || !parent || parent.children.some((c) => c.k === k)) continue;
    const place: Place = { task, n: parent.n, k, children: [], parent };
    parent.children.push(place);
    placeOf.set(task.id, place);
  }
  // Everything else becomes a task of its own, numbered after the highest number in use.
  let next = Math.max(0, ...byNumber.keys()) + 1;
  for (const task of ordered) {
    if (placeOf.has(task.id)) continue;
    const place: Place = { task, n: next++, children: [] };
    byNumber.set(place.n, place);
    placeOf.set(task.id, place);
    warnings.add(
      `Tasks without a Task Master number (an id other than ${prefix}-<number> or ${prefix}-<number>.<number> of an exported task), numbered after the others`,
      `${task.id} → ${place.n}`,
    );
  }

  const ref = (place: Place): string => (place.k === undefined ? String(place.n) : `${place.n}.${place.k}`);
  const parents = [...byNumber.values()].sort((a, b) => a.n - b.n);
  const out: TmExportTask[] = [];
  let subtaskCount = 0;
  let completed = 0;
  let withPathsOrLabels = 0;

  for (const parent of parents) {
    parent.children.sort((a, b) => (a.k ?? 0) - (b.k ?? 0));
    const own = new Set(parent.children.map((c) => c.task.id));
    const parentDeps = parent.task.prerequisites.filter((p) => !own.has(p));
    const inherited = new Set(parentDeps);
    const status = tmStatus(parent.task, null, warnings);
    if (status === 'done') completed++;
    const subtasks = parent.children.map((child): TmExportSubtask => {
      subtaskCount++;
      const dependencies: Array<number | string> = [];
      for (const p of child.task.prerequisites) {
        if (inherited.has(p)) continue;
        const target = placeOf.get(p);
        if (!target) continue;
        if (target.parent === parent) dependencies.push(target.k ?? 0);
        else if (target.k !== undefined) dependencies.push(ref(target));
        else if (parent.children.some((c) => c.k === target.n)) {
          // A subtask's dependency without a dot names a sibling first, in Task Master as in the
          // import: a task whose number a sibling also has cannot be named from this subtask.
          warnings.add(
            'Subtask dependencies on a task whose number a sibling subtask also has, which Task Master cannot express (left out)',
            `${child.task.id} → ${p}`,
          );
        } else dependencies.push(target.n);
      }
      const text = splitDescription(child.task.description, 'subtask');
      return {
        id: child.k ?? 0,
        title: child.task.title,
        description: text.description,
        details: text.details,
        testStrategy: text.testStrategy,
        status: tmStatus(child.task, parent.task, warnings),
        priority: child.task.priority,
        dependencies,
        parentId: String(parent.n),
      };
    });
    for (const t of [parent.task, ...parent.children.map((c) => c.task)]) {
      if (t.paths.length || t.labels.length) withPathsOrLabels++;
    }
    const text = splitDescription(parent.task.description, parent.children.length ? 'parent' : 'task');
    out.push({
      id: String(parent.n),
      title: parent.task.title,
      // Task Master (tm-core) refuses a task with an empty description; the import reads a
      // description that only repeats the title as none.
      description: text.description || parent.task.title,
      details: text.details,
      testStrategy: text.testStrategy,
      status,
      priority: parent.task.priority,
      dependencies: parentDeps.flatMap((p) => {
        const target = placeOf.get(p);
        return target ? [ref(target)] : [];
      }),
      subtasks,
    });
  }
  if (withPathsOrLabels) {
    warnings.note(
      `${withPathsOrLabels} task(s) have paths or labels, which Task Master's format has no place for; they were left out.`,
    );
  }

  return {
    file: {
      [tag]: {
        tasks: out,
        metadata: {
          version: '1.0.0',
          lastModified: (opts.now ?? new Date()).toISOString(),
          taskCount: out.length,
          completedCount: completed,
          tags: [tag],
        },
      },
    },
    tag,
    tasks: out.length,
    subtasks: subtaskCount,
    warnings: warnings.list(),
  };
}

function tmStatus(task: ExportTask, parent: ExportTask | null, warnings: ImportWarnings): string {
  switch (task.status) {
    case 'done':
      return 'done';
    case 'cancelled':
      return 'cancelled';
    case 'blocked': {
      const reason = task.blocked_reason ?? '';
      const held = IMPORTED_HELD.exec(reason);
      if (held?.[1]) return held[1];
      // Blocked only because its parent was: Task Master keeps it pending, and the import blocks it again.
      if (parent?.status === 'blocked' && IMPORTED_HELD_PARENT.test(reason)) return 'pending';
      return 'blocked';
    }
    case 'working':
      warnings.add('Tasks at work in the pipeline, exported as in-progress', task.id);
      return 'in-progress';
    case 'merging':
      warnings.add('Tasks being merged (approved), exported as review', task.id);
      return 'review';
    default:
      return 'pending';
  }
}

const DETAILS = '\n\n## Details\n\n';
const TEST_STRATEGY = '\n\n## Test strategy\n\n';
/** The sections the import appends (taskMasterDrafts.ts `toDrafts`), matched at the very end. */
const PARENT_SECTION = /(?:^|\n\n)## Parent task\n\n[^\n]*$/;
const SUBTASKS_SECTION = /(?:^|\n\n)## Subtasks\n\nThis task comes after its subtasks:\n\n(?:- [^\n]*(?:\n|$))+$/;

/**
 * The import joins description, `## Details` and `## Test strategy`, then the parent or subtasks
 * section, with blank lines; this takes them apart again. Joining the parts again gives the same
 * text whatever the parts hold, which is what a round trip needs.
 */
export function splitDescription(
  text: string,
  kind: 'task' | 'parent' | 'subtask',
): { description: string; details: string; testStrategy: string } {
  let rest = text;
  if (kind === 'subtask') rest = rest.replace(PARENT_SECTION, '');
  if (kind === 'parent') rest = rest.replace(SUBTASKS_SECTION, '');
  rest = `\n\n${rest}`;
  let testStrategy = '';
  const t = rest.lastIndexOf(TEST_STRATEGY);
  if (t !== -1) {
    testStrategy = rest.slice(t + TEST_STRATEGY.length);
    rest = rest.slice(0, t);
  }
  let details = '';
  const d = rest.lastIndexOf(DETAILS);
  if (d !== -1) {
    details = rest.slice(d + DETAILS.length);
    rest = rest.slice(0, d);
  }
  return { description: rest.slice(2), details, testStrategy };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The file to write when the output file exists already: Task Master keeps every tag in one
 * tasks.json, so the exported tag replaces its namesake and the other tags stay, as tm-core saves a
 * tag. An untagged file is Task Master's `master` tag and becomes tagged, as tm-core converts it.
 * A file that is not a Task Master tasks file is not overwritten.
 */
export function mergeIntoTasksFile(
  existing: string | null,
  exported: TaskMasterExport,
  file: string,
): { content: Record<string, unknown>; kept: string[] } {
  if (existing === null || existing.trim() === '') return { content: exported.file, kept: [] };
  const text = stripByteOrderMark(existing);
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    const { message, line, column } = describeJsonSyntaxError(text, err);
    throw new PipelineError('usage', `${file} exists and is not valid JSON (${message}); it was not overwritten.`, {
      file,
      where: `${line}:${column}`,
      fix: 'Choose another --output, or correct or remove that file.',
    });
  }
  const notTasks = (): PipelineError =>
    new PipelineError('usage', `${file} exists and is not a Task Master tasks file; it was not overwritten.`, {
      file,
      where: '(top level)',
      fix: 'Choose another --output (Task Master reads .taskmaster/tasks/tasks.json), or remove that file.',
    });
  if (!isRecord(root)) throw notTasks();
  let tags: Record<string, unknown>;
  if (Array.isArray(root.tasks)) tags = { [DEFAULT_TAG]: { tasks: root.tasks, metadata: root.metadata ?? {} } };
  else if (Object.values(root).some((v) => isRecord(v) && Array.isArray(v.tasks))) tags = root;
  else throw notTasks();
  const kept = Object.keys(tags).filter((t) => t !== exported.tag);
  return { content: { ...tags, ...exported.file }, kept };
}
