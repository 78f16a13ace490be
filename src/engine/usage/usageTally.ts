import type { AgentActivity, ModelUsage, TokenCounts } from '../agents/cli/agentActivity';

/**
 * Adds up what one run's stream says it spent, whatever way its CLI counts (see AgentActivity's
 * `usage`): the run's own totals when the CLI gives them (they win), else a thread's totals less
 * what the thread held before this run, else the sum of the requests seen.
 */
export class UsageTally {
  private readonly requests = new Map<string, ModelUsage[]>();
  private unkeyed = 0;
  private run: ModelUsage[] | null = null;
  private thread: ModelUsage[] | null = null;

  /** `threadBefore`: a resumed thread's totals when its previous run ended. */
  constructor(private readonly threadBefore: readonly (TokenCounts & { model: string })[] = []) {}

  add(a: Extract<AgentActivity, { kind: 'usage' }>): void {
    if (a.scope === 'run') this.run = a.usage;
    else if (a.scope === 'thread') this.thread = a.usage;
    else this.requests.set(a.key ?? `#${this.unkeyed++}`, a.usage);
  }

  /** Whether the CLI gave its final totals (a run's or a thread's). */
  get final(): boolean {
    return this.run !== null || this.thread !== null;
  }

  /** The thread's totals as last reported, for the next run on the same thread. */
  threadTotals(): ModelUsage[] | null {
    return this.thread;
  }

  /** This run's tokens (and the CLI's cost, when it gave one), one entry per model. */
  total(): ModelUsage[] {
    if (this.run) return merge(this.run);
    if (this.thread)
      return merge(this.thread).map((u) =>
        minus(
          u,
          this.threadBefore.find((b) => b.model === u.model),
        ),
      );
    return merge([...this.requests.values()].flat());
  }
}

function minus(u: ModelUsage, before: TokenCounts | undefined): ModelUsage {
  if (!before) return u;
  // A thread's counts only grow; a smaller one means another thread, counted whole.
  if (u.input + u.cacheRead < before.input + before.cacheRead) return u;
  return {
    ...u,
    input: Math.max(0, u.input - before.input),
    output: Math.max(0, u.output - before.output),
    cacheRead: Math.max(0, u.cacheRead - before.cacheRead),
    cacheWrite: Math.max(0, u.cacheWrite - before.cacheWrite),
  };
}

/** One entry per model, counts and costs added. */
export function merge(list: readonly ModelUsage[]): ModelUsage[] {
  const by = new Map<string, ModelUsage>();
  for (const u of list) {
    const m = by.get(u.model);
    if (!m) {
      by.set(u.model, { ...u });
      continue;
    }
    m.input += u.input;
    m.output += u.output;
    m.cacheRead += u.cacheRead;
    m.cacheWrite += u.cacheWrite;
    if (u.costUsd !== undefined) m.costUsd = (m.costUsd ?? 0) + u.costUsd;
  }
  return [...by.values()];
}
