import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { initHome } from '../engine/pipelineInit';
import { DEFAULT_STAGES } from '../engine/schema';
import { withPipeline } from './openPipeline';
import { println } from './output';

const run = promisify(execFile);

async function git(cwd: string, args: string[]): Promise<string | null> {
  try {
    const { stdout } = await run('git', args, { cwd, timeout: 10_000, env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0' } });
    return stdout.trim();
  } catch {
    return null;
  }
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create .pipeline/ at the root of this git repository')
    .option('--target <branch>', 'the branch approved work is merged into (default: the current branch)')
    .option('--preset <name>', 'also add one agent per role running this preset (claude, codex, gemini, aider, scripted)')
    .action(async (o: { target?: string; preset?: string }) => {
      const root = await git(process.cwd(), ['rev-parse', '--show-toplevel']);
      if (!root) {
        throw new PipelineError('not-initialised', `${process.cwd()} is not inside a git repository.`, { fix: 'Run `git init` (and make a first commit) first, then `pipeline init`.' });
      }
      const target = o.target ?? (await git(root, ['symbolic-ref', '--short', 'HEAD'])) ?? 'main';
      const home = await initHome(root, { targetBranch: target, stages: DEFAULT_STAGES });
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
        println('Next: add agents with `pipeline agent add <id> --role <role> --command <preset|template>` and tasks with `pipeline task add <title>`.');
      }
    });
}
