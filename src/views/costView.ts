import type { MetricsSnapshot } from '../engine/observability/metricsSnapshot';
import { tokensText, usd } from '../engine/usage/pricing';
import type { CostView } from './webviewProtocol';

/**
 * The metrics panel's cost figures, written on the host side so the page only places them: the
 * total of every recorded attempt, the cost per merged task and the cost of each stage. No
 * `vscode` here: plain Node tests read it.
 */
export function costView(s: Pick<MetricsSnapshot, 'usage' | 'stages'>): CostView {
  const u = s.usage;
  const stages = [
    ...s.stages,
    ...Object.keys(u.byStage)
      .filter((st) => !s.stages.includes(st))
      .sort(),
  ];
  return {
    total: usd(u.total.costUsd),
    tokens: tokensText(u.total),
    perMergedTask: u.merged.tasks ? usd(u.merged.costUsd / u.merged.tasks) : '—',
    byStage: stages.flatMap((stage) => {
      const t = u.byStage[stage];
      return t ? [{ stage, cost: usd(t.costUsd), tokens: tokensText(t) }] : [];
    }),
    note: u.unpriced ? `${u.unpriced} model use${u.unpriced === 1 ? '' : 's'} had no price (not counted)` : null,
  };
}
