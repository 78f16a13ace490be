import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { runBounded } from '../boundedRun';
import { templateOf } from '../commandTemplate';
import { splitWords } from '../shellWords';
import type { AgentCliAdapter, AgentPermissions } from './agentCli';
import { adapterFor } from './agentCliRegistry';

/**
 * `pipeline doctor`: can each agent actually run? For every agent: is its CLI installed (and which
 * version), is it given a key or logged in, and does the pinned preset's command line parse with
 * that version. The last is asked of the CLI itself: the preset's exact flags are run in a scratch
 * directory with no credentials and every model endpoint pointed at a closed local port, so the run
 * stops at "not logged in" (the flags parsed) or at "unknown option" (they did not), and nothing
 * leaves the machine.
 */
export type CheckVerdict = 'ok' | 'problem' | 'unknown';

export interface AgentCheck {
  agent: string;
  command: string;
  /** The preset with an adapter, or null for a template. */
  preset: string | null;
  program: string;
  /** Where the program was found on PATH, or null. */
  path: string | null;
  version: string | null;
  credentials: { verdict: CheckVerdict; detail: string };
  flags: { verdict: CheckVerdict; detail: string };
  /** What must be fixed for this agent to work; empty when nothing. */
  problems: string[];
}

/** Where each CLI keeps a login, relative to the home directory. */
const CREDENTIAL_FILES: Record<string, string[]> = {
  claude: ['.claude/.credentials.json'],
  codex: ['.codex/auth.json'],
  gemini: ['.gemini/oauth_creds.json'],
};

const BAD_FLAG =
  /unknown option|unexpected argument|unknown argument|unrecognized (?:option|argument)|invalid value for/i;

/**
 * CLIs whose parser refuses an unknown flag before it prints help (Codex's clap): for them `--help`
 * after the preset's flags answers the question. Others (Claude Code's commander, Gemini CLI's
 * yargs) print help whatever else is given, so their flags are checked by a run.
 */
const HELP_CHECKS_FLAGS = new Set(['codex']);

/** A closed port on this machine: any request a CLI makes in the flag check is refused at once. */
const DEAD_ENDPOINT = 'http://127.0.0.1:9';

export interface DoctorOptions {
  env?: NodeJS.ProcessEnv;
  /** `agentCli` from the configuration: a user's extra flags are checked with the preset's. */
  permissions?: Record<string, AgentPermissions>;
  /** How long a CLI may take to answer `--version` or the flag check. */
  timeoutMs?: number;
}

export async function checkAgents(
  agents: readonly { id: string; command: string }[],
  opts: DoctorOptions = {},
): Promise<AgentCheck[]> {
  const env = opts.env ?? process.env;
  return Promise.all(agents.map((a) => checkAgent(a, env, opts.timeoutMs ?? 15_000, opts.permissions ?? {})));
}

async function checkAgent(
  a: { id: string; command: string },
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  permissions: Record<string, AgentPermissions>,
): Promise<AgentCheck> {
  const adapter = adapterFor(a.command) ?? null;
  const program = adapter?.binary ?? splitWords(templateOf(a.command))[0] ?? '';
  const path = program === '{node}' ? process.execPath : await which(program, env);
  const problems: string[] = [];
  const check: AgentCheck = {
    agent: a.id,
    command: a.command,
    preset: adapter ? adapter.name : null,
    program,
    path,
    version: null,
    credentials: { verdict: 'unknown', detail: 'a command template: its credentials are its own' },
    flags: { verdict: 'unknown', detail: 'a command template: its flags are its own' },
    problems,
  };
  if (a.command === 'scripted' || program === '{node}') {
    check.credentials = { verdict: 'ok', detail: 'needs none' };
    check.flags = { verdict: 'ok', detail: 'the project’s own scripted agent' };
    return check;
  }
  if (!path) {
    problems.push(
      `${program} is not installed (not found on PATH)${adapter ? `: install ${installHint(adapter.name)}` : ''}`,
    );
    check.flags = { verdict: 'unknown', detail: 'not installed' };
    return check;
  }
  if (!adapter) return check;
  const v = await run(path, adapter.versionArgs, { env, timeoutMs });
  check.version = v.code === 0 ? (v.output.trim().split('\n').at(-1) ?? '').trim() : null;
  if (!check.version) problems.push(`${program} ${adapter.versionArgs.join(' ')} failed: ${lastLine(v.output)}`);
  check.credentials = await credentials(adapter, env);
  if (check.credentials.verdict === 'problem') problems.push(check.credentials.detail);
  check.flags = await flagCheck(adapter, path, env, timeoutMs, permissions[adapter.name]);
  if (check.flags.verdict === 'problem') problems.push(check.flags.detail);
  return check;
}

const INSTALL: Record<string, string> = {
  claude: '`npm install -g @anthropic-ai/claude-code`',
  codex: '`npm install -g @openai/codex`',
  gemini: '`npm install -g @google/gemini-cli`',
  aider: '`python -m pip install aider-chat`',
};

function installHint(name: string): string {
  return INSTALL[name] ?? name;
}

async function credentials(adapter: AgentCliAdapter, env: NodeJS.ProcessEnv): Promise<AgentCheck['credentials']> {
  const set = adapter.credentialEnv.filter((k) => (env[k] ?? '') !== '');
  if (set.length) return { verdict: 'ok', detail: `${set.join(', ')} set` };
  const home = env.HOME ?? homedir();
  for (const f of CREDENTIAL_FILES[adapter.name] ?? []) {
    if (await exists(join(home, f))) return { verdict: 'ok', detail: `logged in (${join(home, f)})` };
  }
  return {
    verdict: 'problem',
    detail: `${adapter.binary} has no key (${adapter.credentialEnv.join(', ') || 'none known'}) and no login: set a key or run \`${adapter.binary}\` once to log in`,
  };
}

/**
 * Runs the preset's own command line, with no credentials and nowhere to connect, in a scratch git
 * repository: a flag the installed version does not know fails at once, naming it.
 */
async function flagCheck(
  adapter: AgentCliAdapter,
  path: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  permissions: AgentPermissions | undefined,
): Promise<AgentCheck['flags']> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-doctor-'));
  try {
    await run('git', ['init', '-q', dir], { env, timeoutMs });
    const inv = adapter.invocation({
      taskFile: join(dir, 'TASK.md'),
      taskId: 'TASK-000',
      worktree: dir,
      role: 'architect',
      gitWritableDirs: [],
      prompt: 'pipeline doctor: check that these flags parse; do nothing.',
      permissions: permissions ?? { allow: [], deny: [], extraArgs: [] },
    });
    const scrubbed: NodeJS.ProcessEnv = { PATH: env.PATH ?? '', HOME: dir, TMPDIR: dir, ...inv.env };
    for (const k of ['ANTHROPIC_BASE_URL', 'OPENAI_BASE_URL', 'GOOGLE_GEMINI_BASE_URL']) scrubbed[k] = DEAD_ENDPOINT;
    const [, ...args] = inv.argv;
    // Some parsers refuse an unknown flag before they print help (Codex's): a quick answer for them.
    const prompt = args.indexOf('--');
    const help = await run(path, [...(prompt >= 0 ? args.slice(0, prompt) : args), '--help'], {
      env: scrubbed,
      timeoutMs,
      cwd: dir,
    });
    if (HELP_CHECKS_FLAGS.has(adapter.name) && help.code === 0 && !BAD_FLAG.test(help.output))
      return { verdict: 'ok', detail: 'parsed (checked with --help)' };
    const r = BAD_FLAG.test(help.output) ? help : await run(path, args, { env: scrubbed, timeoutMs, cwd: dir });
    const bad = BAD_FLAG.exec(r.output);
    if (bad) {
      const line =
        r.output
          .split('\n')
          .find((l) => BAD_FLAG.test(l))
          ?.trim() ?? bad[0];
      return {
        verdict: 'problem',
        detail: `the ${adapter.name} preset's flags are refused by this version: ${line}. Install the version the pipeline pins, or pass other flags with "agentCli": {"${adapter.name}": {"extraArgs": [...]}} in .pipeline/config.json`,
      };
    }
    if (r.timedOut) return { verdict: 'ok', detail: `no flag refused within ${Math.round(timeoutMs / 1000)} s` };
    const stoppedAt = adapter.classify({ code: r.code, signal: null }, r.output)?.summary ?? lastLine(r.output);
    return {
      verdict: 'ok',
      detail: `parsed (with no credentials the CLI stopped at: ${stoppedAt || `exit ${r.code}`})`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function which(program: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  if (!program) return null;
  if (isAbsolute(program) || program.includes('/')) return (await exists(program, true)) ? program : null;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, program);
    if (await exists(p, true)) return p;
  }
  return null;
}

async function exists(p: string, executable = false): Promise<boolean> {
  try {
    await access(p, executable ? constants.X_OK : constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

// eslint-disable-next-line no-control-regex -- terminal escapes are what this removes
const ESCAPES = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

function lastLine(text: string): string {
  const lines = text
    .replace(ESCAPES, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const l = lines.at(-1) ?? '';
  return l.length > 200 ? `${l.slice(0, 200)}…` : l;
}

async function run(
  cmd: string,
  args: readonly string[],
  o: { env: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string },
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const r = await runBounded(cmd, args, { ...o, maxOutputBytes: 256 * 1024 });
  return { code: r.code, output: r.startError ?? r.output, timedOut: r.timedOut };
}
