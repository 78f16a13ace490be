import { awaitingReview } from '../engine/model/humanStage';
import type { Disposable } from '../engine/model/events';
import type { Task } from '../engine/model/schema';
import type { Pipeline } from '../engine/pipeline';
import { jsonText, printable } from './output';

/**
 * Prints the pipeline's progress as it happens: which agent took which task, each stage
 * transition, retries, checks, merges. With `json`, one event per line for scripts and log shippers.
 * Each line is one line: titles, reasons and messages from users and agents are shown with
 * `printable`, their control characters and line breaks visible, never obeyed by the terminal.
 */
export function printProgress(
  p: Pipeline,
  json: boolean,
  writeLine: (line: string) => void = (l) => process.stdout.write(l + '\n'),
): Disposable {
  const write = json ? writeLine : (l: string) => writeLine(printable(l));
  const t0 = Date.now();
  const stamp = () => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s]`;
  if (json) {
    return p.events.onAny((e) => {
      if (e.type === 'state:changed') return;
      // Progress by its steps only (its running counts would be a line per model request).
      if (e.type === 'agent:progress' && !(e.payload as { line?: string }).line) return;
      // A transition's own `event` (what happened to the task) would overwrite the event's name.
      const { event: transition, ...rest } = summarise(e.payload);
      write(
        jsonText({
          at: new Date().toISOString(),
          event: e.type,
          ...rest,
          ...(transition !== undefined ? { transition } : {}),
        }),
      );
    });
  }
  // A task queued at a human stage waits for a person: say so where it arrives there.
  const review = (t: Task) => (awaitingReview(t, p.config) ? ` (awaiting your review: pipeline review ${t.id})` : '');
  const subs: Disposable[] = [
    p.events.on('task:added', ({ task }) => write(`${stamp()} added ${task.id}: ${task.title}`)),
    p.events.on('task:transition', ({ before, after, event }) => {
      switch (event.type) {
        case 'ready':
          return write(`${stamp()} ${after.id} queued for ${after.stage} (prerequisites merged)${review(after)}`);
        case 'assign':
          // The attempt at this stage (what the retry limit counts), not the task's attempts overall.
          return write(`${stamp()} ${event.agent} took ${after.id} (${after.stage}, attempt ${after.failures + 1})`);
        case 'complete':
          return write(
            `${stamp()} ${after.id} ${before.stage} done${after.status === 'merging' ? ', merging' : ` → ${after.stage}`}${review(after)}`,
          );
        case 'changes_requested':
          return write(`${stamp()} ${after.id} changes requested: ${event.reason} → back to ${after.stage}`);
        case 'fail':
          return write(`${stamp()} ${after.id} attempt failed: ${event.reason}; retry after ${event.notBefore}`);
        case 'block':
          return write(`${stamp()} ${after.id} BLOCKED: ${event.reason}`);
        case 'merged':
          return write(`${stamp()} ${after.id} merged (${event.commit.slice(0, 10)})`);
        case 'conflict':
          return write(`${stamp()} ${after.id} merge conflict in ${event.files.join(', ')} → back to ${after.stage}`);
        case 'requeue':
          return write(`${stamp()} ${after.id} requeued: ${event.reason}`);
        case 'cancel':
          return write(`${stamp()} ${after.id} cancelled: ${event.reason}`);
        case 'unblock':
          return write(`${stamp()} ${after.id} unblocked`);
      }
    }),
    // The agents' steps as they happen, one readable line each (the raw stream is in their logs).
    p.events.on('agent:progress', (e) => {
      if (e.line) write(`${stamp()}   ${e.line}`);
    }),
    p.events.on('attempt:usage', ({ taskId, usage }) => {
      const cost = usage.models.reduce((s, m) => s + (m.costUsd ?? 0), 0);
      const known = usage.models.every((m) => m.costUsd !== null);
      const t = usage.models.reduce(
        (s, m) => ({
          input: s.input + m.input,
          output: s.output + m.output,
          cache: s.cache + m.cacheRead + m.cacheWrite,
        }),
        { input: 0, output: 0, cache: 0 },
      );
      write(
        `${stamp()} ${taskId} ${usage.stage} attempt ${usage.attempt} (${usage.agent}): ${t.input} in, ${t.output} out, ${t.cache} cache tokens${known ? `, $${cost.toFixed(4)}` : ', cost unknown (no price for the model)'}`,
      );
    }),
    p.events.on('agent:paused', (e) =>
      write(`${stamp()} ${e.agentIds.join(', ')} PAUSED until ${new Date(e.until).toLocaleTimeString()}: ${e.reason}`),
    ),
    p.events.on('check:finished', (e) =>
      write(
        `${stamp()} ${e.taskId} ${e.stage} check ${e.passed ? 'passed' : 'FAILED'} (${e.durationMs} ms; evidence ${e.evidence})`,
      ),
    ),
    p.events.on('pipeline:decision', (e) => {
      if (e.shadow) write(`${stamp()} shadow: ${e.text}`);
    }),
    p.events.on('mode:orchestration', (e) =>
      write(
        e.from === e.to
          ? `${stamp()} pending orchestration switch cancelled: staying in ${e.to} mode`
          : `${stamp()} orchestration mode ${e.from} → ${e.to}`,
      ),
    ),
    p.events.on('mode:rollout', (e) => write(`${stamp()} rollout mode ${e.from} → ${e.to}`)),
    p.events.on('monitor:warning', (e) => write(`${stamp()} warning: ${e.message}`)),
    p.events.on('monitor:info', (e) => write(`${stamp()} ${e.message}`)),
    p.events.on('leader:lost', (e) =>
      write(`${stamp()} lost the leadership${e.leader ? ` to ${e.leader.label} (pid ${e.leader.pid})` : ''}`),
    ),
  ];
  return { dispose: () => subs.forEach((s) => s.dispose()) };
}

/** Event payloads for JSON lines: tasks and agents by id and status, not whole objects. */
function summarise(payload: unknown): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(payload as Record<string, unknown>)) {
    if (v && typeof v === 'object' && 'id' in v && 'status' in v) {
      const o = v as { id: string; status: string; stage?: string };
      out[k] = { id: o.id, status: o.status, ...(o.stage ? { stage: o.stage } : {}) };
    } else out[k] = v;
  }
  return out;
}
