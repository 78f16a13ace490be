import type { Command } from 'commander';
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
        await p.removeAgent(id, o.force ?? false);
        println(`Removed agent ${id}.`);
      });
    });
}
