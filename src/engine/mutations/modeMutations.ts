import { z } from 'zod';
import { PipelineError } from '../errors';
import { rolloutModeSchema, type Agent, type PipelineState, type RolloutMode } from '../model/schema';
import type { StateBatch } from '../model/stateBatch';
import { getStrategy } from '../scheduler/strategyRegistry';
import { mutation, type MutationHost } from './mutationHost';

/**
 * Switching the orchestration mode (now, or once in-flight work drains) and the rollout mode. Work in
 * progress holds a switch back unless it is forced, which requeues that work.
 */

export interface SwitchOptions {
  drain?: boolean;
  force?: boolean;
}

export interface SwitchResult {
  /**
   * `switched`: done now; `pending`: applies once in-flight work drains; `unchanged`: already in that
   * mode; `cancelled`: already in that mode, and the switch that was pending is called off.
   */
  outcome: 'switched' | 'pending' | 'unchanged' | 'cancelled';
  /** With `cancelled`: the mode the pending switch would have gone to. */
  cancelled?: string;
  mode: string;
  requeued: string[];
}

const switchOptionsSchema = z.strictObject({ drain: z.boolean().optional(), force: z.boolean().optional() });

export const setOrchestrationMode = mutation(
  z.tuple([z.string(), switchOptionsSchema]),
  async (h, [mode, opts]): Promise<SwitchResult> => {
    getStrategy(mode);
    const state = h.state;
    if (state.orchestration_mode === mode && !state.pending_switch) return { outcome: 'unchanged', mode, requeued: [] };
    if (state.orchestration_mode === mode && state.pending_switch) {
      // Asking for the mode it is in while a drained switch waits: the way to call that switch off.
      const cancelled = state.pending_switch;
      const batch = h.newBatch();
      batch.record({ type: 'mode.pending_switch', mode: null });
      await h.commit(batch);
      // The mode stays, but what follows it (metrics, a monitor holding new work back) must know.
      h.events.emit('mode:orchestration', { from: mode, to: mode });
      return { outcome: 'cancelled', mode, cancelled, requeued: [] };
    }
    const busy = busyAgents(state);
    const batch = h.newBatch();
    if (busy.length > 0 && !opts.force) {
      if (!opts.drain) {
        throw new PipelineError(
          'busy',
          `Cannot switch to ${mode} mode: agents have work in progress: ${describeBusy(busy)}.`,
          {
            fix: 'Pass --drain to switch once their current stage work is finished, or --force to requeue their work now.',
          },
        );
      }
      batch.record({ type: 'mode.pending_switch', mode });
      await h.commit(batch);
      h.events.emit('mode:switchPending', { to: mode, busy: busy.map((a) => a.id) });
      return { outcome: 'pending', mode, requeued: [] };
    }
    const requeued = requeueAll(batch, busy, `forced switch to ${mode} mode`);
    const from = state.orchestration_mode;
    switchRecords(h, batch, mode);
    await h.commit(batch);
    h.events.emit('mode:orchestration', { from, to: mode });
    return { outcome: 'switched', mode, requeued };
  },
);

/**
 * Shadow mode changes no git state, so a switch to it while agents work is refused (their work
 * would otherwise be merged under shadow), unless `force` requeues that work now.
 */
export const setRolloutMode = mutation(
  z.tuple([z.string(), z.strictObject({ force: z.boolean().optional() })]),
  async (h, [mode, opts]): Promise<{ from: RolloutMode; to: RolloutMode; requeued: string[] }> => {
    const m = rolloutModeSchema.safeParse(mode);
    if (!m.success)
      throw new PipelineError('usage', `Unknown rollout mode ${JSON.stringify(mode)}.`, {
        fix: 'Use shadow, pilot or production.',
      });
    const from = h.state.mode;
    if (from === m.data) return { from, to: m.data, requeued: [] };
    const batch = h.newBatch();
    let requeued: string[] = [];
    if (m.data === 'shadow') {
      const busy = busyAgents(h.state);
      if (busy.length > 0 && !opts.force) {
        throw new PipelineError(
          'busy',
          `Cannot switch to shadow mode: agents have work in progress: ${describeBusy(busy)}.`,
          { fix: 'Wait for their current stage to finish, or pass --force to requeue their work now.' },
        );
      }
      requeued = requeueAll(batch, busy, 'forced switch to shadow mode');
    }
    batch.record({ type: 'mode.rollout', mode: m.data });
    await h.commit(batch);
    h.events.emit('mode:rollout', { from, to: m.data });
    return { from, to: m.data, requeued };
  },
);

/** Applies a drained switch once no agent works any more; the monitor asks on every tick. */
export async function applyPendingSwitch(h: MutationHost): Promise<boolean> {
  const to = h.state.pending_switch;
  if (!to || busyAgents(h.state).length > 0) return false;
  const from = h.state.orchestration_mode;
  const batch = h.newBatch();
  switchRecords(h, batch, to);
  await h.commit(batch);
  h.events.emit('mode:orchestration', { from, to });
  return true;
}

export function busyAgents(state: Readonly<PipelineState>): Agent[] {
  return Object.values(state.agents).filter((a) => a.status === 'working' && a.current_task);
}

function describeBusy(busy: Agent[]): string {
  return busy.map((a) => `${a.id} (${a.current_task})`).join(', ');
}

function requeueAll(batch: StateBatch, busy: Agent[], reason: string): string[] {
  for (const a of busy) {
    batch.transition(a.current_task!, { type: 'requeue', reason });
    batch.agentEvent(a.id, { type: 'release' });
  }
  return busy.map((a) => a.current_task!);
}

function switchRecords(h: MutationHost, batch: StateBatch, mode: string): void {
  batch.record({ type: 'mode.orchestration', mode });
  // Sequential mode picks its current task afresh, preferring work already in flight.
  if (h.state.current_task !== null) batch.record({ type: 'sequential.current', id: null });
}
