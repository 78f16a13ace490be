import type { MetricsPoint } from './metricsSnapshot';

/**
 * The metrics panel's short history: fixed intervals (5 s by default) over a window (30 min), in a
 * ring. Levels (busy agents, queue depth) only change on events, so an interval is closed, and any
 * empty ones after it filled with the levels then, when the next event or snapshot arrives after its
 * end: no timer runs.
 */

/** A fixed-size ring: pushes overwrite the oldest; `toArray` is oldest first. */
export class Ring<T> {
  private items: T[] = [];
  private head = 0;
  constructor(readonly capacity: number) {}
  push(v: T): void {
    if (this.items.length < this.capacity) this.items.push(v);
    else {
      this.items[this.head] = v;
      this.head = (this.head + 1) % this.capacity;
    }
  }
  get length(): number {
    return this.items.length;
  }
  toArray(): T[] {
    return [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}

/** The levels the series integrates and samples, read from the metrics' own counts. */
export interface Levels {
  busy: () => number;
  agents: () => number;
  queueDepth: () => Record<string, number>;
}

interface Bucket {
  t: number;
  merged: number;
  stagesCompleted: number;
  busyMs: number;
  agentMs: number;
  /** Up to when busyMs/agentMs are integrated. */
  until: number;
}

export class TimeSeries {
  private readonly ring: Ring<MetricsPoint>;
  private cur: Bucket;
  constructor(
    readonly intervalMs: number,
    readonly windowMs: number,
    private readonly levels: Levels,
    now: number,
  ) {
    this.ring = new Ring(Math.max(1, Math.ceil(windowMs / intervalMs) - 1));
    this.cur = this.bucketAt(now);
  }

  private bucketAt(now: number): Bucket {
    const t = Math.floor(now / this.intervalMs) * this.intervalMs;
    return { t, merged: 0, stagesCompleted: 0, busyMs: 0, agentMs: 0, until: Math.max(t, now) };
  }

  private integrate(b: Bucket, to: number): void {
    const dt = to - b.until;
    if (dt <= 0) return;
    b.busyMs += this.levels.busy() * dt;
    b.agentMs += this.levels.agents() * dt;
    b.until = to;
  }

  private point(b: Bucket): MetricsPoint {
    return {
      t: b.t,
      merged: b.merged,
      stagesCompleted: b.stagesCompleted,
      queueDepth: this.levels.queueDepth(),
      busyAgents: this.levels.busy(),
      agents: this.levels.agents(),
      utilisation: b.agentMs > 0 ? Math.min(1, b.busyMs / b.agentMs) : 0,
    };
  }

  /** Brings the series up to `now` with the levels as they were until now. Call before a level changes. */
  advance(now: number): void {
    const end = this.cur.t + this.intervalMs;
    if (now < end) {
      this.integrate(this.cur, now);
      return;
    }
    this.integrate(this.cur, end);
    this.ring.push(this.point(this.cur));
    const target = Math.floor(now / this.intervalMs) * this.intervalMs;
    // Empty intervals in between carry the levels; no more of them than the window holds.
    const gaps = Math.min((target - end) / this.intervalMs, this.ring.capacity);
    for (let i = gaps; i > 0; i--) {
      const b: Bucket = {
        t: target - i * this.intervalMs,
        merged: 0,
        stagesCompleted: 0,
        busyMs: 0,
        agentMs: 0,
        until: target - i * this.intervalMs,
      };
      this.integrate(b, b.t + this.intervalMs);
      this.ring.push(this.point(b));
    }
    this.cur = { t: target, merged: 0, stagesCompleted: 0, busyMs: 0, agentMs: 0, until: target };
    this.integrate(this.cur, now);
  }

  addMerged(now: number): void {
    this.advance(now);
    this.cur.merged++;
  }

  addStageCompleted(now: number): void {
    this.advance(now);
    this.cur.stagesCompleted++;
  }

  points(now: number): MetricsPoint[] {
    this.advance(now);
    return [...this.ring.toArray(), this.point(this.cur)];
  }
}
