/**
 * What starting a process and running git cost on this machine, to read the hand-off figures
 * against: a hand-off is a dozen git processes and an agent's start, so a machine (or a day of one
 * virtual machine) whose process starts and file-system calls are slow moves every figure with it,
 * however the engine does. Measured from `sh` (whose fork is cheap, so the figure is the process's
 * own cost, not its asker's size): `/bin/true`, `git --version`, and `git status` in a worktree of
 * the benchmark's repository, each `RUNS` times in a row, wall time and the CPU of the processes
 * (the children's user and system time from /proc/self/stat, in 10 ms ticks over all runs).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const RUNS = 20;

export interface ProcessCost {
  readonly what: string;
  /** Wall time per run, ms. */
  readonly wallMs: number;
  /** CPU per run (user + system of the processes), ms; null where /proc cannot be read. */
  readonly cpuMs: number | null;
}

/** Reaped children's user + system CPU of this process, ms (/proc/self/stat fields 16 and 17). */
function childrenCpuMs(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return null;
  }
}

function measure(what: string, command: string, cwd: string): ProcessCost {
  const loop = `i=0; while [ $i -lt ${RUNS} ]; do ${command} >/dev/null 2>&1; i=$((i+1)); done`;
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  spawnSync('sh', ['-c', loop], { cwd, stdio: 'ignore' });
  const wallMs = (performance.now() - t0) / RUNS;
  const cpu1 = childrenCpuMs();
  return { what, wallMs, cpuMs: cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / RUNS };
}

/** The three costs, with `git status` run in `worktree` (a checkout of the benchmark's repository, `where`). */
export function processCosts(worktree: string, where: string): ProcessCost[] {
  return [
    measure('a process (/bin/true)', '/bin/true', worktree),
    measure('git --version', 'git --version', worktree),
    measure(`git status in ${where}`, 'git status --porcelain --untracked-files=all', worktree),
  ];
}

export function processCostText(costs: readonly ProcessCost[]): string {
  const parts = costs.map(
    (c) => `${c.what} ${c.wallMs.toFixed(1)} ms${c.cpuMs === null ? '' : ` (CPU ${c.cpuMs.toFixed(1)} ms)`}`,
  );
  return `${parts.join('; ')} (each started from sh, mean of ${RUNS})`;
}
