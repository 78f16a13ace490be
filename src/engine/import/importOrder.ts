/**
 * Orders imported tasks so that prerequisites come before their dependents (Kahn's algorithm), and
 * among the tasks that are ready at the same time keeps the file's order: the result is stable, so
 * an already ordered file comes out unchanged.
 *
 * Prerequisites outside the list are ignored here (they may exist in the pipeline already). Tasks on
 * a cycle cannot be ordered; they follow the rest in the file's order, and `complete` is false
 * (importCycles.ts then deals with the cycle).
 */

export interface Orderable {
  spec: { id: string; prerequisites: readonly string[] };
}

export function orderByPrerequisites<T extends Orderable>(tasks: readonly T[]): T[] {
  return orderTasks(tasks).ordered;
}

export function orderTasks<T extends Orderable>(tasks: readonly T[]): { ordered: T[]; complete: boolean } {
  const indexOf = new Map<string, number>();
  tasks.forEach((t, i) => indexOf.set(t.spec.id, i));

  const waiting = new Array<number>(tasks.length).fill(0);
  const dependents: number[][] = tasks.map(() => []);
  tasks.forEach((t, i) => {
    for (const p of new Set(t.spec.prerequisites)) {
      const j = indexOf.get(p);
      if (j === undefined || j === i) continue;
      waiting[i] = (waiting[i] ?? 0) + 1;
      dependents[j]?.push(i);
    }
  });

  // A binary min-heap of file positions: the earliest ready task goes next, in O((V + E) log V).
  const heap: number[] = [];
  const push = (v: number): void => {
    heap.push(v);
    let k = heap.length - 1;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if ((heap[parent] ?? 0) <= v) break;
      heap[k] = heap[parent] ?? 0;
      k = parent;
    }
    heap[k] = v;
  };
  const pop = (): number | undefined => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    let k = 0;
    for (;;) {
      const l = 2 * k + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const c = r < heap.length && (heap[r] ?? 0) < (heap[l] ?? 0) ? r : l;
      if ((heap[c] ?? 0) >= last) break;
      heap[k] = heap[c] ?? 0;
      k = c;
    }
    heap[k] = last;
    return top;
  };

  waiting.forEach((w, i) => {
    if (w === 0) push(i);
  });
  const placed = new Array<boolean>(tasks.length).fill(false);
  const out: T[] = [];
  for (let i = pop(); i !== undefined; i = pop()) {
    const t = tasks[i];
    if (!t) continue;
    placed[i] = true;
    out.push(t);
    for (const d of dependents[i] ?? []) {
      const w = (waiting[d] ?? 0) - 1;
      waiting[d] = w;
      if (w === 0) push(d);
    }
  }
  const complete = out.length === tasks.length;
  if (!complete) {
    tasks.forEach((t, i) => {
      if (!placed[i]) out.push(t);
    });
  }
  return { ordered: out, complete };
}
