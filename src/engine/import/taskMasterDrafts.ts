import type { Priority } from '../model/schema';
import { importError, type ImportWarnings, type ImportedStatus, type TaskDraft } from './importTypes';
import { formatJsonPath, type JsonPath } from './jsonLocation';
import type { TmItem, TmTask } from './taskMasterSchema';

/**
 * Task Master's tasks as the pipeline's task drafts: ids with the prefix, subtasks and their
 * parents, dependencies resolved as Task Master resolves them, statuses and priorities mapped, and
 * the description's sections. The mapping is described in taskMasterFormat.ts.
 */

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

const canonical = (id: string | number): string => String(Number(String(id).trim()));

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

export function toDrafts(
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
