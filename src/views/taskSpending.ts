import type { Task, UsageTotals } from '../engine/model/schema';
import { addTo, emptyTotals, tokensText, usd } from '../engine/usage/pricing';

/**
 * What a task has spent, as the Tasks tree's tooltip says it: the sum over every recorded attempt of
 * every stage (the same figures as `pipeline task show`), then each stage's share in the order the
 * task went through them. No `vscode` here: plain Node tests read it.
 */
export interface TaskSpending {
  /** "$0.0497 over 3 attempts (12k in · 480 out · 2.4k cache)" */
  total: string;
  /** "test $0.0200 · implementation $0.0297", or null with a single stage (the total says it). */
  byStage: string | null;
  /** Model uses whose tokens had no price: left out of the sums, and said so. */
  unpriced: string | null;
}

export function taskSpending(t: Pick<Task, 'usage'>): TaskSpending | null {
  const attempts = [...(t.usage?.attempts ?? [])].sort((a, b) => a.attempt - b.attempt);
  if (attempts.length === 0) return null;
  const total = emptyTotals();
  const stages = new Map<string, UsageTotals>();
  let unpriced = 0;
  for (const a of attempts) {
    let stage = stages.get(a.stage);
    if (!stage) stages.set(a.stage, (stage = emptyTotals()));
    for (const m of a.models) {
      addTo(total, m);
      addTo(stage, m);
      if (m.costUsd === null) unpriced++;
    }
  }
  const n = attempts.length;
  return {
    total: `${usd(total.costUsd)} over ${n} attempt${n === 1 ? '' : 's'} (${tokensText(total)})`,
    byStage: stages.size > 1 ? [...stages].map(([stage, u]) => `${stage} ${usd(u.costUsd)}`).join(' · ') : null,
    unpriced: unpriced ? `${unpriced} model use${unpriced === 1 ? '' : 's'} without a price not counted` : null,
  };
}
