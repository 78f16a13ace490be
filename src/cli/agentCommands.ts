import type { Command } from 'commander';
import { removeAgentWorktree } from '../engine/git/agentWorktreeRemoval';
import { GitRepo } from '../engine/git/gitRepo';
import { Worktrees } from '../engine/git/worktrees';
import { worktreeRootOf } from '../engine/home/pipelineHome';
import type { Pipeline } from '../engine/pipeline';
import { withPipeline } from './openPipeline';
import { printJson, println, printable, table } from './output';

export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('manage the agents');

  agent
    .command('add <id>')
    .description('register an agent for a role')
    .requiredOption('--role <role>', 'the role it plays (a role of one of the stages)')
    .requiredOption(
      '--command <command>',
      'a preset (claude, codex, gemini, aider, scripted) or a template with {taskFile} {taskId} {worktree} {role}',
    )
    .action(async (id: string, o: { role: string; command: string }) => {
      await withPipeline('auto', 'pipeline agent add', async (p) => {
        const a = await p.addAgent({ id, role: o.role, command: o.command });
        println(`Added agent ${a.id} (${a.role}): ${printable(a.command)}`);
      });
    });

  agent
    .command('list')
    .description('list the agents')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withPipeline('follow', 'pipeline agent list', (p) => {
        const agents = Object.values(p.state.agents).sort((a, b) => a.id.localeCompare(b.id));
        if (o.json) return printJson(agents);
        if (agents.length === 0)
          return println('No agents. Add one with `pipeline agent add <id> --role <role> --command <preset>`.');
        println(
          table(
            ['ID', 'ROLE', 'STATUS', 'TASK', 'COMMAND'],
            agents.map((a) => [a.id, a.role, a.status, a.current_task ?? '-', a.command]),
          ),
        );
      });
    });

  agent
    .command('remove <id>')
    .description('remove an agent')
    .option('--force', 'remove it even while it works, requeueing its task')
    .action(async (id: string, o: { force?: boolean }) => {
      await withPipeline('auto', 'pipeline agent remove', async (p) => {
        const working = p.state.agents[id]?.status === 'working';
        await p.removeAgent(id, o.force ?? false);
        println(`Removed agent ${id}.`);
        await removeWorktreeOf(p, id, working);
      });
    });
}

/**
 * A removed agent's worktree goes too when nothing in it would be lost; otherwise it stays, with a
 * warning that says why and how to remove it. An agent removed while working (--force) may still be
 * stopping in it, under the leader's hand, so its worktree is left for a person.
 */
async function removeWorktreeOf(p: Pipeline, id: string, wasWorking: boolean): Promise<void> {
  const worktrees = new Worktrees(await GitRepo.open(p.home.root), worktreeRootOf(p.home, p.config.worktreeRoot));
  const path = worktrees.pathOf(id);
  if (wasWorking) {
    warn(
      `kept the worktree of ${id} at ${path}: the agent was working and may still be stopping. Once its work is saved or no longer wanted: git worktree remove "${path}"`,
    );
    return;
  }
  const r = await removeAgentWorktree(worktrees, id);
  if (r.outcome === 'removed') println(`Removed its worktree ${r.path}.`);
  else if (r.outcome === 'kept')
    warn(
      `kept the worktree of ${id} at ${r.path}: ${r.reason} Remove it by hand once nothing in it is needed: git worktree remove --force "${r.path}"`,
    );
}

function warn(text: string): void {
  process.stderr.write(`pipeline: warning: ${text}\n`);
}
