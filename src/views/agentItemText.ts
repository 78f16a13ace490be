import type { Agent } from '../engine/model/schema';
import type { AgentProgress } from '../engine/progress/progressBoard';
import type { AgentWorkers } from '../engine/workers/workerStatus';
import { tokensText, usd } from '../engine/usage/pricing';
import { clockTime, since } from './timeText';

/**
 * What the Agents tree writes of one agent: its description (one line beside its name) and its
 * tooltip. A working agent shows its current step and what its attempt has cost so far, from the
 * leader's progress board (a window that follows reads the leader's progress file); a paused one
 * shows when it resumes. On a pipeline whose agents run on workers (several machines), it says which
 * live worker runs the agent, or that none does (the agent is offline). No `vscode` here, so plain Node tests check the words.
 */
export interface AgentItemText {
  description: string;
  tooltip: string;
}

/** Longest step shown beside the name; the tooltip has it whole. */
const STEP_CHARS = 60;

export function agentItemText(
  a: Agent,
  progress: AgentProgress | undefined,
  now = Date.now(),
  workers?: AgentWorkers,
): AgentItemText {
  // Progress left from another task (a leader that died mid-attempt) says nothing of this one.
  const p = a.status === 'working' && progress && progress.taskId === a.current_task ? progress : undefined;
  const paused = a.status === 'paused' && a.paused_until ? `paused until ${clockTime(a.paused_until, now)}` : '';
  const step = p ? (p.step ?? 'starting') : '';
  const cost = p?.usage ? usd(p.usage.costUsd) : '';
  const description = [
    a.role,
    paused || a.status,
    a.current_task,
    a.current_task ? since(a.since, now) : '',
    shorten(oneLine(step), STEP_CHARS),
    cost,
    workers ? workerWords(workers) : '',
  ]
    .filter(Boolean)
    .join(' · ');

  const lines = [
    `${a.id}: ${a.role}, ${a.status}${a.current_task ? ` on ${a.current_task} for ${since(a.since, now)}` : ''}`,
  ];
  if (p) {
    lines.push(`${p.stage}, attempt ${p.attempt}, ${p.steps} step${p.steps === 1 ? '' : 's'} so far`);
    lines.push(`now: ${oneLine(step)}`);
    if (p.message) lines.push(`said: ${shorten(oneLine(p.message), 200)}`);
    if (p.usage) lines.push(`spent so far: ${tokensText(p.usage)}, ${usd(p.usage.costUsd)}`);
  }
  if (paused) lines.push(`${paused}${a.paused_reason ? `: ${oneLine(a.paused_reason)}` : ''}`);
  if (workers)
    lines.push(
      workers.live
        ? `runs on ${workers.live_workers.join(', ')}`
        : `offline: ${workers.workers.length ? `its workers (${workers.workers.join(', ')}) are offline` : 'no worker runs it'}; it is offered no work until a live worker runs it`,
    );
  lines.push(`command: ${a.command}`);
  return { description, tooltip: lines.join('\n') };
}

/** Beside the name: the live workers that run the agent, or that it is offline. */
function workerWords(w: AgentWorkers): string {
  return w.live ? `on ${w.live_workers.join(', ')}` : 'offline: no live worker';
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function shorten(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
