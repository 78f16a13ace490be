import { PipelineError } from '../errors';
import type { Agent, AgentStatus } from './schema';
import type { AgentChange } from './stateRecords';

/**
 * The agent lifecycle: documented statuses and one pure transition function, like the task's.
 *
 * - `idle`      free: the scheduler may give it a task of its role.
 * - `working`   on `current_task` since `since`; its task is `working` and assigned to it.
 * - `paused`    its CLI hit a usage or rate limit: takes no work until `paused_until`, then resumes
 *               by itself (a person's start resumes it at once). Paused agents keep no task: the
 *               task that met the limit went back to its queue.
 * - `blocked`   cannot take work until a person starts it again (kept for states written so).
 * - `offline`   stopped by a person: takes no work until started again.
 *
 * Every change of an agent's status goes through `transitionAgent`, so "the agent is free again" is
 * written once. An event that does not apply is an error; one that is already true (`release` of an
 * idle agent) is a no-op, returned as null.
 */
export type AgentEvent =
  /** The agent takes a task: idle → working. */
  | { type: 'take'; task: string; at: string }
  /**
   * The agent's attempt ended, whatever the outcome: working → idle. With `task`, only when that is
   * still the agent's task (a late release for an older task changes nothing).
   */
  | { type: 'release'; task?: string }
  /** A person stopped the agent: → offline (its task, if any, is requeued by the caller). */
  | { type: 'stop' }
  /** A person started (or restarted) the agent: → idle. */
  | { type: 'start' }
  /**
   * Its CLI hit a usage or rate limit: idle → paused until `until` (a paused agent's pause is moved
   * to the new time). A working agent must be released first; a blocked or offline one stays so.
   */
  | { type: 'pause'; until: string; reason: string }
  /** The limit's reset time came: paused → idle. */
  | { type: 'resume' };

type Move = AgentStatus | 'noop' | 'illegal';

const TABLE: Record<AgentEvent['type'], Record<AgentStatus, Move>> = {
  take: { idle: 'working', working: 'illegal', paused: 'illegal', blocked: 'illegal', offline: 'illegal' },
  release: { idle: 'noop', working: 'idle', paused: 'noop', blocked: 'noop', offline: 'noop' },
  stop: { idle: 'offline', working: 'offline', paused: 'offline', blocked: 'offline', offline: 'noop' },
  start: { idle: 'noop', working: 'idle', paused: 'idle', blocked: 'idle', offline: 'idle' },
  pause: { idle: 'paused', working: 'illegal', paused: 'paused', blocked: 'noop', offline: 'noop' },
  resume: { idle: 'noop', working: 'noop', paused: 'idle', blocked: 'noop', offline: 'noop' },
};

/** The change `event` makes to the agent, or null when there is nothing to change. */
export function transitionAgent(agent: Agent, event: AgentEvent): AgentChange | null {
  const move = TABLE[event.type][agent.status];
  if (move === 'noop') return null;
  if (event.type === 'release' && event.task !== undefined && agent.current_task !== event.task) return null;
  if (move === 'illegal') {
    throw new PipelineError('illegal-transition', `Agent ${agent.id} is ${agent.status}; it cannot "${event.type}".`, {
      where: agent.id,
      fix: 'Check the agent with `pipeline agent list`.',
    });
  }
  if (event.type === 'take') return { status: move, current_task: event.task, since: event.at };
  if (event.type === 'pause')
    return { status: move, current_task: null, since: null, paused_until: event.until, paused_reason: event.reason };
  // Leaving a pause forgets it; other moves never touch what they do not know.
  if (agent.status === 'paused')
    return { status: move, current_task: null, since: null, paused_until: null, paused_reason: null };
  return { status: move, current_task: null, since: null };
}
