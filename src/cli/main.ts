// src/cli/ — the `pipeline` command: one file per group of commands, each a thin layer over the engine's
// facade. Main file: this one. It imports the engine, never `vscode`, src/host or src/views.
import { Command, CommanderError } from 'commander';
import { EXIT, printable, reportError } from './output';

type Register = (program: Command) => void;

/**
 * Each top-level command and the module that registers it, loaded only when that command runs: a
 * read-only command such as `pipeline status` then never loads the git, monitor or metrics code
 * (the bundle wraps a module imported this way so that it runs only when first imported). Help,
 * a bare `pipeline` and an unknown command load them all, so commander lists every command.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  init: async () => (await import('./initCommand.js')).registerInit,
  agent: async () => (await import('./agentCommands.js')).registerAgentCommands,
  task: async () => (await import('./taskCommands.js')).registerTaskCommands,
  status: async () => (await import('./statusCommands.js')).registerStatusCommands,
  run: async () => (await import('./runCommand.js')).registerRunCommand,
  metrics: async () => (await import('./metricsCommand.js')).registerMetricsCommand,
  repair: async () => (await import('./repairCommand.js')).registerRepairCommand,
  review: async () => (await import('./reviewCommand.js')).registerReviewCommand,
  doctor: async () => (await import('./doctorCommand.js')).registerDoctorCommand,
  next: async () => (await import('./nextCommand.js')).registerNextCommand,
  pilot: async () => (await import('./pilotCommand.js')).registerPilotCommands,
  demo: async () => (await import('./demo.js')).registerDemo,
  db: async () => (await import('./dbCommand.js')).registerDbCommands,
  worker: async () => (await import('./workerCommand.js')).registerWorkerCommand,
};
/** Commands registered by another command's module. */
const ALIASES: Record<string, string> = { mode: 'status', rollout: 'status' };

/** The registrations `argv` needs: its command's, or every one when it names none that is known. */
async function registrations(argv: readonly string[]): Promise<Register[]> {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  const name = first === undefined ? undefined : (ALIASES[first] ?? first);
  const only = name !== undefined && Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (only) return [await only()];
  return Promise.all(Object.values(COMMANDS).map((load) => load()));
}

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
  try {
    for (const register of await registrations(argv)) register(program);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return reportError(e);
  }
}

/** Runs the command line of this process (dist/cli.js, the launcher, calls this). */
export function runCli(): void {
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

if (require.main === module) runCli();
