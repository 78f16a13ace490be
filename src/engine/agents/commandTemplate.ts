// src/engine/agents/ — agents as processes: task files and completion markers, command templates and
// presets, the process and tmux runners, stage checks; cli/ has one adapter per agent CLI. Main file: this
// one. It imports the model, the ports and ../errors.
import { mkdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { PipelineError } from '../errors';
import { shellQuote, splitWords } from './shellWords';
import type { AgentPermissions } from './cli/agentCli';
import { adapterFor } from './cli/agentCliRegistry';
import { aiderAdapter } from './cli/aiderAdapter';
import { claudeAdapter } from './cli/claudeAdapter';
import { codexAdapter } from './cli/codexAdapter';
import { geminiAdapter } from './cli/geminiAdapter';

/**
 * How an agent's command is started. A command is a preset name or a template such as
 * `my-agent --task {taskFile} --id {taskId}`. Templates are split into words once, and the
 * placeholders are substituted inside each word, so task text, paths and ids never pass through a
 * shell and cannot inject anything. The same values are also in the environment
 * (PIPELINE_TASK_FILE, PIPELINE_TASK_ID, PIPELINE_WORKTREE, PIPELINE_ROLE) for templates that
 * do need a shell: `sh -c 'my-agent < "$PIPELINE_TASK_FILE"'`.
 */
export interface CommandContext {
  taskFile: string;
  taskId: string;
  worktree: string;
  role: string;
}

export interface Preset {
  description: string;
  template: string;
}

export const PROMPT =
  'Read the task file {taskFile} and do the task it describes, in this directory. When you are done, append the status line it asks for to that file.';

/**
 * The presets: each agent CLI's own non-interactive invocation, so one run does one stage of one
 * task and exits. (`scripted` is the project's own scripted agent, for demos and tests.) A preset
 * with an adapter (`cli/agentCliRegistry.ts`) is started as its adapter says; its template here is
 * only what `agent add` checks and shows.
 */
export const PRESETS: Record<string, Preset> = {
  claude: {
    description: claudeAdapter.description,
    template: `claude -p --output-format stream-json --verbose --permission-mode acceptEdits --permission-prompts none -- "${PROMPT}"`,
  },
  codex: {
    description: codexAdapter.description,
    template: `codex exec --json --sandbox workspace-write --cd {worktree} -- "${PROMPT}"`,
  },
  gemini: {
    description: geminiAdapter.description,
    template: `gemini --prompt "${PROMPT}" --skip-trust --approval-mode auto_edit --output-format stream-json`,
  },
  aider: {
    description: aiderAdapter.description,
    template: `aider --yes-always --no-auto-commits --no-suggest-shell-commands --file {taskFile} --message "${PROMPT}"`,
  },
  scripted: {
    description: "Agent Pipeline's scripted agent (demos and tests)",
    template: '{node} {scriptedAgent} {taskFile}',
  },
};

const PLACEHOLDERS = new Set(['taskFile', 'taskId', 'worktree', 'role', 'node', 'scriptedAgent']);

export interface ResolveOptions {
  /** Path of the scripted agent's program (dist/scriptedAgent.js). */
  scriptedAgent: string;
  /** The Node.js executable that runs it. */
  node?: string;
  /** What the user allowed or refused beyond an adapter's defaults (`agentCli.<name>` in the config). */
  permissions?: Partial<AgentPermissions>;
  /** Continue this session of the CLI (its own resume), when the adapter has one. */
  resume?: string;
  /** The CLI's interactive interface (a person watches in a terminal), when the adapter has one. */
  interactive?: boolean;
}

export interface ResolvedCommand {
  argv: string[];
  env: Record<string, string>;
  /** The command as a shell line, quoted, for terminals and logs. */
  display: string;
  /** Files the adapter needs written before the command starts (absolute paths). */
  files?: { path: string; content: string }[];
  /** The session this run continues (the CLI's own resume). */
  resumed?: string;
  /** The CLI's interactive interface: it waits for a person, and never ends by itself. */
  interactive?: boolean;
}

export function templateOf(command: string): string {
  return PRESETS[command]?.template ?? command;
}

/** Checks a command at `agent add` time: known placeholders only, balanced quotes, a program. */
export function validateCommand(command: string): void {
  const words = splitWords(templateOf(command));
  if (words.length === 0)
    throw new PipelineError('usage', 'The command is empty.', {
      where: '--command',
      fix: `Use a preset (${Object.keys(PRESETS).join(', ')}) or a command template.`,
    });
  for (const w of words) {
    for (const m of w.matchAll(/\{([a-zA-Z]+)\}/g)) {
      if (!PLACEHOLDERS.has(m[1]!)) {
        throw new PipelineError('usage', `Unknown placeholder {${m[1]}} in the command.`, {
          where: '--command',
          fix: 'Use {taskFile}, {taskId}, {worktree} or {role}.',
        });
      }
    }
  }
}

export function resolveCommand(command: string, ctx: CommandContext, opts: ResolveOptions): ResolvedCommand {
  validateCommand(command);
  const env = {
    PIPELINE_TASK_FILE: ctx.taskFile,
    PIPELINE_TASK_ID: ctx.taskId,
    PIPELINE_WORKTREE: ctx.worktree,
    PIPELINE_ROLE: ctx.role,
  };
  const adapter = adapterFor(command);
  if (adapter) {
    const invocationCtx = {
      ...ctx,
      gitWritableDirs: gitWritableDirs(ctx.worktree),
      prompt: PROMPT.replace('{taskFile}', ctx.taskFile),
      permissions: {
        allow: opts.permissions?.allow ?? [],
        deny: opts.permissions?.deny ?? [],
        extraArgs: opts.permissions?.extraArgs ?? [],
      },
    };
    const interactive = opts.interactive === true && adapter.interactiveInvocation !== undefined;
    const resume = !interactive && opts.resume && adapter.resumeInvocation ? opts.resume : undefined;
    const inv = interactive
      ? adapter.interactiveInvocation!(invocationCtx)
      : resume
        ? adapter.resumeInvocation!(invocationCtx, resume)
        : adapter.invocation(invocationCtx);
    return {
      argv: inv.argv,
      env: { ...inv.env, ...env },
      display: inv.argv.map(shellQuote).join(' '),
      ...(inv.files ? { files: inv.files } : {}),
      ...(resume ? { resumed: resume } : {}),
      ...(interactive ? { interactive: true } : {}),
    };
  }
  const values: Record<string, string> = {
    ...ctx,
    node: opts.node ?? process.execPath,
    scriptedAgent: opts.scriptedAgent,
  };
  const argv = splitWords(templateOf(command)).map((w) =>
    w.replace(/\{([a-zA-Z]+)\}/g, (_, k: string) => values[k] ?? ''),
  );
  return { argv, env, display: argv.map(shellQuote).join(' ') };
}

/**
 * The git directories a commit in a worktree writes to: a linked worktree's own git dir (its `.git`
 * file says `gitdir: <repo>/.git/worktrees/<name>`) and the common dir's `objects`, `refs` and
 * `logs` (the git dir's `commondir` file points there). A main checkout's `.git` is both. Empty
 * when the folder is not a git checkout (yet): a sandbox then has nothing to open.
 */
export function gitWritableDirs(worktree: string): string[] {
  const dotGit = join(worktree, '.git');
  let gitDir: string;
  try {
    const text = readFileSync(dotGit, 'utf8');
    const m = /^gitdir:\s*(.+?)\s*$/m.exec(text);
    if (!m) return [];
    gitDir = resolve(worktree, m[1]!);
  } catch (e) {
    // EISDIR: a main checkout, whose .git folder is the git dir itself.
    if ((e as NodeJS.ErrnoException).code !== 'EISDIR') return [];
    gitDir = dotGit;
  }
  let commonDir = gitDir;
  try {
    const rel = readFileSync(join(gitDir, 'commondir'), 'utf8').trim();
    if (rel) commonDir = isAbsolute(rel) ? rel : resolve(gitDir, rel);
  } catch {
    // No commondir file: the git dir is the common dir.
  }
  // Only the task branches' refs and reflogs, not all of refs/: an agent must be able to commit on
  // its task branch, and must not be able to move the target branch. They are created if missing,
  // so a sandbox can mount them writable before the first task branch has a reflog.
  const branches = [join(commonDir, 'refs', 'heads', 'pipeline'), join(commonDir, 'logs', 'refs', 'heads', 'pipeline')];
  for (const d of branches) {
    try {
      mkdirSync(d, { recursive: true });
    } catch {
      // A read-only repository: the agent cannot commit either way, and says so.
    }
  }
  return [...new Set([gitDir, join(commonDir, 'objects'), ...branches])];
}
