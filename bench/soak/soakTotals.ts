import type { TrialResult } from './soakTrial';

/** The battery's figures over its trials, and the lines that print them. */

export interface SoakTotals {
  seed: number;
  trials: number;
  acknowledged: number;
  recovered: number;
  lost: number;
  duplicated: number;
  unreachable: number;
  findings: number;
  faults: Record<string, number>;
  minutes: number;
  /** Seeds of the trials that lost, duplicated, left a commit unreachable or found something else. */
  failedSeeds: number[];
}

export function failed(t: TrialResult): boolean {
  return t.lost.length + t.duplicated.length + t.unreachable.length + t.findings.length > 0;
}

export function totals(seed: number, trials: TrialResult[], ms: number): SoakTotals {
  const faults: Record<string, number> = {};
  for (const t of trials) for (const [k, n] of Object.entries(t.faults)) faults[k] = (faults[k] ?? 0) + n;
  const sum = (f: (t: TrialResult) => number) => trials.reduce((n, t) => n + f(t), 0);
  return {
    seed,
    trials: trials.length,
    acknowledged: sum((t) => t.acknowledged),
    recovered: sum((t) => t.recovered),
    lost: sum((t) => t.lost.length),
    duplicated: sum((t) => t.duplicated.length),
    unreachable: sum((t) => t.unreachable.length),
    findings: sum((t) => t.findings.length),
    faults,
    minutes: Math.round(ms / 600) / 100,
    failedSeeds: trials.filter(failed).map((t) => t.seed),
  };
}

export function trialLine(t: TrialResult): string {
  const faults = Object.entries(t.faults)
    .map(([k, n]) => `${k}×${n}`)
    .join(' ');
  return `trial seed ${t.seed}: acknowledged ${t.acknowledged}, recovered ${t.recovered}, lost ${t.lost.length}, duplicated ${t.duplicated.length}, unreachable ${t.unreachable.length}, findings ${t.findings.length} (${(t.ms / 1000).toFixed(1)} s; ${faults || 'no fault struck'})`;
}

export function summaryLine(s: SoakTotals): string {
  return `soak seed ${s.seed}: trials ${s.trials}, acknowledged ${s.acknowledged}, recovered ${s.recovered}, lost ${s.lost}, duplicated ${s.duplicated}, unreachable ${s.unreachable}, findings ${s.findings} in ${s.minutes} min; faults ${Object.entries(
    s.faults,
  )
    .map(([k, n]) => `${k}×${n}`)
    .join(' ')}`;
}
