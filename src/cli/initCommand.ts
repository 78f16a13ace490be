import type { Command } from 'commander';
import { PRESETS } from '../engine/agents/commandTemplate';
import { PipelineError } from '../engine/errors';
import { initPipelineAt } from '../engine/home/pipelineInit';
import { withPipeline } from './openPipeline';
import { println } from './output';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create .pipeline/ at the root of this git repository')
    .option('--target <branch>', 'the branch approved work is merged into (default: the current branch)')
    .option(
      '--preset <name>',
      'also add one agent per role running this preset (claude, codex, gemini, aider, scripted)',
    )
    .action(async (o: { target?: string; preset?: string }) => {
      // Checked before anything is written, so a typo leaves no half-initialised pipeline behind.
      if (o.preset !== undefined && !Object.hasOwn(PRESETS, o.preset))
        throw new PipelineError('usage', `Unknown preset ${JSON.stringify(o.preset)}.`, {
          where: '--preset',
          fix: `Use one of ${Object.keys(PRESETS).join(', ')}; or leave --preset out and add agents with a command template: \`pipeline agent add <id> --role <role> --command '<template>'\`.`,
        });
      const { home, target } = await initPipelineAt(process.cwd(), o.target !== undefined ? { target: o.target } : {});
      println(`Initialised a pipeline in ${home.dir} (target branch ${target}).`);
      if (o.preset) {
        const preset = o.preset;
        await withPipeline('lead', 'pipeline init', async (p) => {
          for (const s of p.config.stages) {
            const agent = await p.addAgent({ id: s.role, role: s.role, command: preset });
            println(`Added agent ${agent.id} (${agent.role}, ${agent.command}).`);
          }
        });
      } else {
        println(
          'Next: add agents with `pipeline agent add <id> --role <role> --command <preset|template>` and tasks with `pipeline task add <title>`.',
        );
      }
    });
}
