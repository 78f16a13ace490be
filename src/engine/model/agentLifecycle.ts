import { PipelineError } from '../errors';
import type { Agent, AgentStatus } from './schema';
import type { AgentChange } from './stateRecords';

/**
 * The agent lifecycle: documented statuses and one pure transition function, like the task's.
 *
 * - `idle`      free: the scheduler may give it a task of its role.
 * - `working`   on `current_task` since `since`; its task is `working` and assigned to it.
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
  | { type: 'start' };

type Move = AgentStatus | 'noop' | 'illegal';

const TABLE: Record<AgentEvent['type'], Record<AgentStatus, Move>> = {
  take: { idle: 'working', working: 'illegal', blocked: 'illegal', offline: 'illegal' },
  release: { idle: 'noop', working: 'idle', blocked: 'noop', offline: 'noop' },
  stop: { idle: 'offline', working: 'offline', blocked: 'offline', offline: 'noop' },
  start: { idle: 'noop', working: 'idle', blocked: 'idle', offline: 'idle' },
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
  return { status: move, current_task: null, since: null };
}
