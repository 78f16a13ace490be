import {
  DEFAULT_TAG,
  importError,
  zodImportError,
  type ImportOptions,
  type ImportWarnings,
  type TaskDraft,
} from './importTypes';
import type { JsonPath } from './jsonLocation';
import { toDrafts } from './taskMasterDrafts';
import { tmTaskListSchema } from './taskMasterSchema';

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
 *
 * This file reads the file's shape and picks the tag; the schemas are in taskMasterSchema.ts and the
 * mapping of tasks to drafts in taskMasterDrafts.ts.
 */

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

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
