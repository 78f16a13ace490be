import { z } from 'zod';
import { validateCommand } from '../agents/commandTemplate';
import { PipelineError } from '../errors';
import { HUMAN_AGENT, HUMAN_ROLE } from '../model/humanStage';
import { assertName } from '../model/ids';
import type { Agent } from '../model/schema';
import { idArg, mutation } from './mutationHost';

/** Adding and removing agents. */

export interface AddAgentOptions {
  id: string;
  role: string;
  command: string;
}

export const addAgent = mutation(
  z.tuple([z.strictObject({ id: z.string(), role: z.string(), command: z.string() })]),
  async (h, [o]): Promise<Agent> => {
    assertName(o.id, 'agent id', 'agent id');
    assertName(o.role, 'role', '--role');
    if (o.role === HUMAN_ROLE || o.id === HUMAN_AGENT)
      throw new PipelineError('usage', `"${HUMAN_ROLE}" is kept for people: no agent plays it or takes its name.`, {
        where: o.role === HUMAN_ROLE ? '--role' : o.id,
        fix:
          o.role === HUMAN_ROLE
            ? 'A stage with the role human needs no agent: its tasks wait for `pipeline review <id> approve|changes|block`.'
            : 'Choose another agent id.',
      });
    const roles = [...new Set(h.config.stages.map((s) => s.role))];
    if (!roles.includes(o.role)) {
      throw new PipelineError('unknown-role', `No stage is worked by the role "${o.role}".`, {
        where: '--role',
        fix: `Use one of ${roles.join(', ')}, or add a stage with this role to ${h.home.configFile}.`,
      });
    }
    if (h.state.agents[o.id])
      throw new PipelineError('duplicate-id', `Agent ${o.id} exists already.`, {
        where: o.id,
        fix: 'Choose another id, or remove the agent first.',
      });
    if (!o.command.trim())
      throw new PipelineError('usage', 'An agent needs a command (a preset name or a template).', {
        where: '--command',
      });
    // An unknown placeholder or an open quote is refused now, not when a task first reaches the agent.
    validateCommand(o.command);
    const batch = h.newBatch();
    const agent: Agent = {
      id: o.id,
      role: o.role,
      command: o.command,
      status: 'idle',
      current_task: null,
      since: null,
      created_at: batch.at,
    };
    batch.addAgent(agent);
    await h.commit(batch);
    return agent;
  },
);

export const removeAgent = mutation(z.tuple([idArg, z.boolean()]), async (h, [agentId, force]) => {
  const batch = h.newBatch();
  const a = batch.agent(agentId);
  if (a.status === 'working' && a.current_task) {
    if (!force)
      throw new PipelineError('busy', `Agent ${agentId} is working on ${a.current_task}.`, {
        where: agentId,
        fix: 'Wait for it to finish, or pass --force to requeue its task.',
      });
    batch.transition(a.current_task, { type: 'requeue', reason: `agent ${agentId} removed` });
  }
  batch.removeAgent(agentId);
  await h.commit(batch);
});
