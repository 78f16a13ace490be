import type { ModelUsageRecord, Task } from '../engine/model/schema';
import { usd } from '../engine/usage/pricing';

/**
 * What a task spent, as `pipeline task show` prints it: one line per attempt (its stage, agent,
 * model, tokens and cost), one more per model when an attempt used several, then the task's total.
 * Tokens are exact here, not rounded to thousands: this is where a person checks a bill.
 */
export function taskUsageLines(t: Task): string[] {
  const u = t.usage;
  if (!u || u.attempts.length === 0) return [];
  const lines = ['  spending:'];
  let unpriced = 0;
  const attempts = [...u.attempts].sort((a, b) => a.attempt - b.attempt);
  const width = Math.max(...attempts.map((a) => `${a.stage} by ${a.agent}`.length));
  for (const a of attempts) {
    const head = `    attempt ${String(a.attempt).padEnd(3)} ${`${a.stage} by ${a.agent}`.padEnd(width)}`;
    unpriced += a.models.filter((m) => m.costUsd === null).length;
    if (a.models.length === 1) {
      const m = a.models[0]!;
      lines.push(`${head}  ${m.model}: ${tokens(m)}, ${cost(m.costUsd)}`);
      continue;
    }
    const sum = a.models.reduce(
      (s, m) => ({
        input: s.input + m.input,
        output: s.output + m.output,
        cacheRead: s.cacheRead + m.cacheRead,
        cacheWrite: s.cacheWrite + m.cacheWrite,
        costUsd: a.models.every((x) => x.costUsd === null) ? null : (s.costUsd ?? 0) + (m.costUsd ?? 0),
      }),
      { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, costUsd: null as number | null },
    );
    lines.push(`${head}  ${a.models.length} models: ${tokens(sum)}, ${cost(sum.costUsd)}`);
    for (const m of a.models) lines.push(`      ${m.model}: ${tokens(m)}, ${cost(m.costUsd)}`);
  }
  const note = unpriced ? ` (${unpriced} model use${unpriced === 1 ? '' : 's'} without a price not counted)` : '';
  lines.push(`    total: ${tokens(u)}, ${usd(u.costUsd)}${note}`);
  return lines;
}

function tokens(m: Pick<ModelUsageRecord, 'input' | 'output' | 'cacheRead' | 'cacheWrite'>): string {
  const parts = [`${m.input} in`, `${m.output} out`];
  if (m.cacheRead) parts.push(`${m.cacheRead} cache read`);
  if (m.cacheWrite) parts.push(`${m.cacheWrite} cache write`);
  return `${parts.join(' · ')} tokens`;
}

function cost(c: number | null): string {
  return c === null ? 'no price' : usd(c);
}
