// src/engine/usage/ — tokens and cost: what one run spent (usageTally.ts), what it cost (pricing.ts), and
// the sums over the state (this file). Main file: this one. It imports the model and the agent CLIs'
// activity types.
import type { PipelineState, UsageTotals } from '../model/schema';
import { addTo, emptyTotals } from './pricing';

/**
 * Tokens and cost added up over the tasks' recorded attempts, by stage, agent and model, for
 * `pipeline status --json`, the metrics panel and Prometheus. Derived from the state, never stored.
 */
export interface UsageSummary {
  total: UsageTotals;
  byStage: Record<string, UsageTotals>;
  byAgent: Record<string, UsageTotals>;
  byModel: Record<string, UsageTotals>;
  /** Per agent and model, for Prometheus (`agent\u0000model`). */
  byAgentModel: Record<string, UsageTotals & { agent: string; model: string }>;
  /** Merged tasks and what they cost together (every attempt and stage), for the cost per merged task. */
  merged: { tasks: number; costUsd: number };
  /** Attempts whose tokens had no price (no cost from the CLI, no entry in `prices`). */
  unpriced: number;
}

export function usageSummary(state: Readonly<PipelineState>): UsageSummary {
  const s: UsageSummary = {
    total: emptyTotals(),
    byStage: {},
    byAgent: {},
    byModel: {},
    byAgentModel: {},
    merged: { tasks: 0, costUsd: 0 },
    unpriced: 0,
  };
  for (const t of Object.values(state.tasks)) {
    if (t.status === 'done') {
      s.merged.tasks++;
      s.merged.costUsd += t.usage?.costUsd ?? 0;
    }
    for (const a of t.usage?.attempts ?? []) {
      for (const m of a.models) {
        addTo(s.total, m);
        addTo((s.byStage[a.stage] ??= emptyTotals()), m);
        addTo((s.byAgent[a.agent] ??= emptyTotals()), m);
        addTo((s.byModel[m.model] ??= emptyTotals()), m);
        addTo(
          (s.byAgentModel[`${a.agent}\u0000${m.model}`] ??= { ...emptyTotals(), agent: a.agent, model: m.model }),
          m,
        );
        if (m.costUsd === null) s.unpriced++;
      }
    }
  }
  return s;
}
