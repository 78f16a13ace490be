import type { StreamParserContext, TokenCounts } from '../../src/engine/agents/cli/agentActivity';
import type { AgentCliAdapter } from '../../src/engine/agents/cli/agentCli';
import { applyActivity } from '../../src/engine/monitor/agentStream';
import type { ModelPrice } from '../../src/engine/model/configSchema';
import type { AgentProgress } from '../../src/engine/progress/progressBoard';
import { priced } from '../../src/engine/usage/pricing';
import { UsageTally } from '../../src/engine/usage/usageTally';

/**
 * What the monitor makes of a run's output, through the same adapter parser and the same
 * progress code (applyActivity) it uses while following an agent's log: each step line in order,
 * the progress after the last line, and the usage the attempt's record would carry.
 */
export interface ParsedRun {
  /** The readable lines, one per step, in the order the run took them. */
  lines: string[];
  steps: string[];
  /** Every value the progress's running usage took (how the tokens so far grew). */
  usageSeen: NonNullable<AgentProgress['usage']>[];
  progress: AgentProgress;
  /** The attempt's usage record: one entry per model, priced. */
  models: ReturnType<typeof priced>[];
  /** Whether the CLI gave its final totals. */
  final: boolean;
}

export function parseRun(
  adapter: AgentCliAdapter,
  output: string,
  ctx: StreamParserContext,
  opts: {
    prices?: Record<string, ModelPrice>;
    threadBefore?: readonly (TokenCounts & { model: string })[];
    /** The stage the run plays (for its progress lines; default `test`). */
    stage?: string;
  } = {},
): ParsedRun {
  if (!adapter.streamParser) throw new Error(`the ${adapter.name} adapter has no stream parser`);
  const parse = adapter.streamParser(ctx);
  const prices = opts.prices ?? {};
  const tally = new UsageTally(opts.threadBefore ?? []);
  const progress: AgentProgress = {
    agentId: 'agent-1',
    taskId: 'TASK-001',
    stage: opts.stage ?? 'test',
    attempt: 1,
    startedAt: 0,
    step: null,
    stepAt: null,
    steps: 0,
    message: null,
    usage: null,
    session: null,
  };
  const lines: string[] = [];
  const steps: string[] = [];
  const usageSeen: ParsedRun['usageSeen'] = [];
  // Lines as the monitor cuts them from the log; a line that does not parse is skipped, as there.
  for (const line of output.split('\n')) {
    if (!line.trim()) continue;
    for (const act of parse(line)) {
      const shown = applyActivity(progress, tally, act, prices, 1);
      if (shown) lines.push(shown);
      if (act.kind === 'step') steps.push(act.text);
      if (act.kind === 'usage' && progress.usage) usageSeen.push({ ...progress.usage });
    }
  }
  return {
    lines,
    steps,
    usageSeen,
    progress,
    models: tally.total().map((m) => priced(m, prices)),
    final: tally.final,
  };
}
