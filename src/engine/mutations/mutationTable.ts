// src/engine/mutations/ — every change a person (or a script) can ask of a pipeline: tasks, reviews,
// agents and modes, one file each, gathered in one table here. Main file: this one. It imports the
// model, the scheduler's index and strategies, ../errors, ../home (types) and the helpers of ../agents
// and ../monitor that say what a marker means; the facade (../pipeline.ts) and the inbox use it.
import type { z } from 'zod';
import { PipelineError } from '../errors';
import { addAgent, removeAgent } from './agentMutations';
import { setOrchestrationMode, setRolloutMode } from './modeMutations';
import type { MutationHost } from './mutationHost';
import { reviewTask } from './reviewMutation';
import { addTasks, blockTask, cancelTask, editTask, removeTask, retryTask, unblockTask } from './taskMutations';

/**
 * Every change a person (or a script) can ask of a pipeline, as one table: the arguments' schema
 * and the change, run by the leader. The facade's methods and the inbox (requests forwarded from
 * other processes) both go through this table, so a request from another process is validated and
 * dispatched by name, never by reflection, and cannot call anything that is not listed here.
 */
export const MUTATIONS = {
  addTasks,
  addAgent,
  removeAgent,
  editTask,
  removeTask,
  blockTask,
  unblockTask,
  retryTask,
  cancelTask,
  reviewTask,
  setOrchestrationMode,
  setRolloutMode,
};

export type MutationName = keyof typeof MUTATIONS;
export type MutationArgs<K extends MutationName> = z.infer<(typeof MUTATIONS)[K]['args']>;
export type MutationResult<K extends MutationName> = Awaited<ReturnType<(typeof MUTATIONS)[K]['run']>>;

/** Runs a mutation with arguments typed for it (this process's own calls). */
export function runMutation<K extends MutationName>(
  h: MutationHost,
  name: K,
  args: MutationArgs<K>,
): Promise<MutationResult<K>> {
  // TypeScript cannot correlate a name with its entry's own types through the table's union.
  const run = MUTATIONS[name].run as unknown as (h: MutationHost, a: MutationArgs<K>) => Promise<MutationResult<K>>;
  return run(h, args);
}

/** Runs a mutation by name with arguments from another process: validated, or a usage error. */
export async function dispatchMutation(h: MutationHost, name: string, args: unknown[]): Promise<unknown> {
  if (!Object.hasOwn(MUTATIONS, name)) throw new PipelineError('usage', `Unknown request ${name}.`);
  const m = MUTATIONS[name as MutationName];
  const parsed = m.args.safeParse(args);
  if (!parsed.success) throw new PipelineError('usage', `Malformed arguments for ${name}: ${parsed.error.message}`);
  return (m.run as (h: MutationHost, a: unknown) => Promise<unknown>)(h, parsed.data);
}
