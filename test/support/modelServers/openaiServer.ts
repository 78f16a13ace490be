import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import type {
  ModelAction,
  ModelReply,
  ModelRequestRecord,
  ModelServer,
  ModelTurn,
  ModelUsage,
  ScriptedModel,
} from './scriptedModel';

/**
 * A local OpenAI Responses API for Codex CLI: `POST /v1/responses`, answered as the real API streams
 * it (`response.created`, `response.output_item.added`, the item's deltas, `response.output_item.done`,
 * `response.completed` with `usage`). Each request is one turn of the scripted model. Codex offers an
 * unknown model no file tools, only its shell (`exec_command`), so every action that touches the
 * worktree becomes a shell command: a read is `cat`, a write a here-document; Codex really runs it, in
 * its sandbox, and sends the output back as a `function_call_output` item of the next request.
 *
 * Usage follows OpenAI's convention: `input_tokens` counts cached tokens too and
 * `input_tokens_details.cached_tokens` says how many of them were cached, so a reply's
 * `{ input, cacheRead }` is reported as `input_tokens = input + cacheRead`.
 */

const DEFAULT_USAGE: ModelUsage = { input: 100, output: 20 };

/** The shell tool Codex 0.171.0 offers every model (`exec_command{cmd, workdir, yield_time_ms, …}`). */
export const CODEX_SHELL_TOOL = 'exec_command';

interface ContentPart {
  type: string;
  text?: string;
}
interface InputItem {
  type?: string;
  role?: string;
  content?: string | ContentPart[];
  call_id?: string;
  output?: string | ContentPart[];
}
interface ResponsesRequest {
  model?: string;
  input?: string | InputItem[];
}

function textOf(content: string | ContentPart[] | undefined): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((c) => c.text ?? '').join('\n');
}

function itemsOf(req: ResponsesRequest): InputItem[] {
  if (typeof req.input === 'string') return [{ type: 'message', role: 'user', content: req.input }];
  return req.input ?? [];
}

function userTexts(req: ResponsesRequest): string[] {
  return itemsOf(req)
    .filter((i) => (i.type === undefined || i.type === 'message') && i.role === 'user')
    .map((i) => textOf(i.content).trim());
}

/**
 * Context Codex sends as user messages of its own: the environment (`<environment_context>`), a
 * project's AGENTS.md (`# AGENTS.md instructions for …`) and other tagged blocks. None is the prompt.
 */
function isCodexContext(text: string): boolean {
  return text.startsWith('<') || text.startsWith('# AGENTS.md instructions');
}

/** The user's prompt: the first user message that is not context Codex added. */
export function promptOf(req: ResponsesRequest): string {
  return userTexts(req).find((t) => t.length > 0 && !isCodexContext(t)) ?? '';
}

/** What the earlier tool calls returned, oldest first (`function_call_output` items). */
export function toolResultsOf(req: ResponsesRequest): string[] {
  return itemsOf(req)
    .filter((i) => i.type === 'function_call_output' || i.type === 'custom_tool_call_output')
    .map((i) => textOf(i.output));
}

/** The turn's working directory, as Codex tells the model in its environment context. */
export function workingDirectoryOf(req: ResponsesRequest): string | null {
  for (const t of userTexts(req)) {
    const m = /<cwd>([^<]+)<\/cwd>/.exec(t);
    if (m) return m[1]!.trim();
  }
  return null;
}

/** Quotes one word for a POSIX shell. */
function q(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A here-document that writes `content` exactly: the delimiter never occurs in the content, and a
 * content without a final newline loses the one the here-document adds.
 */
export function hereDocument(path: string, content: string): string {
  const dir = dirname(path);
  const mkdir = dir === '.' ? '' : `mkdir -p ${q(dir)} && `;
  if (content === '') return `${mkdir}: > ${q(path)}`;
  let delim = 'PIPELINE_EOF';
  while (content.includes(delim)) delim += '_';
  const exact = content.endsWith('\n');
  const trim = exact ? '' : ` && truncate -s -1 ${q(path)}`;
  return `${mkdir}cat > ${q(path)} <<'${delim}'${trim}\n${exact ? content : `${content}\n`}${delim}`;
}

/** A scripted action as the arguments of a call to Codex's shell tool, or null for a text answer. */
export function shellCommandOf(action: ModelAction): string | null {
  switch (action.kind) {
    case 'shell':
      return action.command;
    case 'read':
      return `cat ${q(action.path)}`;
    case 'write':
      return hereDocument(action.path, action.content);
    default:
      return null;
  }
}

function id(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

function usageFields(u: ModelUsage): Record<string, unknown> {
  const cached = u.cacheRead ?? 0;
  return {
    input_tokens: u.input + cached,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: u.input + cached + u.output,
  };
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
    'x-request-id': id('req'),
  });
  let seq = 0;
  const sse = (type: string, data: Record<string, unknown>): void => {
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  };
  const response = {
    id: id('resp'),
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: 'in_progress',
    model,
    output: [] as unknown[],
  };
  sse('response.created', { response });
  sse('response.in_progress', { response });
  const command = shellCommandOf(action);
  let item: Record<string, unknown>;
  if (command !== null) {
    const args: Record<string, unknown> = { cmd: command, yield_time_ms: 30000 };
    if (cwd) args.workdir = cwd;
    const json = JSON.stringify(args);
    item = { id: id('fc'), type: 'function_call', call_id: id('call'), name: CODEX_SHELL_TOOL, arguments: json };
    sse('response.output_item.added', { output_index: 0, item: { ...item, arguments: '', status: 'in_progress' } });
    for (const delta of pieces(json))
      sse('response.function_call_arguments.delta', { item_id: item.id, output_index: 0, delta });
    sse('response.function_call_arguments.done', { item_id: item.id, output_index: 0, arguments: json });
    item = { ...item, status: 'completed' };
  } else {
    const text = action.kind === 'text' ? action.text : '';
    const msgId = id('msg');
    const part = { type: 'output_text', text: '', annotations: [] };
    const at = { item_id: msgId, output_index: 0, content_index: 0 };
    sse('response.output_item.added', {
      output_index: 0,
      item: { id: msgId, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
    });
    sse('response.content_part.added', { ...at, part });
    for (const delta of pieces(text)) sse('response.output_text.delta', { ...at, delta });
    sse('response.output_text.done', { ...at, text });
    sse('response.content_part.done', { ...at, part: { ...part, text } });
    item = { id: msgId, type: 'message', status: 'completed', role: 'assistant', content: [{ ...part, text }] };
  }
  sse('response.output_item.done', { output_index: 0, item });
  sse('response.completed', {
    response: { ...response, status: 'completed', output: [item], usage: usageFields(usage) },
  });
  res.end();
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startOpenAIServer(initial: ScriptedModel): Promise<ModelServer> {
  let model = initial;
  const requests: ModelRequestRecord[] = [];
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = req.url ?? '/';
    if (req.method !== 'POST' || !/^\/v1\/responses(\?|$)/.test(path)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: `no ${req.method} ${path} here` } }));
      return;
    }
    const body = JSON.parse(await bodyOf(req)) as ResponsesRequest;
    const turn: ModelTurn = {
      api: 'openai',
      prompt: promptOf(body),
      toolResults: toolResultsOf(body),
      model: body.model ?? '',
    };
    let reply: ModelReply;
    try {
      reply = model(turn);
    } catch (e) {
      // A script that cannot answer is a test bug: say so to the CLI and in the record.
      reply = {
        action: {
          kind: 'error',
          status: 400,
          body: { error: { type: 'invalid_request_error', message: `scripted model failed: ${String(e)}` } },
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
      res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: String(e) } }));
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
