import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  clip,
  jsonLine,
  lastLine,
  modelFlag,
  num,
  shownCommand,
  shownPath,
  type AgentActivity,
  type StreamParser,
  type StreamParserContext,
} from './agentActivity';

/**
 * Codex CLI's `exec --json`, read a line at a time (checked with 0.171.0; a sample run is
 * test/agents/fixtures/codex-stream.jsonl):
 * - `thread.started`: the thread id `codex exec resume` takes;
 * - `item.started` of a `command_execution`: the command being run; `item.completed` of a
 *   `file_change` (the files patched), an `agent_message` (what the model said);
 * - `turn.completed`: the turn's `usage`, input counted with its cached part (OpenAI's convention).
 *   After `exec resume` these are the thread's totals, its earlier runs included, hence `thread`.
 * The stream never names the model: it comes from `--model` or from Codex's config.toml.
 */

interface Item {
  type?: string;
  command?: unknown;
  text?: unknown;
  changes?: unknown;
  server?: unknown;
  tool?: unknown;
  query?: unknown;
}

function codexStep(item: Item, worktree: string): string | null {
  switch (item.type) {
    case 'command_execution':
      return `Bash: ${shownCommand(typeof item.command === 'string' ? item.command : '', worktree)}`;
    case 'file_change': {
      const paths = Array.isArray(item.changes)
        ? (item.changes as { path?: unknown }[]).map((c) => (typeof c.path === 'string' ? c.path : '')).filter(Boolean)
        : [];
      return `Edit ${paths.map((p) => shownPath(p, worktree)).join(', ') || 'files'}`;
    }
    case 'mcp_tool_call':
      return `${typeof item.server === 'string' ? item.server : 'mcp'}.${typeof item.tool === 'string' ? item.tool : 'tool'}`;
    case 'web_search':
      return `WebSearch: ${clip(typeof item.query === 'string' ? item.query : '', 100)}`;
    default:
      return null;
  }
}

/** `-c model="x"` in an argv. */
function configModel(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length - 1; i++) {
    if (argv[i] !== '-c' && argv[i] !== '--config') continue;
    const m = /^model\s*=\s*"?([^"]+)"?$/.exec(argv[i + 1]!);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * The model Codex would use when the command line names none: `model = "…"` at the top of
 * `$CODEX_HOME/config.toml` (default `~/.codex/config.toml`).
 */
export async function codexConfiguredModel(env: Record<string, string | undefined>): Promise<string | undefined> {
  const home = env.CODEX_HOME ?? join(env.HOME ?? homedir(), '.codex');
  try {
    const text = await readFile(join(home, 'config.toml'), 'utf8');
    const top = text.split(/^\s*\[/m)[0] ?? '';
    return /^\s*model\s*=\s*"([^"]+)"/m.exec(top)?.[1];
  } catch {
    return undefined;
  }
}

export function codexStreamParser(ctx: StreamParserContext): StreamParser {
  const model = modelFlag(ctx.argv) ?? configModel(ctx.argv) ?? ctx.model ?? 'codex';
  return (line: string): AgentActivity[] => {
    const ev = jsonLine(line);
    if (!ev) return [];
    const item = (ev.item ?? {}) as Item;
    switch (ev.type) {
      case 'thread.started':
        return typeof ev.thread_id === 'string' ? [{ kind: 'session', id: ev.thread_id }] : [];
      case 'item.started': {
        // Commands are shown when they start (they take the time); other items when they are done.
        const step = item.type === 'command_execution' ? codexStep(item, ctx.worktree) : null;
        return step ? [{ kind: 'step', text: step }] : [];
      }
      case 'item.completed': {
        if (item.type === 'agent_message' && typeof item.text === 'string' && item.text.trim())
          return [{ kind: 'message', text: lastLine(item.text) }];
        const step = item.type !== 'command_execution' ? codexStep(item, ctx.worktree) : null;
        return step ? [{ kind: 'step', text: step }] : [];
      }
      case 'turn.completed': {
        const u = ev.usage;
        if (!u) return [];
        const cached = num(u, 'cached_input_tokens');
        return [
          {
            kind: 'usage',
            scope: 'thread',
            usage: [
              {
                model,
                input: Math.max(0, num(u, 'input_tokens') - cached),
                output: num(u, 'output_tokens'),
                cacheRead: cached,
                cacheWrite: num(u, 'cache_write_input_tokens'),
              },
            ],
          },
        ];
      }
      default:
        return [];
    }
  };
}
