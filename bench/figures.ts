/**
 * How a benchmark hands its budgeted figures to `npm run bench` (scripts/runBench.mjs), which prints
 * them all in one table at the end: one JSON line per figure, appended to the file the runner names
 * in BENCH_FIGURES_FILE. Run on its own, a benchmark has no such file and this does nothing (its own
 * output already has the figures).
 */
import { appendFileSync } from 'node:fs';

export interface Figure {
  /** What is measured, as the budget table of shared/engineering.md words it. */
  figure: string;
  /** The measured value, with its unit (`267 ms`, `1/16.8`, `84 %`). */
  measured: string;
  /** The budget, with its unit (`≤ 150 ms`). */
  budget: string;
  /** Within the budget; null when it could not be judged (a figure missing). */
  met: boolean | null;
  /** Anything a reader needs to weigh the figure (quick variant, a profiled run, a peer missing). */
  note?: string;
}

export function reportFigure(f: Figure): void {
  const file = process.env.BENCH_FIGURES_FILE;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ bench: benchName(), ...f })}\n`);
}

function benchName(): string {
  const script = process.argv[1] ?? '';
  return /([^/\\]+)\.bench\.ts$/.exec(script)?.[1] ?? script;
}

/** `1 234 ms` or `12.3 s`, as the benchmarks print times. */
export function msText(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(ms >= 10 ? 1 : 2)} ms`;
}
