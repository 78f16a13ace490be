import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type {
  ModelAction,
  ModelRequestRecord,
  ModelServer,
  ModelTurn,
  ModelUsage,
  ScriptedModel,
} from './scriptedModel';

/**
 * A local Anthropic Messages API for Claude Code: `POST /v1/messages` (Claude Code adds
 * `?beta=true`), answered as the real API streams it (`message_start`, one content block with its
 * deltas, `message_delta` with the stop reason and usage, `message_stop`). Each request is one turn
 * of the scripted model; its action becomes one of Claude Code's own tools, so the real CLI runs the
 * command, reads or writes the file, and sends the result back in the next request.
 */

const DEFAULT_USAGE: ModelUsage = { input: 100, output: 20 };

interface TextBlock {
  type: 'text';
  text: string;
}
interface ToolResultBlock {
  type: 'tool_result';
  tool_use_id: string;
  content?: string | { type: string; text?: string }[];
  is_error?: boolean;
}
type Block = TextBlock | ToolResultBlock | { type: string };
interface Message {
  role: string;
  content: string | Block[];
}
interface MessagesRequest {
  model?: string;
  messages?: Message[];
  system?: string | TextBlock[];
  stream?: boolean;
}

const REMINDER = /<system-reminder>[\s\S]*?<\/system-reminder>/g;

function blocksOf(m: Message): Block[] {
  return typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
}

function textOf(content: ToolResultBlock['content']): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((c) => c.text ?? '').join('\n');
}

/** The user's prompt: the first user message's text, without the reminders Claude Code puts before it. */
export function promptOf(req: MessagesRequest): string {
  const first = req.messages?.find((m) => m.role === 'user');
  if (!first) return '';
  return blocksOf(first)
    .filter((b): b is TextBlock => b.type === 'text')
    .map((b) => b.text.replace(REMINDER, '').trim())
    .filter((t) => t.length > 0)
    .join('\n');
}

/** Every user message's text, oldest first, without the reminders; messages of tool results alone are left out. */
export function promptsOf(req: MessagesRequest): string[] {
  return (req.messages ?? [])
    .filter((m) => m.role === 'user')
    .map((m) =>
      blocksOf(m)
        .filter((b): b is TextBlock => b.type === 'text')
        .map((b) => b.text.replace(REMINDER, '').trim())
        .filter((t) => t.length > 0)
        .join('\n'),
    )
    .filter((t) => t.length > 0);
}

/** What the earlier tool calls returned, oldest first (an error result keeps its text). */
export function toolResultsOf(req: MessagesRequest): string[] {
  const out: string[] = [];
  for (const m of req.messages ?? []) {
    if (m.role !== 'user') continue;
    for (const b of blocksOf(m)) if (b.type === 'tool_result') out.push(textOf((b as ToolResultBlock).content));
  }
  return out;
}

/**
 * The CLI's working directory, as Claude Code states it to the model ("Primary working directory:"
 * in a system-role message of the conversation, or in the system prompt): its file tools want
 * absolute paths.
 */
export function workingDirectoryOf(req: MessagesRequest): string | null {
  const system = typeof req.system === 'string' ? req.system : (req.system ?? []).map((b) => b.text).join('\n');
  const texts = [system];
  for (const m of req.messages ?? [])
    for (const b of blocksOf(m)) if (b.type === 'text') texts.push((b as TextBlock).text);
  const m = /(?:Primary working directory|Working directory):\s*(\S.*)$/m.exec(texts.join('\n'));
  return m ? m[1]!.trim() : null;
}

/** A scripted action as a Claude Code tool call, or null for a plain text answer. */
function toolCallOf(action: ModelAction, cwd: string | null): { name: string; input: Record<string, string> } | null {
  const abs = (p: string): string => (isAbsolute(p) || cwd === null ? p : resolve(cwd, p));
  switch (action.kind) {
    case 'shell':
      return { name: 'Bash', input: { command: action.command, description: 'Run a command' } };
    case 'read':
      return { name: 'Read', input: { file_path: abs(action.path) } };
    case 'write':
      return { name: 'Write', input: { file_path: abs(action.path), content: action.content } };
    default:
      return null;
  }
}

function usageFields(u: ModelUsage): Record<string, number> {
  return {
    input_tokens: u.input,
    output_tokens: u.output,
    cache_read_input_tokens: u.cacheRead ?? 0,
    cache_creation_input_tokens: u.cacheWrite ?? 0,
  };
}

function id(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

function sse(res: ServerResponse, type: string, data: Record<string, unknown>): void {
  res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
}

/** Splits a string into a few pieces, as the real API streams partial text and partial JSON. */
function pieces(s: string, n = 3): string[] {
  if (s.length <= n) return [s];
  const size = Math.ceil(s.length / n);
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

function streamReply(res: ServerResponse, model: string, action: ModelAction, usage: ModelUsage, cwd: string | null) {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'request-id': id('req'),
  });
  const call = toolCallOf(action, cwd);
  sse(res, 'message_start', {
    message: {
      id: id('msg'),
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      // The real API reports the input side here and a placeholder output count, final in message_delta.
      usage: { ...usageFields(usage), output_tokens: 1 },
    },
  });
  if (call) {
    sse(res, 'content_block_start', {
      index: 0,
      content_block: { type: 'tool_use', id: id('toolu'), name: call.name, input: {} },
    });
    for (const part of pieces(JSON.stringify(call.input)))
      sse(res, 'content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: part } });
  } else {
    const text = action.kind === 'text' ? action.text : '';
    sse(res, 'content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    for (const part of pieces(text))
      sse(res, 'content_block_delta', { index: 0, delta: { type: 'text_delta', text: part } });
  }
  sse(res, 'content_block_stop', { index: 0 });
  sse(res, 'message_delta', {
    delta: { stop_reason: call ? 'tool_use' : 'end_turn', stop_sequence: null },
    usage: usageFields(usage),
  });
  sse(res, 'message_stop', {});
  res.end();
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startAnthropicServer(initial: ScriptedModel): Promise<ModelServer> {
  let model = initial;
  const requests: ModelRequestRecord[] = [];
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? '/';
    if (req.method !== 'POST' || !path.startsWith('/v1/messages') || path.startsWith('/v1/messages/')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: `no ${path} here` } }));
      return;
    }
    const body = JSON.parse(await bodyOf(req)) as MessagesRequest;
    const turn: ModelTurn = {
      api: 'anthropic',
      prompt: promptOf(body),
      toolResults: toolResultsOf(body),
      prompts: promptsOf(body),
      model: body.model ?? '',
    };
    let reply;
    try {
      reply = model(turn);
    } catch (e) {
      // A script that cannot answer is a test bug: say so to the CLI and in the record.
      reply = {
        action: {
          kind: 'error' as const,
          status: 500,
          body: { type: 'error', error: { type: 'api_error', message: `scripted model failed: ${String(e)}` } },
        },
      };
    }
    const { action } = reply;
    requests.push({ ...turn, path, at: Date.now(), action });
    if (action.kind === 'hang') return; // held until close() destroys the socket
    if (action.kind === 'error') {
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(JSON.stringify(action.body));
      return;
    }
    streamReply(res, turn.model, action, reply.usage ?? DEFAULT_USAGE, workingDirectoryOf(body));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: String(e) } }));
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the model server has no TCP address');
  const port = address.port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setModel(m: ScriptedModel) {
      model = m;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const s of sockets) s.destroy();
        server.close(() => ok());
      }),
  };
}
