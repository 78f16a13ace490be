import { z } from 'zod';
import type { PipelineConfig } from '../model/configSchema';
import type { TypedEvents } from '../model/events';
import type { PipelineEventMap } from '../model/pipelineEvents';
import type { PipelineState } from '../model/schema';
import type { StateBatch } from '../model/stateBatch';
import type { PipelineHome } from '../home/pipelineHome';
import type { SchedulerIndex } from '../scheduler/schedulerIndex';

/** What a mutation may use: the leader's state, its batches and its commit. */
export interface MutationHost {
  readonly state: Readonly<PipelineState>;
  readonly config: PipelineConfig;
  readonly home: PipelineHome;
  readonly scheduler: SchedulerIndex;
  readonly events: TypedEvents<PipelineEventMap>;
  newBatch(): StateBatch;
  commit(batch: StateBatch): Promise<void>;
}

/** One entry of the table (mutationTable.ts): the arguments' schema and the change. */
export interface Mutation<A extends z.ZodTuple, R> {
  readonly args: A;
  readonly run: (h: MutationHost, args: z.infer<A>) => Promise<R>;
}

export function mutation<A extends z.ZodTuple, R>(
  args: A,
  run: (h: MutationHost, args: z.infer<A>) => Promise<R>,
): Mutation<A, R> {
  return { args, run };
}

/** The envelope of an id argument; the mutation checks the id itself, with the message a person sees. */
export const idArg = z.string();
