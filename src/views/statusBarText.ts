import type { PipelineState } from '../engine/model/schema';
import { clockTime } from './timeText';

/**
 * What the status-bar item says: orchestration and rollout modes, busy agents, waiting and blocked
 * tasks, and agents paused by a usage limit (with when each resumes in the tooltip). No `vscode`
 * here, so plain Node tests check the words; `statusBar.ts` puts them on the item.
 */
export interface StatusBarText {
  text: string;
  tooltip: string;
  /** Blocked tasks want a person: the item takes the warning colour. */
  warn: boolean;
}

export interface StatusBarSituation {
  /** This window runs the pipeline. */
  running: boolean;
  /** Another process leads it (this window follows). */
  leader: { label: string; pid: number; host: string } | null;
}

export function statusBarText(s: Readonly<PipelineState>, where: StatusBarSituation, now = Date.now()): StatusBarText {
  const agents = Object.values(s.agents);
  const busy = agents.filter((a) => a.status === 'working').length;
  // Soonest first: the first line of the tooltip is the next agent back at work.
  const paused = agents
    .filter((a) => a.status === 'paused')
    .sort((a, b) => Date.parse(a.paused_until ?? '') - Date.parse(b.paused_until ?? '') || (a.id < b.id ? -1 : 1));
  const tasks = Object.values(s.tasks);
  // Pending and queued alike: "waiting", the word of the tooltip and the status quick pick (the
  // Tasks tree shows pending tasks apart from queued ones, so "queued" would contradict it).
  const queued = tasks.filter((t) => t.status === 'queued' || t.status === 'pending').length;
  const blocked = tasks.filter((t) => t.status === 'blocked').length;
  const icon = where.running ? '$(sync~spin)' : where.leader ? '$(eye)' : '$(debug-pause)';
  // The paused count wears the Agents tree's icon for a paused agent; the clock would not fit.
  const text = [
    `${icon} ${s.orchestration_mode}`,
    s.mode,
    `${busy}/${agents.length} busy`,
    ...(paused.length ? [`$(debug-pause) ${paused.length} paused`] : []),
    `${queued} waiting`,
    ...(blocked ? [`$(error) ${blocked}`] : []),
  ].join(' · ');
  const lines = [
    `Agent Pipeline: ${where.running ? 'running in this window' : where.leader ? `led by ${where.leader.label} (pid ${where.leader.pid} on ${where.leader.host})` : 'stopped'}`,
    `orchestration ${s.orchestration_mode}${s.pending_switch ? ` (switching to ${s.pending_switch})` : ''}, rollout ${s.mode}`,
    `${busy} of ${agents.length} agents busy${paused.length ? `, ${paused.length} paused` : ''}, ${queued} task${queued === 1 ? '' : 's'} waiting, ${blocked} blocked, ${tasks.filter((t) => t.status === 'done').length} done`,
  ];
  for (const a of paused)
    lines.push(
      `${a.id} paused until ${a.paused_until ? clockTime(a.paused_until, now) : 'its leader resumes it'}${a.paused_reason ? `: ${oneLine(a.paused_reason)}` : ''}`,
    );
  return { text, tooltip: lines.join('\n'), warn: blocked > 0 };
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > 160 ? `${line.slice(0, 159)}…` : line;
}
