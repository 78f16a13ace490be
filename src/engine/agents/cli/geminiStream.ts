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
 * Gemini CLI's `--output-format stream-json`, read a line at a time (checked with 0.61.0; a sample
 * run is test/agents/fixtures/gemini-stream.jsonl):
 * - `init`: the session id (`--resume` takes it);
 * - `tool_use`: a tool call with its parameters (`run_shell_command`, `write_file`, `replace`, …);
 * - `message` from the assistant, streamed in pieces (`delta: true`);
 * - `result`: `stats.models`, the tokens per model (the routing model's too), where
 *   `input_tokens` counts the cached part and `input` does not.
 */

function str(o: unknown, key: string): string {
  const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined;
  return typeof v === 'string' ? v : '';
}

export function geminiStep(tool: string, params: unknown, worktree: string): string {
  const file = str(params, 'file_path') || str(params, 'absolute_path') || str(params, 'path');
  switch (tool) {
    case 'run_shell_command':
      return `Bash: ${shownCommand(str(params, 'command'), worktree)}`;
    case 'read_file':
      return `Read ${shownPath(file, worktree)}`;
    case 'read_many_files':
      return 'Read files';
    case 'write_file':
      return `Write ${shownPath(file, worktree)}`;
    case 'replace':
      return `Edit ${shownPath(file, worktree)}`;
    case 'search_file_content':
    case 'grep_search':
    case 'glob':
      return `${tool}: ${clip(str(params, 'pattern'), 100)}`;
    case 'web_fetch':
      return `WebFetch: ${clip(str(params, 'prompt') || str(params, 'url'), 100)}`;
    default:
      return tool;
  }
}

export function geminiStreamParser(ctx: StreamParserContext): StreamParser {
  const flagModel = modelFlag(ctx.argv);
  let said = '';
  return (line: string): AgentActivity[] => {
    const ev = jsonLine(line);
    if (!ev) return [];
    switch (ev.type) {
      case 'init':
        return typeof ev.session_id === 'string' ? [{ kind: 'session', id: ev.session_id }] : [];
      case 'tool_use':
        said = '';
        return [{ kind: 'step', text: geminiStep(str(ev, 'tool_name') || 'tool', ev.parameters, ctx.worktree) }];
      case 'message': {
        if (ev.role !== 'assistant' || typeof ev.content !== 'string') return [];
        said = ev.delta === true ? said + ev.content : ev.content;
        const text = lastLine(said);
        return text ? [{ kind: 'message', text }] : [];
      }
      case 'result': {
        const stats = ev.stats as { models?: Record<string, unknown> } | undefined;
        if (!stats) return [];
        const models = stats.models && typeof stats.models === 'object' ? Object.entries(stats.models) : [];
        const of = (model: string, u: unknown): ModelUsage => {
          const cached = num(u, 'cached');
          const input = 'input' in (u as object) ? num(u, 'input') : Math.max(0, num(u, 'input_tokens') - cached);
          return { model, input, output: num(u, 'output_tokens'), cacheRead: cached, cacheWrite: 0 };
        };
        const usage = models.length ? models.map(([m, u]) => of(m, u)) : [of(flagModel ?? 'gemini', stats)];
        return [{ kind: 'usage', scope: 'run', usage }];
      }
      default:
        return [];
    }
  };
}
