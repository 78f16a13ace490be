import { PipelineError } from '../errors';
import type { Task } from '../model/schema';

/**
 * The prerequisite graph, kept incrementally: for each task the number of its prerequisites that are
 * not done yet, for each task the tasks that wait for it, and the set of pending tasks whose count is
 * zero. A task becoming done touches only its dependents, so readiness costs O(out-degree) per merge
 * instead of a rescan.
 *
 * A prerequisite that is not (yet) a task counts as unmet, and its dependents are remembered under its
 * id: if it is added later, already done, the counts come out as if it had been there from the start.
 * That is what makes a rebuild from a state equal the incrementally maintained graph, whatever order
 * the tasks arrive in.
 */
export class PrerequisiteGraph {
  /** prerequisite id → ids of the tasks that list it (each once). */
  private readonly dependents = new Map<string, string[]>();
  /** task id → its distinct prerequisites. */
  private readonly prerequisites = new Map<string, readonly string[]>();
  /** task id → how many of its prerequisites are not done. */
  private readonly unmet = new Map<string, number>();
  /** Pending tasks with no unmet prerequisite. */
  private readonly ready = new Set<string>();
  /**
   * `ready` sorted, until it changes. The facade asks after every change, and tasks it does not
   * promote (not eligible in pilot mode) stay in the set, so sorting afresh each time would cost
   * O(k log k) per call for nothing.
   */
  private sorted: string[] | null = null;

  /** `tasks` is the index's own map; the graph reads statuses from it and never writes it. */
  constructor(private readonly tasks: ReadonlyMap<string, Task>) {}

  /** Call before the index stores `after`; `prev` is the version it stored before (if any). */
  update(prev: Task | undefined, after: Task): void {
    const id = after.id;
    if (!prev || !sameList(prev.prerequisites, after.prerequisites)) {
      if (prev) this.unlink(id);
      this.link(after);
    }
    const wasDone = prev?.status === 'done';
    const isDone = after.status === 'done';
    if (wasDone !== isDone) {
      for (const d of this.dependents.get(id) ?? []) {
        const n = (this.unmet.get(d) ?? 0) + (isDone ? -1 : 1);
        this.unmet.set(d, n);
        const dt = this.tasks.get(d);
        if (dt) this.refresh(d, dt.status, n);
      }
    }
    if (prev && prev.seq !== after.seq) this.sorted = null;
    this.refresh(id, after.status, this.unmet.get(id) ?? 0);
  }

  /**
   * Links every task of the index's map at once, on an empty graph: the graph `update` would build
   * from them one by one, in fewer steps, since each count is taken from the final statuses and
   * no count is moved twice (SchedulerIndex.build; a test holds the two to the same result).
   */
  addAll(): void {
    if (this.prerequisites.size > 0) throw new Error('addAll works on an empty graph (this is a bug)');
    for (const task of this.tasks.values()) {
      const id = task.id;
      const distinct = distinctList(task.prerequisites);
      this.prerequisites.set(id, distinct);
      let n = 0;
      for (const p of distinct) {
        if (this.tasks.get(p)?.status !== 'done') n++;
        const list = this.dependents.get(p);
        if (list) list.push(id);
        else this.dependents.set(p, [id]);
      }
      this.unmet.set(id, n);
      if (n === 0 && task.status === 'pending') this.ready.add(id);
    }
    this.sorted = null;
  }

  /**
   * Call before the index forgets a removed task. Its dependents keep listing it (a prerequisite
   * that is not a task counts as unmet), so the graph equals one rebuilt from the state without it.
   */
  remove(task: Task): void {
    const id = task.id;
    if (task.status === 'done') {
      for (const d of this.dependents.get(id) ?? []) {
        const n = (this.unmet.get(d) ?? 0) + 1;
        this.unmet.set(d, n);
        const dt = this.tasks.get(d);
        if (dt) this.refresh(d, dt.status, n);
      }
    }
    this.unlink(id);
    if (this.ready.delete(id)) this.sorted = null;
  }

  /** The tasks that list `id` among their prerequisites (existing ones only), in no particular order. */
  dependentsOf(id: string): string[] {
    return (this.dependents.get(id) ?? []).filter((d) => this.tasks.has(d));
  }

  unmetCount(id: string): number {
    return this.unmet.get(id) ?? 0;
  }

  /** The prerequisites of `id` that are not done, in the task's order. */
  unmetPrerequisites(id: string): string[] {
    return (this.prerequisites.get(id) ?? []).filter((p) => this.tasks.get(p)?.status !== 'done');
  }

  /** Pending tasks whose prerequisites are all done, oldest first. */
  readyPending(): string[] {
    if (!this.sorted) {
      const seqOf = (id: string): number => this.tasks.get(id)?.seq ?? 0;
      this.sorted = [...this.ready].sort((a, b) => seqOf(a) - seqOf(b) || (a < b ? -1 : a > b ? 1 : 0));
    }
    return [...this.sorted];
  }

  /** For snapshots: every task's unmet count. */
  unmetCounts(): Record<string, number> {
    return Object.fromEntries([...this.unmet].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  private link(task: Task): void {
    const distinct = [...new Set(task.prerequisites)];
    this.prerequisites.set(task.id, distinct);
    let n = 0;
    for (const p of distinct) {
      if (this.tasks.get(p)?.status !== 'done') n++;
      let list = this.dependents.get(p);
      if (!list) this.dependents.set(p, (list = []));
      list.push(task.id);
    }
    this.unmet.set(task.id, n);
  }

  private unlink(id: string): void {
    for (const p of this.prerequisites.get(id) ?? []) {
      const list = this.dependents.get(p);
      const i = list?.indexOf(id) ?? -1;
      if (list && i >= 0) list.splice(i, 1);
    }
    this.prerequisites.delete(id);
    this.unmet.delete(id);
  }

  private refresh(id: string, status: Task['status'], unmet: number): void {
    const ready = status === 'pending' && unmet === 0;
    if (ready === this.ready.has(id)) return;
    if (ready) this.ready.add(id);
    else this.ready.delete(id);
    this.sorted = null;
  }

  /**
   * Throws for tasks about to be added (one or a batch that may reference each other) when an id is
   * taken, a prerequisite does not exist, or the prerequisites would form a cycle. Changes nothing.
   */
  checkNewTasks(batch: readonly (Pick<Task, 'id' | 'prerequisites'> & Partial<Pick<Task, 'title'>>)[]): void {
    const incoming = new Map<string, readonly string[]>();
    for (const t of batch) {
      if (this.tasks.has(t.id) || incoming.has(t.id)) {
        throw new PipelineError('duplicate-id', `Task ${t.id} already exists.`, {
          where: t.id,
          fix: this.tasks.has(t.id)
            ? 'Choose another id, or leave the id out and one is generated.'
            : `Give each task in the batch its own id; ${t.id} appears twice.`,
        });
      }
      incoming.set(t.id, t.prerequisites);
    }
    for (const t of batch) {
      for (const p of t.prerequisites) {
        if (!this.tasks.has(p) && !incoming.has(p)) {
          // The task being added does not exist yet either: say so, so the unknown one is plainly `p`.
          const added = batch.length === 1 ? 'the task being added' : 'a task being added';
          throw new PipelineError(
            'unknown-task',
            `Unknown prerequisite ${p}: ${t.id}${t.title ? ` (${JSON.stringify(t.title)})` : ''}, ${added}, depends on ${p}, which does not exist. Nothing was added.`,
            {
              where: `${t.id}.prerequisites`,
              fix: `Add ${p} first (or in the same import), or leave ${p} out of the new task's prerequisites; \`pipeline task list\` shows the tasks that exist.`,
            },
          );
        }
      }
    }
    // Existing tasks normally cannot reach a new one, so the search stays inside the batch; only if
    // an existing task already names a new id (a prerequisite added before its task) must it follow
    // edges through the existing graph as well.
    const throughExisting = [...incoming.keys()].some((id) => this.dependents.has(id));
    const edges = (id: string): readonly string[] =>
      incoming.get(id) ?? (throughExisting ? (this.prerequisites.get(id) ?? []) : []);
    const cycle = findCycle([...incoming.keys()], edges);
    if (cycle) {
      const [first, second] = cycle;
      throw new PipelineError(
        'cycle',
        `The prerequisites form a cycle: ${cycle.join(' → ')} (each task waits for the next, so none can start).`,
        {
          where: `${first}.prerequisites`,
          fix: `Remove one link of the cycle, for example ${second} from ${first}'s prerequisites.`,
        },
      );
    }
  }
}

/**
 * Throws for a change of an existing task's prerequisites when one of them does not exist, is the
 * task itself, or would close a cycle (a new prerequisite that already waits, directly or not, for
 * the task). Changes nothing. `prerequisitesOf` gives every other task's current list.
 */
export function checkPrerequisiteEdit(
  id: string,
  prerequisites: readonly string[],
  exists: (id: string) => boolean,
  prerequisitesOf: (id: string) => readonly string[],
): void {
  for (const p of prerequisites) {
    if (!exists(p)) {
      throw new PipelineError('unknown-task', `Task ${id} cannot wait for ${p}: there is no task ${p}.`, {
        where: `${id}.prerequisites`,
        fix: `Add ${p} first, or leave it out of --depends-on (the tasks: \`pipeline task list\`).`,
      });
    }
  }
  const edges = (x: string): readonly string[] => (x === id ? prerequisites : prerequisitesOf(x));
  const cycle = findCycle([id], edges);
  if (cycle && cycle[0] !== id) {
    // Not made by this change (an import can leave one): named all the same, since it blocks the task.
    throw new PipelineError('cycle', `The prerequisites already form a cycle: ${cycle.join(' → ')}.`, {
      where: `${cycle[0]}.prerequisites`,
      fix: `Remove one link of it first, for example ${cycle[1]} from ${cycle[0]}'s prerequisites.`,
    });
  }
  if (cycle) {
    const second = cycle[1] ?? id;
    throw new PipelineError(
      'cycle',
      cycle.length === 2
        ? `Task ${id} cannot wait for itself.`
        : `The prerequisites would form a cycle: ${cycle.join(' → ')} (each task waits for the next, so none could start).`,
      {
        where: `${id}.prerequisites`,
        fix:
          cycle.length === 2
            ? `Leave ${id} out of its own --depends-on.`
            : `Leave ${second} out of ${id}'s prerequisites, or first remove the link that makes ${second} wait for ${id}.`,
      },
    );
  }
}

/** `list` without repeats, in its order: the list itself when it has none (the usual case, checked without a set). */
function distinctList(list: readonly string[]): readonly string[] {
  for (let i = 1; i < list.length; i++) {
    for (let j = 0; j < i; j++) if (list[i] === list[j]) return [...new Set(list)];
  }
  return list;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

/**
 * Depth-first search from each start node along `edges`, iterative so a chain of 10 000 tasks does
 * not overflow the stack. Returns the first cycle found as a closed path (`[A, B, A]`), or null.
 */
export function findCycle(starts: readonly string[], edges: (id: string) => readonly string[]): string[] | null {
  const ON_PATH = 1;
  const DONE = 2;
  const mark = new Map<string, number>();
  for (const start of starts) {
    if (mark.has(start)) continue;
    const path: string[] = [start];
    const next: number[] = [0];
    mark.set(start, ON_PATH);
    while (path.length > 0) {
      const top = path.length - 1;
      const id = path[top] as string;
      const out = edges(id);
      const i = next[top] as number;
      if (i >= out.length) {
        mark.set(id, DONE);
        path.pop();
        next.pop();
        continue;
      }
      next[top] = i + 1;
      const to = out[i] as string;
      const m = mark.get(to);
      if (m === ON_PATH) return [...path.slice(path.indexOf(to)), to];
      if (m === undefined) {
        mark.set(to, ON_PATH);
        path.push(to);
        next.push(0);
      }
    }
  }
  return null;
}
