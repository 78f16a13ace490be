import { z } from 'zod';
import type { Priority } from '../model/schema';
import {
  DEFAULT_TAG,
  importError,
  zodImportError,
  type ImportOptions,
  type ImportWarnings,
  type ImportedStatus,
  type TaskDraft,
} from './importTypes';
import { formatJsonPath, type JsonPath } from './jsonLocation';

/**
 * Reads Task Master's `tasks.json` (npm `task-master-ai`, github.com/eyaltoledano/claude-task-master).
 *
 * The file comes in two shapes:
 * - tagged (v0.17 and later): `{ "master": { "tasks": [...], "metadata": {...} }, "feature-x": {...} }`,
 *   one independent task list per tag, each numbered from 1;
 * - untagged ("legacy" here, "standard" in Task Master's own tm-core): `{ "tasks": [...], "metadata": ... }`
 *   (older files have `"meta"`), which Task Master reads as the `master` tag.
 *
 * Ids are whole numbers, written as numbers by the older scripts and as strings ("12") by tm-core;
 * subtask ids are numbers local to their parent, addressed as "12.3". Mapping (docs/task-import.md):
 * - `12` → `TM-12`, subtask `12.3` → `TM-12.3` (the prefix is an option).
 * - A parent depends on all its subtasks, so it enters the pipeline after them; subtasks inherit the
 *   parent's prerequisites, because Task Master offers a subtask only once its parent's
 *   dependencies are done (find-next-task).
 * - A subtask's dependency without a dot names a sibling (`2` in task 12 is `12.2`), as Task
 *   Master's find-next-task and tm-core's loadTask read it; when there is no such sibling and a
 *   top-level task has that number, it is that task (what `task-master add-subtask --dependencies 15`
 *   writes), with a warning. A dependency with a dot names any subtask.
 * - Statuses: done/completed → done; cancelled → cancelled; blocked/deferred → blocked with a reason
 *   that names the status; pending/in-progress/review (and anything unknown) → pending. A parent's
 *   final or held status carries over to its unfinished subtasks, as Task Master treats them.
 * - Priorities: high/medium/low (and tm-core's critical) map to the same; none → medium (a subtask
 *   without one takes its parent's, as tm-core does); anything else → medium with a warning.
 * - Description: description, then `## Details` and `## Test strategy` sections, then the parent or
 *   the subtasks, so an agent given one task sees where it belongs.
 */

const MAX_ID = 999_999_999;

const ID_MESSAGE = 'expected a Task Master id: a whole number such as 12';
const DEPENDENCY_MESSAGE = 'expected a Task Master dependency: a task id such as 12 or a subtask id such as "12.3"';
// The message sits on every branch: zod reports the branch whose type matched, not the union's.
const wholeNumber = (message: string) => z.number({ error: message }).int(message).min(0, message).max(MAX_ID, message);
const tmIdSchema = z.union([wholeNumber(ID_MESSAGE), z.string().regex(/^\s*\d{1,9}\s*$/, ID_MESSAGE)], {
  error: ID_MESSAGE,
});
const tmDependencySchema = z.union(
  [wholeNumber(DEPENDENCY_MESSAGE), z.string().regex(/^\s*\d{1,9}(\.\d{1,9})?\s*$/, DEPENDENCY_MESSAGE)],
  {
    error: DEPENDENCY_MESSAGE,
  },
);
// The AI-facing schemas in Task Master allow null for details and testStrategy, and files carry it.
const optionalText = z.string().nullish();

const itemShape = {
  id: tmIdSchema,
  title: z.string({ error: 'expected a title (a string)' }),
  description: optionalText,
  details: optionalText,
  testStrategy: optionalText,
  status: z.string().nullish(),
  priority: z.string().nullish(),
  dependencies: z.array(tmDependencySchema).nullish(),
};
// Loose objects: Task Master adds fields over time (complexity, updatedAt, metadata, parentId...),
// and none of them matter to the pipeline, so they are ignored rather than refused.
const SUBTASK_ID_MESSAGE = 'expected a Task Master subtask id: a whole number such as 3 (or "12.3" in task 12)';
// Some files write a subtask's id with its task's number in front ("12.3"), as Task Master shows it.
const tmSubtaskIdSchema = z.union(
  [wholeNumber(SUBTASK_ID_MESSAGE), z.string().regex(/^\s*\d{1,9}(\.\d{1,9})?\s*$/, SUBTASK_ID_MESSAGE)],
  { error: SUBTASK_ID_MESSAGE },
);
const tmSubtaskSchema = z.looseObject({ ...itemShape, id: tmSubtaskIdSchema });
const tmTaskSchema = z.looseObject({ ...itemShape, subtasks: z.array(tmSubtaskSchema).nullish() });
const tmTaskListSchema = z.looseObject({ tasks: z.array(tmTaskSchema) });

type TmItem = z.infer<typeof tmSubtaskSchema>;
type TmTask = z.infer<typeof tmTaskSchema>;

interface Entry {
  /** Task Master's own id: "12" or "12.3". */
  key: string;
  /** The pipeline id: "TM-12" or "TM-12.3". */
  id: string;
  path: JsonPath;
  item: TmItem;
  parent: Entry | null;
  children: Entry[];
  deps: string[];
  status: ImportedStatus;
  reason?: string;
  /** The status as Task Master wrote it, lower-cased. */
  original: string;
  priority: Priority;
}

const PRIORITY_MAP: Record<string, Priority> = { critical: 'critical', high: 'high', medium: 'medium', low: 'low' };
const KNOWN_STATUSES = ['pending', 'in-progress', 'review', 'done', 'completed', 'cancelled', 'blocked', 'deferred'];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const canonical = (id: string | number): string => String(Number(String(id).trim()));

export interface TaskMasterRead {
  drafts: TaskDraft[];
  tag: string;
}

export function readTaskMaster(
  root: Record<string, unknown>,
  format: 'taskmaster-tagged' | 'taskmaster-legacy',
  file: string,
  opts: ImportOptions,
  prefix: string,
  warnings: ImportWarnings,
): TaskMasterRead {
  let tag: string;
  let list: unknown;
  let base: JsonPath;
  if (format === 'taskmaster-tagged') {
    tag = selectTag(root, file, opts, warnings);
    list = root[tag];
    base = [tag];
  } else {
    if (opts.tag !== undefined && opts.tag !== DEFAULT_TAG) {
      if (!opts.tagSource) {
        throw importError(
          file,
          '(top level)',
          `${file} has no tags (Task Master's untagged format, which it reads as the "${DEFAULT_TAG}" tag), so tag "${opts.tag}" is not in it.`,
          `Leave out --tag (or use --tag ${DEFAULT_TAG}), or import the tasks.json that has the tag.`,
        );
      }
      warnings.note(
        `The current tag "${opts.tag}" (from ${opts.tagSource}) is not in ${file}, which has no tags; its tasks were imported as the "${DEFAULT_TAG}" tag.`,
      );
    }
    const extra = Object.keys(root).filter((k) => k !== 'tasks' && k !== 'metadata' && k !== 'meta');
    if (extra.length) warnings.note(`Ignored top-level keys next to "tasks": ${extra.join(', ')}.`);
    tag = DEFAULT_TAG;
    list = root;
    base = [];
  }
  const parsed = tmTaskListSchema.safeParse(list);
  if (!parsed.success) {
    throw zodImportError(
      file,
      base,
      parsed.error,
      'Task Master tasks file',
      'Correct that entry (compare it with a task written by task-master), then import again.',
    );
  }
  const where = format === 'taskmaster-tagged' ? `tag "${tag}"` : file;
  return { drafts: toDrafts(parsed.data.tasks, base, where, file, prefix, warnings), tag };
}

function selectTag(root: Record<string, unknown>, file: string, opts: ImportOptions, warnings: ImportWarnings): string {
  const tags = Object.keys(root).filter((k) => isRecord(root[k]) && 'tasks' in root[k]);
  const notTags = Object.keys(root).filter((k) => !tags.includes(k));
  if (notTags.length)
    warnings.note(
      `Ignored top-level keys that are not Task Master tags (no "tasks" list in them): ${notTags.join(', ')}.`,
    );
  const named = tags.map((t) => JSON.stringify(t)).join(', ');

  let tag: string | undefined;
  if (opts.tag !== undefined && tags.includes(opts.tag)) {
    tag = opts.tag;
    if (opts.tagSource && tag !== DEFAULT_TAG)
      warnings.note(`Imported tag "${tag}", the current tag in ${opts.tagSource}.`);
  } else {
    if (opts.tag !== undefined && !opts.tagSource) {
      throw importError(
        file,
        '(top level)',
        `Tag "${opts.tag}" is not in ${file}; its tags are ${named || '(none)'}.`,
        'Pass one of them with --tag.',
      );
    }
    if (tags.includes(DEFAULT_TAG)) tag = DEFAULT_TAG;
    else if (tags.length === 1) tag = tags[0];
    if (tag === undefined) {
      throw importError(
        file,
        '(top level)',
        tags.length
          ? `${file} has no "${DEFAULT_TAG}" tag, and several others (${named}): which one to import is not clear.`
          : `${file} has no Task Master tags: no object with a "tasks" list.`,
        tags.length
          ? 'Name the tag to import with --tag.'
          : "Check that this is Task Master's tasks.json (.taskmaster/tasks/tasks.json).",
      );
    }
    if (opts.tag !== undefined)
      warnings.note(
        `The current tag "${opts.tag}" (from ${opts.tagSource ?? 'Task Master'}) is not in ${file}; imported tag "${tag}" instead.`,
      );
    else if (tag !== DEFAULT_TAG)
      warnings.note(`${file} has no "${DEFAULT_TAG}" tag; imported its only tag, "${tag}".`);
  }

  const others = tags.filter((t) => t !== tag);
  if (others.length) {
    const counts = others.map((t) => {
      const tasks = (root[t] as Record<string, unknown>).tasks;
      return `"${t}" (${Array.isArray(tasks) ? tasks.length : 0} tasks)`;
    });
    warnings.note(
      `Only tag "${tag}" was imported; the file also has ${counts.join(', ')}. Task Master numbers each tag from 1, so import another tag with --tag <name> and its own --prefix to keep the ids apart.`,
    );
  }
  return tag;
}

function mapStatus(raw: string | null | undefined): Pick<Entry, 'status' | 'reason' | 'original'> {
  const original = (raw ?? '').trim().toLowerCase() || 'pending';
  switch (original) {
    case 'done':
    case 'completed':
      return { status: 'done', original };
    case 'cancelled':
      return { status: 'cancelled', original };
    case 'blocked':
    case 'deferred':
      return { status: 'blocked', reason: `Imported from Task Master with status "${original}".`, original };
    default:
      // pending, in-progress, review and anything unknown: the pipeline starts the task afresh.
      return { status: 'pending', original };
  }
}

function mapPriority(
  raw: string | null | undefined,
  fallback: Priority,
  id: string,
  warnings: ImportWarnings,
): Priority {
  const p = (raw ?? '').trim().toLowerCase();
  if (p === '') return fallback;
  const mapped = PRIORITY_MAP[p];
  if (mapped) return mapped;
  warnings.add('Unknown Task Master priority, imported as medium', `${id} (${JSON.stringify(raw)})`);
  return 'medium';
}

function toDrafts(
  tasks: TmTask[],
  base: JsonPath,
  where: string,
  file: string,
  prefix: string,
  warnings: ImportWarnings,
): TaskDraft[] {
  /** Tasks and subtasks by their pipeline key ("12", "12.3"). */
  const byKey = new Map<string, Entry>();
  /** The same by the key the file writes, which differs for subtasks numbered by position. */
  const written = new Map<string, Entry>();
  const parents: Entry[] = [];

  const duplicate = (what: string, key: string, first: JsonPath, second: JsonPath): never => {
    throw importError(
      file,
      formatJsonPath([...second, 'id']),
      `${what} ${key} appears twice in ${where}: at ${formatJsonPath(first)} and at ${formatJsonPath(second)}.`,
      'Give each one its own id (and update the dependencies that meant the second one), then import again.',
    );
  };

  /**
   * A subtask's own number. "12.3" in task 12 is 3: files written by some Task Master versions (and
   * by AI agents copying how it shows subtasks) carry the task's number in front. Task Master itself
   * then cannot find them by "12.3", so reading them as meant loses nothing.
   */
  const subtaskNumber = (raw: string | number, parentKey: string, parentId: string, at: JsonPath): string => {
    const text = String(raw).trim();
    if (!text.includes('.')) return canonical(text);
    const [p = '', k = ''] = text.split('.');
    if (canonical(p) !== parentKey) {
      throw importError(
        file,
        formatJsonPath(at),
        `Subtask id ${JSON.stringify(raw)} of task ${parentKey} (${formatJsonPath(at.slice(0, -1))}) names task ${canonical(p)}, not its own.`,
        'Give the subtask its own number within its task (its position, for example), then import again.',
      );
    }
    warnings.add(
      'Subtask ids written with their task\'s number in front ("12.3"), read as the number after the dot',
      `${parentId}: ${JSON.stringify(raw)} → ${canonical(k)}`,
    );
    return canonical(k);
  };

  tasks.forEach((task, ti) => {
    const key = canonical(task.id);
    const path: JsonPath = [...base, 'tasks', ti];
    const id = `${prefix}-${key}`;
    const prev = byKey.get(key);
    if (prev) duplicate('Task id', key, prev.path, path);
    const status = mapStatus(task.status);
    const parent: Entry = {
      key,
      id,
      path,
      item: task,
      parent: null,
      children: [],
      deps: [],
      ...status,
      priority: mapPriority(task.priority, 'medium', id, warnings),
    };
    byKey.set(key, parent);
    written.set(key, parent);
    parents.push(parent);
    const subtasks = task.subtasks ?? [];
    const subIds = subtasks.map((sub, si) => subtaskNumber(sub.id, key, id, [...path, 'subtasks', si, 'id']));
    // Subtasks that share an id within their task (AI-written files have them, all carrying the
    // parent's id, say) are numbered by position, as tm-core numbers subtasks without an id of their
    // own. What the file calls them still resolves as Task Master's lookups resolve it: an id
    // shared by several subtasks names the first of them.
    const byPosition = new Set(subIds).size < subIds.length;
    if (byPosition) {
      warnings.add(
        'Subtasks that share an id within their task, numbered by position (a dependency on a shared id means the first of them, as in Task Master)',
        `${id} (ids ${subIds.join(', ')} became ${subIds.map((_, si) => si + 1).join(', ')})`,
      );
    }
    subtasks.forEach((sub, si) => {
      const writtenKey = `${key}.${subIds[si] ?? ''}`;
      const skey = byPosition ? `${key}.${si + 1}` : writtenKey;
      const sid = `${prefix}-${skey}`;
      const child: Entry = {
        key: skey,
        id: sid,
        path: [...path, 'subtasks', si],
        item: sub,
        parent,
        children: [],
        deps: [],
        ...mapStatus(sub.status),
        priority: mapPriority(sub.priority, parent.priority, sid, warnings),
      };
      byKey.set(skey, child);
      if (!written.has(writtenKey)) written.set(writtenKey, child);
      parent.children.push(child);
    });
  });

  const resolve = (entry: Entry, raw: string | number, depPath: JsonPath): string | null => {
    const d = String(raw).trim();
    let target: Entry | undefined;
    if (d.includes('.')) {
      const [p = '', s = ''] = d.split('.');
      target = written.get(`${canonical(p)}.${canonical(s)}`);
    } else if (entry.parent) {
      target = written.get(`${entry.parent.key}.${canonical(d)}`);
      if (!target) {
        target = written.get(canonical(d));
        if (!target) {
          throw importError(
            file,
            formatJsonPath(depPath),
            `${entry.id} (${formatJsonPath(entry.path)}) depends on ${JSON.stringify(raw)}, which is neither a subtask of task ${entry.parent.key} nor a task in ${where}.`,
            'Correct or remove the dependency (task-master validate-dependencies lists such dependencies, fix-dependencies removes them), then import again.',
          );
        }
        warnings.add(
          'Subtask dependencies without a dot that match no sibling, read as top-level tasks (as task-master add-subtask writes them)',
          `${entry.id} → ${target.id}`,
        );
      }
    } else {
      target = written.get(canonical(d));
    }
    if (!target) {
      throw importError(
        file,
        formatJsonPath(depPath),
        `${entry.id} (${formatJsonPath(entry.path)}) depends on ${JSON.stringify(raw)}, which is not a task or subtask in ${where}.`,
        'Correct or remove the dependency (task-master validate-dependencies lists such dependencies, fix-dependencies removes them), or import the tag that holds that task; then import again.',
      );
    }
    if (target === entry) {
      warnings.add(
        'Tasks that depend on themselves; the dependency was dropped (task-master fix-dependencies does the same)',
        entry.id,
      );
      return null;
    }
    if (target === entry.parent) {
      warnings.add(
        'Subtasks that depend on their own parent; dropped, since in the pipeline a parent comes after its subtasks',
        entry.id,
      );
      return null;
    }
    return target.key;
  };

  for (const entry of byKey.values()) {
    const deps = entry.item.dependencies ?? [];
    const keys = new Set<string>();
    deps.forEach((dep, di) => {
      const k = resolve(entry, dep, [...entry.path, 'dependencies', di]);
      if (k !== null) keys.add(k);
    });
    entry.deps = [...keys];
  }

  // A parent's status carries over to its unfinished subtasks, because Task Master treats them so:
  // `set-status done` on a parent marks its subtasks done, and find-next-task offers subtasks only
  // of parents that are pending or in progress, so those of a cancelled or deferred parent never run.
  for (const parent of parents) {
    for (const child of parent.children) {
      if (parent.status === 'done' && (child.status === 'pending' || child.status === 'blocked')) {
        child.status = 'done';
        delete child.reason;
        warnings.add(
          'Unfinished subtasks of done tasks, imported as done (Task Master marks subtasks done with their parent)',
          child.id,
        );
      } else if (parent.status === 'cancelled' && (child.status === 'pending' || child.status === 'blocked')) {
        child.status = 'cancelled';
        delete child.reason;
        warnings.add('Unfinished subtasks of cancelled tasks, imported as cancelled', child.id);
      } else if (parent.status === 'blocked' && child.status === 'pending') {
        child.status = 'blocked';
        child.reason = `Its parent ${parent.id} was imported from Task Master with status "${parent.original}".`;
        warnings.add(`Pending subtasks of blocked or deferred tasks, imported as blocked`, child.id);
      }
    }
  }

  for (const entry of byKey.values()) {
    if (!KNOWN_STATUSES.includes(entry.original))
      warnings.add('Unknown Task Master status, read as pending', `${entry.id} (${JSON.stringify(entry.item.status)})`);
    else if (entry.status === 'pending' && entry.original !== 'pending') {
      warnings.add(
        'In progress or in review in Task Master, imported as pending (the work starts again at the first stage)',
        entry.id,
      );
    }
  }

  const idOf = (key: string): string => `${prefix}-${key}`;
  const drafts: TaskDraft[] = [];
  for (const parent of parents) {
    for (const child of parent.children) {
      // Inherited prerequisites skip the parent's own subtasks: the parent already comes after them,
      // and a sibling order the file does not state would only slow the pipeline down.
      const inherited = parent.deps.filter((k) => byKey.get(k)?.parent !== parent);
      const prerequisites = [...new Set([...child.deps, ...inherited])].map(idOf);
      const context = `## Parent task\n\n${parent.id}: ${parent.item.title.trim()}`;
      drafts.push(draftOf(child, prerequisites, context));
    }
    const prerequisites = [...new Set([...parent.deps, ...parent.children.map((c) => c.key)])].map(idOf);
    const context = parent.children.length
      ? `## Subtasks\n\nThis task comes after its subtasks:\n\n${parent.children.map((c) => `- ${c.id}: ${c.item.title.trim()}`).join('\n')}`
      : '';
    drafts.push(draftOf(parent, prerequisites, context));
  }
  return drafts;
}

const TM_FIELDS = {
  title: 'title',
  description: 'description',
  prerequisites: 'dependencies',
  priority: 'priority',
} as const;

function draftOf(entry: Entry, prerequisites: string[], context: string): TaskDraft {
  const { item } = entry;
  const description = (item.description ?? '').trim();
  const sections = [
    // Task Master requires a description, so a task without one often repeats its title there
    // (the export writes it so): that says nothing the title does not.
    description === item.title.trim() ? '' : description,
    section('Details', item.details),
    section('Test strategy', item.testStrategy),
    context,
  ].filter((s) => s !== '');
  return {
    spec: {
      id: entry.id,
      title: item.title,
      description: sections.join('\n\n'),
      prerequisites,
      priority: entry.priority,
      paths: [],
      labels: [],
    },
    status: entry.status,
    ...(entry.reason ? { reason: entry.reason } : {}),
    path: entry.path,
    fields: TM_FIELDS,
  };
}

function section(heading: string, text: string | null | undefined): string {
  const body = (text ?? '').trim();
  return body ? `## ${heading}\n\n${body}` : '';
}
