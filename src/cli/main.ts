// src/cli/ — the `pipeline` command: one file per group of commands, each a thin layer over the engine's
// facade. Main file: this one. It never imports `vscode`.
import { Command, CommanderError } from 'commander';
import { registerAgentCommands } from './agentCommands';
import { registerDemo } from './demo';
import { registerDoctorCommand } from './doctorCommand';
import { registerInit } from './initCommand';
import { registerMetricsCommand } from './metricsCommand';
import { registerNextCommand } from './nextCommand';
import { registerPilotCommands } from './pilotCommand';
import { registerRepairCommand } from './repairCommand';
import { EXIT, printable, reportError } from './output';
import { registerRunCommand } from './runCommand';
import { registerStatusCommands } from './statusCommands';
import { registerTaskCommands } from './taskCommands';

/**
 * `pipeline`: the headless CLI on the same engine as the extension, for CI, servers and scripts.
 * Results go to stdout, errors to stderr with a non-zero exit code and what to do.
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('pipeline')
    .description('Run a team of AI coding agents on one git repository as a pipeline.')
    .version('0.1.0')
    .exitOverride()
    // Commander repeats arguments in its messages ("unknown option '…'"): shown, never obeyed.
    .configureOutput({ writeErr: (s) => process.stderr.write(printable(s, { multiline: true })) });
  registerInit(program);
  registerAgentCommands(program);
  registerTaskCommands(program);
  registerStatusCommands(program);
  registerNextCommand(program);
  registerPilotCommands(program);
  registerRunCommand(program);
  registerMetricsCommand(program);
  registerRepairCommand(program);
  registerDoctorCommand(program);
  registerDemo(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return reportError(e);
  }
}

if (require.main === module) {
  // `pipeline status | head -3`: once the reader has gone, what is left to print has nowhere to go.
  // Stop quietly, as other command-line tools do, rather than crash with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
  });
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
