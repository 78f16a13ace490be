import { z } from 'zod';
import type { MetricsSnapshot } from '../engine/observability/metricsSnapshot';
import type { Reply } from '../engine/rpc/requestReply';

/**
 * The one message protocol between the metrics panel's host and its page. The page starts with
 * `ready`; the host answers with a full `snapshot` and sends a new one whenever a figure changes
 * (throttled). Requests carry an id that the reply repeats, in the shape every request/reply of the
 * engine has (engine/rpc/requestReply.ts). Messages from the page are untrusted input and are
 * validated here, on the host side.
 */
export interface InFlightRow {
  id: string;
  title: string;
  status: string;
  stage: string;
  agent: string | null;
  /** When the task entered its current status (ms since the epoch). */
  since: number;
  /** What its agent does now (the current step), when it works and the leader said. */
  step: string | null;
  /** What its agent's attempt has cost so far ("$0.0123"), when known. */
  cost: string | null;
}

/** The cost figures as the page shows them, written on the host side (`costView.ts`). */
export interface CostView {
  /** Every recorded attempt's cost: "$1.88". */
  total: string;
  /** "12k in · 480 out · 2.4k cache" */
  tokens: string;
  /** The merged tasks' cost divided among them, or "—" before the first merge. */
  perMergedTask: string;
  /** Each configured stage's cost, in stage order (then any other stage that spent). */
  byStage: { stage: string; cost: string; tokens: string }[];
  /** "2 model uses had no price" when some did, else null. */
  note: string | null;
}

export type HostToPage =
  | { type: 'snapshot'; snapshot: MetricsSnapshot; inFlight: InFlightRow[]; cost: CostView }
  /** The answer to a request, with the result or the error as rpc/requestReply.ts carries them. */
  | { type: 'reply'; reply: Reply<number> };

export const pageToHostSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({
    type: z.literal('openTask'),
    requestId: z.number().int(),
    taskId: z.string().regex(/^[A-Z][A-Z0-9]{0,15}-[0-9]{1,9}(\.[0-9]{1,9}){0,4}$/),
  }),
  z.strictObject({ type: z.literal('drawn'), charts: z.number().int().min(0), rows: z.number().int().min(0) }),
]);
export type PageToHost = z.infer<typeof pageToHostSchema>;
