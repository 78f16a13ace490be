import { Counter, Gauge, type Registry } from 'prom-client';
import { PRESETS } from '../agents/commandTemplate';
import type { PipelineState } from '../model/schema';

/**
 * What agents spend and whether they are parked, as Prometheus metrics:
 *
 * - `pipeline_agent_tokens_total{agent,stage,model,kind}`: tokens of every recorded attempt, `kind`
 *   one of input, output, cache_read, cache_write;
 * - `pipeline_agent_cost_usd_total{agent,stage,model}`: their cost in US dollars (the CLI's figure,
 *   else the config's prices; tokens with no price add nothing);
 * - `pipeline_agents_paused{cli}`: agents paused by a usage or rate limit of their CLI;
 * - `pipeline_agent_paused_until_seconds{agent,cli}`: when each paused agent resumes (Unix time).
 *
 * They are read from the state when scraped, the same attempt records (`attempt.usage` in the
 * journal) and agent records that `pipeline status --json` and `pipeline task show` read. So the
 * three always agree, a window that follows counts what the leader recorded, and a restart of the
 * leader starts from the recorded totals, not from zero. One pass over the tasks' attempts per
 * scrape costs far less than the scrape itself.
 */

/** What the usage metrics read of a pipeline. */
export interface UsageMetricsSource {
  readonly state: Readonly<PipelineState>;
}

/** The CLI label of an agent: its preset's name, or `custom` for a command template. */
export function cliOf(command: string): string {
  return Object.hasOwn(PRESETS, command) ? command : 'custom';
}

const KINDS = [
  ['input', 'input'],
  ['output', 'output'],
  ['cache_read', 'cacheRead'],
  ['cache_write', 'cacheWrite'],
] as const;

interface Spent {
  agent: string;
  stage: string;
  model: string;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  costUsd: number;
}

/** Tokens and cost of every recorded attempt, by agent, stage and model. */
export function spentByAgentStageModel(state: Readonly<PipelineState>): Spent[] {
  const by = new Map<string, Spent>();
  for (const t of Object.values(state.tasks)) {
    for (const a of t.usage?.attempts ?? []) {
      for (const m of a.models) {
        const key = `${a.agent}\u0000${a.stage}\u0000${m.model}`;
        let s = by.get(key);
        if (!s) {
          s = {
            agent: a.agent,
            stage: a.stage,
            model: m.model,
            input: 0,
            output: 0,
            cacheRead: 0,
            cacheWrite: 0,
            costUsd: 0,
          };
          by.set(key, s);
        }
        s.input += m.input;
        s.output += m.output;
        s.cacheRead += m.cacheRead;
        s.cacheWrite += m.cacheWrite;
        s.costUsd += m.costUsd ?? 0;
      }
    }
  }
  return [...by.values()];
}

export function registerUsageMetrics(registry: Registry, source: UsageMetricsSource): void {
  const registers = [registry];
  const tokens: Counter<'agent' | 'stage' | 'model' | 'kind'> = new Counter({
    name: 'pipeline_agent_tokens_total',
    help: "Tokens agents' attempts spent, by agent, stage, model and kind (input, output, cache_read, cache_write).",
    labelNames: ['agent', 'stage', 'model', 'kind'],
    registers,
    collect: () => {
      tokens.reset();
      for (const s of spentByAgentStageModel(source.state)) {
        const labels = { agent: s.agent, stage: s.stage, model: s.model };
        for (const [kind, field] of KINDS) tokens.inc({ ...labels, kind }, s[field]);
      }
    },
  });
  const cost: Counter<'agent' | 'stage' | 'model'> = new Counter({
    name: 'pipeline_agent_cost_usd_total',
    help: "What agents' attempts cost in US dollars (the CLI's figure, else the config's prices), by agent, stage and model.",
    labelNames: ['agent', 'stage', 'model'],
    registers,
    collect: () => {
      cost.reset();
      for (const s of spentByAgentStageModel(source.state))
        cost.inc({ agent: s.agent, stage: s.stage, model: s.model }, s.costUsd);
    },
  });
  const paused: Gauge<'cli'> = new Gauge({
    name: 'pipeline_agents_paused',
    help: 'Agents paused by a usage or rate limit of their CLI, by CLI (a preset name, or custom).',
    labelNames: ['cli'],
    registers,
    collect: () => {
      paused.reset();
      // Every CLI an agent uses shows, at 0 when none of its agents is paused, so alerts see the end.
      const agents = Object.values(source.state.agents);
      for (const a of agents) paused.set({ cli: cliOf(a.command) }, 0);
      for (const a of agents) if (a.status === 'paused') paused.inc({ cli: cliOf(a.command) });
    },
  });
  const until: Gauge<'agent' | 'cli'> = new Gauge({
    name: 'pipeline_agent_paused_until_seconds',
    help: 'When a paused agent resumes (Unix time in seconds), by agent and CLI.',
    labelNames: ['agent', 'cli'],
    registers,
    collect: () => {
      until.reset();
      for (const a of Object.values(source.state.agents)) {
        const at = a.status === 'paused' && a.paused_until ? Date.parse(a.paused_until) : NaN;
        if (Number.isFinite(at)) until.set({ agent: a.id, cli: cliOf(a.command) }, at / 1000);
      }
    },
  });
}
