import type { Command } from 'commander';
import { checkAgents } from '../engine/agents/cli/doctor';
import { withPipeline } from './openPipeline';
import { EXIT, printJson, println } from './output';

/** `pipeline doctor`: can every agent run (installed, which version, a key or a login, flags that parse)? */
export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description("check every agent's CLI: installed, version, key or login, the preset's flags; exits 3 on a problem")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      await withPipeline('follow', 'pipeline doctor', async (p) => {
        const checks = await checkAgents(Object.values(p.state.agents), { permissions: p.config.agentCli });
        if (o.json) printJson(checks);
        else if (checks.length === 0)
          println('No agents: add one with `pipeline agent add <id> --role <role> --command <preset>`.');
        for (const c of o.json ? [] : checks) {
          println(`${c.agent} (${c.command}): ${c.problems.length ? 'PROBLEM' : 'ok'}`);
          println(`  program      ${c.path ?? `${c.program} (not found on PATH)`}${c.version ? `, ${c.version}` : ''}`);
          println(`  credentials  ${c.credentials.detail}`);
          println(`  flags        ${c.flags.detail}`);
          for (const problem of c.problems) println(`  FAIL ${problem}`);
        }
        if (checks.some((c) => c.problems.length > 0)) process.exitCode = EXIT.notReady;
      });
    });
}
