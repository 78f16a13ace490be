/**
 * Time as a port, so tests and benchmarks can run the engine on a fake clock.
 */
export interface Clock {
  now(): number;
  /** ISO-8601 text of now(), as stored in the state. */
  iso(): string;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  iso: () => new Date().toISOString(),
};

export class FakeClock implements Clock {
  constructor(private t = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.t;
  }
  iso(): string {
    return new Date(this.t).toISOString();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
