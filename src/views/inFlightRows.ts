import type { PipelineConfig } from '../engine/model/configSchema';
import type { PipelineState } from '../engine/model/schema';
import type { AgentProgress } from '../engine/progress/progressBoard';
import { usd } from '../engine/usage/pricing';
import type { InFlightRow } from './webviewProtocol';

/**
 * The metrics panel's table of tasks in flight: working, merging, or queued past the first stage,
 * oldest first, each with what its agent does now and has cost so far. No `vscode` here: plain Node
 * tests read it.
 */
export function inFlightRows(p: {
  readonly state: Readonly<PipelineState>;
  readonly config: PipelineConfig;
  readonly progress: { get(agentId: string): AgentProgress | undefined };
}): InFlightRow[] {
  const first = p.config.stages[0]?.name;
  return Object.values(p.state.tasks)
    .filter((t) => t.status === 'working' || t.status === 'merging' || (t.status === 'queued' && t.stage !== first))
    .sort((a, b) => a.seq - b.seq)
    .map((t) => {
      const now = t.status === 'working' && t.assigned_to ? p.progress.get(t.assigned_to) : undefined;
      const progress = now?.taskId === t.id ? now : undefined;
      return {
        id: t.id,
        title: t.title,
        status: t.status,
        stage: t.stage,
        agent: t.assigned_to,
        since: Date.parse(t.history[t.history.length - 1]?.at ?? t.updated_at),
        step: progress ? (progress.step ?? 'starting') : null,
        cost: progress?.usage ? usd(progress.usage.costUsd) : null,
      };
    });
}
