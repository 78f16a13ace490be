import {
  clip,
  jsonLine,
  lastLine,
  modelFlag,
  num,
  shownCommand,
  shownPath,
  type AgentActivity,
  type ModelUsage,
  type StreamParser,
  type StreamParserContext,
} from './agentActivity';

/**
 * Claude Code's `--output-format stream-json --verbose`, read a line at a time (checked with
 * 2.1.332; a sample run is test/agents/fixtures/claude-stream.jsonl):
 * - `system/init`: the session id (`--resume` takes it) and the model;
 * - `assistant`: one event per content block of a model message (`tool_use` with its input, `text`),
 *   each repeating the message's usage, whose output count is a placeholder (1);
 * - `user`: the tool results (nothing to show: the step was shown when it was asked for);
 * - `result`: the run's true totals (`usage`, `modelUsage` per model with `costUSD`,
 *   `total_cost_usd`). A run stopped before it writes this event leaves only the per-message counts.
 */

interface ToolUse {
  type: 'tool_use';
  name?: string;
  input?: Record<string, unknown>;
}

function str(o: Record<string, unknown> | undefined, key: string): string {
  const v = o?.[key];
  return typeof v === 'string' ? v : '';
}

/** A tool call as one line: what it runs or which file it touches. */
export function claudeStep(tool: ToolUse, worktree: string): string {
  const name = tool.name ?? 'tool';
  const input = tool.input;
  const file = str(input, 'file_path') || str(input, 'notebook_path') || str(input, 'path');
  switch (name) {
    case 'Bash':
      return `Bash: ${shownCommand(str(input, 'command'), worktree)}`;
    case 'Read':
    case 'Write':
      return `${name} ${shownPath(file, worktree)}`;
    case 'Edit':
    case 'MultiEdit':
    case 'NotebookEdit':
      return `Edit ${shownPath(file, worktree)}`;
    case 'Grep':
    case 'Glob':
      return `${name}: ${clip(str(input, 'pattern'), 100)}`;
    case 'WebFetch':
      return `WebFetch: ${clip(str(input, 'url'), 100)}`;
    case 'Task':
      return `Task: ${clip(str(input, 'description'), 100)}`;
    default:
      return name;
  }
}

function usageOf(u: unknown, model: string): ModelUsage {
  return {
    model,
    input: num(u, 'input_tokens'),
    output: num(u, 'output_tokens'),
    cacheRead: num(u, 'cache_read_input_tokens'),
    cacheWrite: num(u, 'cache_creation_input_tokens'),
  };
}

export function claudeStreamParser(ctx: StreamParserContext): StreamParser {
  let model = modelFlag(ctx.argv) ?? 'claude';
  return (line: string): AgentActivity[] => {
    const ev = jsonLine(line);
    if (!ev) return [];
    const out: AgentActivity[] = [];
    const session = typeof ev.session_id === 'string' ? ev.session_id : '';
    switch (ev.type) {
      case 'system':
        if (ev.subtype === 'init') {
          if (typeof ev.model === 'string' && ev.model) model = ev.model;
          if (session) out.push({ kind: 'session', id: session });
        }
        break;
      case 'assistant': {
        const msg = ev.message as { id?: unknown; model?: unknown; content?: unknown; usage?: unknown } | undefined;
        if (!msg) break;
        if (typeof msg.model === 'string' && msg.model && msg.model !== '<synthetic>') model = msg.model;
        for (const c of Array.isArray(msg.content) ? (msg.content as { type?: string; text?: unknown }[]) : []) {
          if (c.type === 'tool_use') out.push({ kind: 'step', text: claudeStep(c as ToolUse, ctx.worktree) });
          else if (c.type === 'text' && typeof c.text === 'string' && c.text.trim())
            out.push({ kind: 'message', text: lastLine(c.text) });
        }
        // A CLI-made message (an API error) has no usage worth counting.
        if (msg.usage && ev.is_api_error_message !== true)
          out.push({
            kind: 'usage',
            scope: 'request',
            usage: [usageOf(msg.usage, model)],
            ...(typeof msg.id === 'string' ? { key: msg.id } : {}),
          });
        break;
      }
      case 'result': {
        const byModel = ev.modelUsage as Record<string, Record<string, unknown>> | undefined;
        let usage: ModelUsage[];
        if (byModel && typeof byModel === 'object' && Object.keys(byModel).length > 0) {
          usage = Object.entries(byModel).map(([m, u]) => {
            const cost = u.costUSD;
            return {
              model: m,
              input: num(u, 'inputTokens'),
              output: num(u, 'outputTokens'),
              cacheRead: num(u, 'cacheReadInputTokens'),
              cacheWrite: num(u, 'cacheCreationInputTokens'),
              ...(typeof cost === 'number' ? { costUsd: cost } : {}),
            };
          });
        } else {
          const total = usageOf(ev.usage, model);
          usage = [typeof ev.total_cost_usd === 'number' ? { ...total, costUsd: ev.total_cost_usd } : total];
        }
        if (ev.usage || byModel) out.push({ kind: 'usage', scope: 'run', usage });
        if (session) out.push({ kind: 'session', id: session });
        if (typeof ev.result === 'string' && ev.result.trim() && ev.is_error !== true)
          out.push({ kind: 'message', text: lastLine(ev.result) });
        break;
      }
    }
    return out;
  };
}
