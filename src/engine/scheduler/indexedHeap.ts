/**
 * A binary min-heap of entries with string keys, with removal and re-insertion by key in O(log n).
 * The scheduler keeps one per stage (ready tasks, best first) and one for back-off timers; tasks move
 * between them on every transition, so removal by key is what makes incremental updates cheap.
 */
export class IndexedHeap<T extends { readonly key: string }> {
  private readonly items: T[] = [];
  private readonly positions = new Map<string, number>();

  /** `before(a, b)` is true when `a` must come out first; it must be a strict total order. */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  has(key: string): boolean {
    return this.positions.has(key);
  }

  get(key: string): T | undefined {
    const i = this.positions.get(key);
    return i === undefined ? undefined : this.items[i];
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Inserts, or replaces the entry with the same key. */
  push(item: T): void {
    if (this.positions.has(item.key)) this.remove(item.key);
    this.items.push(item);
    this.positions.set(item.key, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top) this.remove(top.key);
    return top;
  }

  remove(key: string): boolean {
    const i = this.positions.get(key);
    if (i === undefined) return false;
    this.positions.delete(key);
    const last = this.items.pop() as T;
    if (i < this.items.length) {
      this.items[i] = last;
      this.positions.set(last.key, i);
      this.down(i);
      this.up(i);
    }
    return true;
  }

  /** Every entry, in no particular order. */
  values(): readonly T[] {
    return this.items;
  }

  /**
   * The entries best first, lazily and without disturbing the heap: a best-first walk of the heap's
   * tree with a small side heap of positions. Taking k entries costs O(k log k), so a planner that
   * skips a few conflicting tasks never pays for the whole queue.
   */
  *ordered(): Generator<T, void, undefined> {
    const items = this.items;
    if (items.length === 0) return;
    const frontier: number[] = [0];
    const less = (x: number, y: number): boolean => this.before(items[x] as T, items[y] as T);
    while (frontier.length > 0) {
      const i = popIndex(frontier, less);
      yield items[i] as T;
      const l = 2 * i + 1;
      if (l < items.length) pushIndex(frontier, l, less);
      if (l + 1 < items.length) pushIndex(frontier, l + 1, less);
    }
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p] as T;
      if (!this.before(item, parent)) break;
      items[i] = parent;
      this.positions.set(parent.key, i);
      i = p;
    }
    items[i] = item;
    this.positions.set(item.key, i);
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(items[r] as T, items[l] as T) ? r : l;
      const child = items[c] as T;
      if (!this.before(child, item)) break;
      items[i] = child;
      this.positions.set(child.key, i);
      i = c;
    }
    items[i] = item;
    this.positions.set(item.key, i);
  }
}

function pushIndex(h: number[], v: number, less: (x: number, y: number) => boolean): void {
  h.push(v);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(h[i] as number, h[p] as number)) break;
    [h[i], h[p]] = [h[p] as number, h[i] as number];
    i = p;
  }
}

function popIndex(h: number[], less: (x: number, y: number) => boolean): number {
  const top = h[0] as number;
  const last = h.pop() as number;
  if (h.length > 0) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && less(h[r] as number, h[l] as number) ? r : l;
      if (!less(h[c] as number, h[i] as number)) break;
      [h[i], h[c]] = [h[c] as number, h[i] as number];
      i = c;
    }
  }
  return top;
}
