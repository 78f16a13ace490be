import { PipelineError } from '../errors';
import { orderTasks } from './importOrder';
import type { ImportWarnings, ImportedTask, TaskDraft } from './importTypes';
import { formatJsonPath } from './jsonLocation';

/**
 * Prerequisite cycles in an imported file, which the scheduler would refuse as a whole batch.
 *
 * Task Master reads files with cycles: its `next` skips what waits on itself, and a cycle among
 * finished tasks holds nothing back. Real files have them (subtasks written by an AI that depend on
 * each other, then done). So a cycle whose tasks are **all finished** (done, or cancelled: neither
 * ever starts again) is accepted: the links that close it are dropped, with a warning naming the
 * tasks, since they can no longer order anything. A cycle with any task still to do could never
 * start; it is refused, naming the cycle and the file.
 *
 * Costs nothing on the usual path: the ordering the import does anyway tells whether there is a
 * cycle at all, and only then are the strongly connected parts looked for.
 */

/** Statuses a task never leaves: a cycle among such tasks can hold nothing back. */
const FINISHED: ReadonlySet<string> = new Set(['done', 'cancelled']);

/** Orders the tasks prerequisites first, after breaking the cycles among finished tasks; throws for others. */
export function orderWithoutCycles(
  tasks: ImportedTask[],
  drafts: readonly TaskDraft[],
  file: string,
  warnings: ImportWarnings,
): ImportedTask[] {
  const first = orderTasks(tasks);
  if (first.complete) return first.ordered;

  const indexOf = new Map<string, number>();
  tasks.forEach((t, i) => indexOf.set(t.spec.id, i));
  const edges = tasks.map((t) => {
    const out: number[] = [];
    for (const p of t.spec.prerequisites) {
      const j = indexOf.get(p);
      if (j !== undefined) out.push(j);
    }
    return out;
  });

  for (const component of cyclicComponents(edges)) {
    const members = new Set(component);
    const open = component.filter((i) => !FINISHED.has(tasks[i]?.status ?? 'pending'));
    if (open.length) throw cycleError(tasks, drafts, edges, members, open, file);
    // Every link to a member later in the file's order goes: what is left points backwards only,
    // so it has no cycle, and the links that stay are the ones the file's order agrees with.
    const dropped: string[] = [];
    for (const i of component) {
      const t = tasks[i];
      if (!t) continue;
      const keep = t.spec.prerequisites.filter((p) => {
        const j = indexOf.get(p);
        const goes = j !== undefined && members.has(j) && j > i;
        if (goes) dropped.push(`${t.spec.id} → ${p}`);
        return !goes;
      });
      tasks[i] = { ...t, spec: { ...t.spec, prerequisites: keep } };
    }
    const allDone = component.every((i) => tasks[i]?.status === 'done');
    warnings.add(
      `Prerequisite cycles among tasks that are all ${allDone ? 'done' : 'done or cancelled'}, accepted (they hold nothing back); the links that closed them were dropped`,
      `${component.map((i) => tasks[i]?.spec.id).join(', ')} (dropped ${dropped.join(', ')})`,
    );
  }
  return orderTasks(tasks).ordered;
}

/**
 * Tarjan's strongly connected components, iterative so a long chain cannot overflow the stack; only
 * the components with a cycle (two or more tasks), each sorted by position, in order of their first.
 */
export function cyclicComponents(edges: ReadonlyArray<readonly number[]>): number[][] {
  const n = edges.length;
  const index = new Array<number>(n).fill(-1);
  const low = new Array<number>(n).fill(0);
  const onStack = new Array<boolean>(n).fill(false);
  const stack: number[] = [];
  const out: number[][] = [];
  let counter = 0;

  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: Array<[node: number, next: number]> = [[root, 0]];
    index[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length) {
      const frame = work[work.length - 1] as [number, number];
      const [v, k] = frame;
      const out_v = edges[v] ?? [];
      if (k < out_v.length) {
        frame[1] = k + 1;
        const w = out_v[k] as number;
        if (index[w] === -1) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = true;
          work.push([w, 0]);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v] as number, index[w] as number);
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low[parent[0]] = Math.min(low[parent[0]] as number, low[v] as number);
      if (low[v] === index[v]) {
        const component: number[] = [];
        for (;;) {
          const w = stack.pop() as number;
          onStack[w] = false;
          component.push(w);
          if (w === v) break;
        }
        if (component.length > 1) out.push(component.sort((a, b) => a - b));
      }
    }
  }
  return out.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
}

/** The shortest cycle through `start` inside `members` (breadth first), as a closed list of positions. */
function shortestCycle(edges: ReadonlyArray<readonly number[]>, members: ReadonlySet<number>, start: number): number[] {
  const cameFrom = new Map<number, number>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q] as number;
    for (const w of edges[v] ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = cameFrom.get(x) as number) path.push(x);
        return [start, ...path.slice(1).reverse(), start];
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

function cycleError(
  tasks: readonly ImportedTask[],
  drafts: readonly TaskDraft[],
  edges: ReadonlyArray<readonly number[]>,
  members: ReadonlySet<number>,
  open: readonly number[],
  file: string,
): PipelineError {
  const start = open[0] as number;
  const cycle = shortestCycle(edges, members, start);
  const id = (i: number): string => tasks[i]?.spec.id ?? '?';
  const steps = cycle.map((i, k) => {
    const prev = k > 0 ? cycle[k - 1] : undefined;
    // The pipeline puts a parent after its subtasks: say so where that link is ours, not the file's.
    const ours = prev !== undefined && id(i).startsWith(`${id(prev)}.`) ? 'its subtask' : '';
    const notes = k === cycle.length - 1 ? [ours] : [ours, tasks[i]?.source ?? '?'];
    const said = notes.filter((x) => x !== '').join(', ');
    return said ? `${id(i)} (${said})` : id(i);
  });
  const notDone = open.map(id);
  const [a, b] = [cycle[0] as number, cycle[1] as number];
  const draft = drafts[a];
  const field = draft?.fields.prerequisites;
  const where = draft ? formatJsonPath(field ? [...draft.path, field] : draft.path) : '(top level)';
  const more = members.size > cycle.length - 1 ? ` (${members.size} tasks wait on one another in all)` : '';
  return new PipelineError(
    'import',
    `The dependencies in ${file} form a cycle: ${steps.join(' → ')}${more}. Each waits for the next, and ${listed(notDone)} ${notDone.length === 1 ? 'is' : 'are'} not done, so none of them could start.`,
    {
      file,
      where,
      fix: `Remove one link of the cycle from the file, for example ${id(b)} from ${id(a)}'s dependencies (task-master remove-dependency does that for Task Master), then import again.`,
    },
  );
}

function listed(ids: readonly string[]): string {
  if (ids.length <= 1) return ids.join('');
  const shown = ids.slice(0, 5);
  const rest = ids.length > 5 ? ` and ${ids.length - 5} more` : '';
  return rest ? `${shown.join(', ')}${rest}` : `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
}
