import { readFileSync } from 'node:fs';

/**
 * The whole machine's CPU time, from /proc/stat: what a benchmark run cost in all its processes (the
 * engine, its git commands, the agents, the operating system), not only in the engine's. With the
 * run's wall time it says whether the cores were saturated, in which case latency follows from the
 * CPU each hand-off needs and not from anything waiting. Linux only; undefined elsewhere.
 */

export interface MachineCpu {
  /** CPU seconds spent busy (everything but idle and iowait), summed over all cores. */
  readonly busySeconds: number;
  /** CPU seconds spent idle or waiting for I/O, summed over all cores. */
  readonly idleSeconds: number;
}

/** /proc/stat counts in USER_HZ ticks, 100 a second on Linux. */
const TICKS_PER_SECOND = 100;

export function machineCpu(): MachineCpu | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user).
  const fields = /^cpu\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number);
  if (!fields || fields.length < 5 || fields.some((x) => !Number.isFinite(x))) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields;
  return {
    busySeconds: (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND,
    idleSeconds: (idle + iowait) / TICKS_PER_SECOND,
  };
}

/** What the machine did between two readings. */
export function machineCpuSince(before: MachineCpu | undefined): MachineCpu | undefined {
  const now = machineCpu();
  if (!before || !now) return undefined;
  return { busySeconds: now.busySeconds - before.busySeconds, idleSeconds: now.idleSeconds - before.idleSeconds };
}
