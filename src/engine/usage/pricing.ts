import type { ModelUsage } from '../agents/cli/agentActivity';
import type { ModelPrice } from '../model/configSchema';
import type { ModelUsageRecord, UsageTotals } from '../model/schema';

/**
 * What tokens cost: the CLI's own figure where it gives one (Claude Code's `costUSD`), else the
 * config's `prices` (US dollars per million tokens), which a person keeps up to date. A model with
 * no price has no cost (null), rather than a guess.
 */

/** The price for a model: its own entry, else the longest `prefix*` entry that matches, else `*`. */
export function priceFor(model: string, prices: Readonly<Record<string, ModelPrice>>): ModelPrice | undefined {
  const own = prices[model];
  if (own) return own;
  let best: { len: number; price: ModelPrice } | undefined;
  for (const [key, price] of Object.entries(prices)) {
    if (!key.endsWith('*')) continue;
    const prefix = key.slice(0, -1);
    if (model.startsWith(prefix) && (!best || prefix.length > best.len)) best = { len: prefix.length, price };
  }
  return best?.price;
}

export function costFromPrice(u: ModelUsage, p: ModelPrice): number {
  const perToken = (perMTok: number) => perMTok / 1_000_000;
  return (
    u.input * perToken(p.inputPerMTok) +
    u.output * perToken(p.outputPerMTok) +
    u.cacheRead * perToken(p.cacheReadPerMTok ?? p.inputPerMTok) +
    u.cacheWrite * perToken(p.cacheWritePerMTok ?? p.inputPerMTok)
  );
}

/** One model's usage as the journal records it, with its cost and where the cost came from. */
export function priced(u: ModelUsage, prices: Readonly<Record<string, ModelPrice>>): ModelUsageRecord {
  const counts = {
    model: u.model,
    input: Math.round(u.input),
    output: Math.round(u.output),
    cacheRead: Math.round(u.cacheRead),
    cacheWrite: Math.round(u.cacheWrite),
  };
  if (u.costUsd !== undefined) return { ...counts, costUsd: u.costUsd, costSource: 'cli' };
  const price = priceFor(u.model, prices);
  return price
    ? { ...counts, costUsd: costFromPrice(u, price), costSource: 'prices' }
    : { ...counts, costUsd: null, costSource: null };
}

export function emptyTotals(): UsageTotals {
  return { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: 0 };
}

export function addTo(
  t: UsageTotals,
  m: { input: number; output: number; cacheRead: number; cacheWrite: number; costUsd: number | null },
): void {
  t.input += m.input;
  t.output += m.output;
  t.cacheRead += m.cacheRead;
  t.cacheWrite += m.cacheWrite;
  t.costUsd += m.costUsd ?? 0;
}

/** "$0.0497" for small sums, "$12.35" for larger ones. */
export function usd(n: number): string {
  return n >= 1 ? `$${n.toFixed(2)}` : `$${n.toFixed(4)}`;
}

/** "12.3k in · 480 out · 2.4k cache" */
export function tokensText(t: { input: number; output: number; cacheRead: number; cacheWrite: number }): string {
  const k = (n: number) =>
    n >= 10_000 ? `${(n / 1000).toFixed(0)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
  const cache = t.cacheRead + t.cacheWrite;
  return `${k(t.input)} in · ${k(t.output)} out${cache ? ` · ${k(cache)} cache` : ''}`;
}
