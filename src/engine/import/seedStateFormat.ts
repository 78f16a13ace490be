import { z } from 'zod';
import { isTaskId } from '../model/ids';
import { PRIORITIES, type Priority } from '../model/schema';
import { importError, zodImportError, type ImportWarnings, type ImportedStatus, type TaskDraft } from './importTypes';
import { formatJsonPath, type JsonPath } from './jsonLocation';

/**
 * Reads the seed's state JSON (the Pipeline Workflow System's `state.json`, whose shape
 * `status --json` keeps): `version`, `orchestration_mode`, `mode`,
 * `tasks{id,status,assigned_to,created_at,…}`, `agents`, and
 * `queues{unassigned, architect, test, implementation, blocked, completed}`.
 *
 * Ids are kept as they are (they already are pipeline ids, `TASK-001`). Mapping, from the seed's
 * statuses and queues (docs/task-import.md):
 * - `completed` (and `done`) → done; `cancelled` → cancelled; `blocked` → blocked, with the state's
 *   `blocked_reason` or a reason naming the status.
 * - `unassigned` (and `pending`, `queued`) → pending.
 * - Work in flight, `arch_wip`, `test_wip`, `impl_wip`, any other `<stage>_wip`, `review` (and our
 *   own `working`, `merging`) → pending: its worktree and agent are not imported, so the task starts
 *   again at the first stage. A warning lists them.
 * - A task without a status takes it from its queue: `completed` → done; `unassigned`, a stage
 *   queue, or `blocked` → pending. The seed's `blocked` queue holds tasks blocked on their
 *   dependencies ("Dependency blocked"), which the scheduler already waits for.
 * - Ids listed in a queue but missing from `tasks` (the seed's own example has two) become tasks,
 *   titled with their id.
 * - The seed's tasks have no title: a task without one is titled with its id. `title`,
 *   `description`, `prerequisites`, `priority`, `paths` and `labels` are taken when present.
 * - `agents`, `orchestration_mode` and `mode` are configuration of the pipeline that imports, not
 *   tasks, and are not imported.
 */

const seedTaskSchema = z.looseObject({
  id: z.string().optional(),
  status: z.string().nullish(),
  title: z.string().nullish(),
  description: z.string().nullish(),
  prerequisites: z.array(z.string()).nullish(),
  priority: z.string().nullish(),
  paths: z.array(z.string()).nullish(),
  labels: z.array(z.string()).nullish(),
  blocked_reason: z.string().nullish(),
});
const seedStateSchema = z.looseObject({
  tasks: z.record(z.string(), seedTaskSchema).optional(),
  queues: z.record(z.string(), z.array(z.string())).optional(),
});
type SeedTask = z.infer<typeof seedTaskSchema>;

const STATUS_MAP: Record<string, ImportedStatus> = {
  unassigned: 'pending',
  pending: 'pending',
  queued: 'pending',
  completed: 'done',
  done: 'done',
  cancelled: 'cancelled',
  blocked: 'blocked',
};
const IN_FLIGHT = new Set(['review', 'working', 'merging']);
const SEED_FIELDS = {
  title: 'title',
  description: 'description',
  prerequisites: 'prerequisites',
  priority: 'priority',
  paths: 'paths',
  labels: 'labels',
} as const;
const ID_FIX = 'Use an upper-case prefix, a dash and a number, such as TASK-001 (subtasks: TASK-001.2).';

interface QueuePlace {
  queue: string;
  path: JsonPath;
}

export function readSeedState(root: Record<string, unknown>, file: string, warnings: ImportWarnings): TaskDraft[] {
  const parsed = seedStateSchema.safeParse(root);
  if (!parsed.success) {
    throw zodImportError(
      file,
      [],
      parsed.error,
      'pipeline state',
      "Correct that entry (compare it with the seed's state example or `pipeline status --json`), then import again.",
    );
  }
  const tasks = parsed.data.tasks ?? {};
  const queues = parsed.data.queues ?? {};

  if (root.agents !== undefined || root.orchestration_mode !== undefined || root.mode !== undefined) {
    warnings.note(
      "The state's agents and modes (orchestration_mode, mode) are not imported: they belong to the configuration of the pipeline that imports.",
    );
  }

  const queueOf = new Map<string, QueuePlace>();
  for (const [queue, ids] of Object.entries(queues)) {
    ids.forEach((id, k) => {
      const path: JsonPath = ['queues', queue, k];
      if (!isTaskId(id))
        throw importError(
          file,
          formatJsonPath(path),
          `Queue "${queue}" lists ${JSON.stringify(id)}, which is not a valid task id.`,
          ID_FIX,
        );
      const prev = queueOf.get(id);
      if (!prev) queueOf.set(id, { queue, path });
      else if (prev.queue !== queue)
        warnings.add('Tasks listed in more than one queue (the first one counts)', `${id} (${prev.queue}, ${queue})`);
    });
  }

  const all = new Set<string>();
  const items: Array<{ id: string; task: SeedTask; path: JsonPath; fromQueueOnly: boolean }> = [];
  for (const [key, task] of Object.entries(tasks)) {
    const path: JsonPath = ['tasks', key];
    if (!isTaskId(key))
      throw importError(file, formatJsonPath(path), `${JSON.stringify(key)} is not a valid task id.`, ID_FIX);
    if (task.id !== undefined && task.id !== key) {
      throw importError(
        file,
        formatJsonPath([...path, 'id']),
        `The task under ${JSON.stringify(key)} says its id is ${JSON.stringify(task.id)}.`,
        'Make the key and the id the same, then import again.',
      );
    }
    all.add(key);
    items.push({ id: key, task, path, fromQueueOnly: false });
  }
  for (const [id, place] of queueOf) {
    if (all.has(id)) continue;
    all.add(id);
    items.push({ id, task: {}, path: place.path, fromQueueOnly: true });
    warnings.add('Listed in a queue but not in "tasks", imported with their id as title', id);
  }

  return items.map(({ id, task, path, fromQueueOnly }) => {
    const place = queueOf.get(id);
    const { status, reason } = seedStatus(id, task, place, warnings);

    const prerequisites: string[] = [];
    (task.prerequisites ?? []).forEach((p, k) => {
      if (p === id) {
        warnings.add('Tasks that depend on themselves; the dependency was dropped', id);
        return;
      }
      if (!all.has(p)) {
        throw importError(
          file,
          formatJsonPath([...path, 'prerequisites', k]),
          `${id} depends on ${JSON.stringify(p)}, which is not a task in ${file}.`,
          'Correct or remove the prerequisite, or add that task to the file; then import again.',
        );
      }
      if (!prerequisites.includes(p)) prerequisites.push(p);
    });
    if (place?.queue === 'blocked' && !task.status && prerequisites.length === 0) {
      warnings.add(
        'In the "blocked" queue (blocked on dependencies) with no prerequisites listed, imported as pending',
        id,
      );
    }

    let title = (task.title ?? '').trim();
    if (!title) {
      title = id;
      if (!fromQueueOnly) warnings.add('Tasks without a title, titled with their id', id);
    }

    const draft: TaskDraft = {
      spec: {
        id,
        title,
        description: task.description ?? '',
        prerequisites,
        priority: seedPriority(id, task.priority, warnings),
        paths: task.paths ?? [],
        labels: task.labels ?? [],
      },
      status,
      ...(reason ? { reason } : {}),
      path,
      fields: fromQueueOnly ? {} : SEED_FIELDS,
    };
    return draft;
  });
}

function seedStatus(
  id: string,
  task: SeedTask,
  place: QueuePlace | undefined,
  warnings: ImportWarnings,
): { status: ImportedStatus; reason?: string } {
  const raw = (task.status ?? '').trim();
  if (!raw) return { status: place?.queue === 'completed' ? 'done' : 'pending' };
  const s = raw.toLowerCase();
  let status = STATUS_MAP[s];
  if (status === undefined) {
    if (s.endsWith('_wip') || IN_FLIGHT.has(s)) {
      warnings.add(
        'Work in progress in the state (such as arch_wip), imported as pending: the work starts again at the first stage',
        `${id} (${raw})`,
      );
    } else {
      warnings.add('Unknown status, imported as pending', `${id} (${JSON.stringify(raw)})`);
    }
    status = 'pending';
  }
  if (place && (status === 'done') !== (place.queue === 'completed')) {
    warnings.add('Status and queue disagree; the status counts', `${id} (status ${raw}, queue ${place.queue})`);
  }
  if (status === 'blocked') return { status, reason: task.blocked_reason?.trim() || `Imported with status "${raw}".` };
  return { status };
}

function seedPriority(id: string, raw: string | null | undefined, warnings: ImportWarnings): Priority {
  const p = (raw ?? '').trim().toLowerCase();
  if (p === '') return 'medium';
  if ((PRIORITIES as readonly string[]).includes(p)) return p as Priority;
  warnings.add('Unknown priority, imported as medium', `${id} (${JSON.stringify(raw)})`);
  return 'medium';
}
