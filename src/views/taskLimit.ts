import type { Task } from '../engine/model/schema';
import { LIMIT_NOTE } from '../engine/monitor/limitNote';

/**
 * Whether a queued task waits out a usage limit: its last attempt met its CLI's limit and was put
 * back without counting (limits.ts), and no agent has taken it since. The Tasks tree says so, or the
 * task would look ready while every agent that could take it is paused. No `vscode` here.
 */
export function waitsOutLimit(t: Pick<Task, 'status' | 'history'>): boolean {
  if (t.status !== 'queued') return false;
  const last = t.history[t.history.length - 1];
  return last?.event === 'requeue' && last.note?.startsWith(LIMIT_NOTE) === true;
}
