// src/engine/rpc/ — request and reply across a boundary (a process, a page): one reply shape, one way
// to carry an error across, and the caller's book of requests waiting for their replies. Main file:
// this one. It imports only zod and ../errors; the git worker (git/remoteWorkspace.ts), the inbox
// (inbox.ts) and the metrics panel (views/metricsPanel.ts) use it.
import { z } from 'zod';
import { isPipelineError, PipelineError, type PipelineErrorCode } from '../errors';

/**
 * A reply repeats its request's id and carries either the result or the error. An error crosses as
 * its name, code, message and details, so a PipelineError arrives as one, with its place and fix;
 * any other error arrives as a plain Error with its message.
 */

/** An error as a reply carries it. */
export interface WireError {
  name: string;
  /** A PipelineError's code; absent for any other error. */
  code?: string;
  message: string;
  details?: Record<string, unknown>;
}

export type Reply<Id> = { id: Id; ok: true; result: unknown } | { id: Id; ok: false; error: WireError };

export const wireErrorSchema = z.strictObject({
  name: z.string(),
  code: z.string().optional(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** The schema of a reply whose id `id` validates: a reply is untrusted input like any message. */
export function replySchema<Id extends z.ZodType<string | number>>(id: Id) {
  return z.union([
    z.strictObject({ id, ok: z.literal(true), result: z.unknown() }),
    z.strictObject({ id, ok: z.literal(false), error: wireErrorSchema }),
  ]);
}

/** An error thrown on the answering side, as a reply carries it. */
export function toWireError(e: unknown): WireError {
  if (isPipelineError(e)) return { name: e.name, code: e.code, message: e.message, details: { ...e.details } };
  return { name: e instanceof Error ? e.name : 'Error', message: e instanceof Error ? e.message : String(e) };
}

/** The error a reply carried, to throw on the asking side: a PipelineError when it has a code. */
export function fromWireError(w: Pick<WireError, 'code' | 'message' | 'details'>): Error {
  return w.code ? new PipelineError(w.code as PipelineErrorCode, w.message, w.details ?? {}) : new Error(w.message);
}

/** Runs the handler for request `id` and turns what it returned or threw into the reply. */
export async function answer<Id>(id: Id, handler: () => Promise<unknown>): Promise<Reply<Id>> {
  try {
    return { id, ok: true, result: (await handler()) ?? null };
  } catch (e) {
    return { id, ok: false, error: toWireError(e) };
  }
}

/** The result a reply carried, or its error thrown. */
export function resultOf(reply: Reply<unknown>): unknown {
  if (reply.ok) return reply.result;
  throw fromWireError(reply.error);
}

/**
 * The requests a caller has sent over a message channel and waits on, by id. Ids start at 1 (a
 * channel may keep 0 for a greeting). Every request ends: with its reply, with `fail` when it could
 * not be sent, or with `failAll` when the channel closes.
 */
export class PendingReplies {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  /** A new request: its id, to send with it, and its result once the reply comes. */
  open(): { id: number; result: Promise<unknown> } {
    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    return { id, result };
  }

  /** Ends the request the reply answers; false when none waits under its id (a late or a foreign reply). */
  settle(reply: Reply<number>): boolean {
    const w = this.waiting.get(reply.id);
    if (!w) return false;
    this.waiting.delete(reply.id);
    try {
      w.resolve(resultOf(reply));
    } catch (e) {
      w.reject(e as Error);
    }
    return true;
  }

  /** Ends request `id` with an error: it could not be sent. */
  fail(id: number, err: Error): void {
    const w = this.waiting.get(id);
    this.waiting.delete(id);
    w?.reject(err);
  }

  /** Ends every request waiting with an error: the channel closed. */
  failAll(err: Error): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) w.reject(err);
  }
}
