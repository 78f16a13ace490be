import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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
 * A local stand-in for the Gemini API (`generativelanguage.googleapis.com/v1beta`), as Gemini CLI
 * 0.61.0 calls it when `GOOGLE_GEMINI_BASE_URL` points here:
 *
 * - `POST /v1beta/models/<flash-lite>:generateContent`: the CLI's model router (and its other side
 *   questions) asks for a JSON object under a `responseJsonSchema`. It gets an object built from
 *   that schema: the lowest score a schema allows, the first value of each enum. So the router
 *   rates every prompt simple and picks the flash model, as the real router would for a stage this
 *   explicit.
 * - `POST /v1beta/models/<model>:streamGenerateContent?alt=sse`: the conversation. The scripted model
 *   answers each request with one action, sent as a single SSE chunk of a `GenerateContentResponse`
 *   (a `text` part, or a `functionCall` part of Gemini CLI's own tools) with `usageMetadata`.
 *
 * Both kinds ask the scripted model first, so an `error` or `hang` action applies to every call, as
 * an expired key or a dead server would; only a successful answer differs by kind, and the request
 * log records what was sent (a side question's JSON as a `text` action). Tool results come back as
 * the CLI gives them to the model: a shell command's as `<untrusted_context>Output: …</untrusted_context>`,
 * a file read's as the file's text. Anything else the
 * CLI asks (none seen with 0.61.0) is answered 404 in Google's error shape and recorded with its
 * path, so a new call shows up in the tests' request log.
 */

/** The tools Gemini CLI 0.61.0 offers, by their parameter names (seen in its requests). */
function functionCallOf(action: ModelAction): { name: string; args: Record<string, unknown> } | null {
  switch (action.kind) {
    case 'shell':
      return { name: 'run_shell_command', args: { command: action.command, description: action.command } };
    case 'read':
      return { name: 'read_file', args: { file_path: action.path } };
    case 'write':
      return { name: 'write_file', args: { file_path: action.path, content: action.content } };
    default:
      return null;
  }
}

interface GeminiPart {
  text?: string;
  thought?: boolean;
  functionCall?: { name?: string; args?: unknown };
  functionResponse?: { name?: string; response?: Record<string, unknown> };
}

interface GeminiContent {
  role?: string;
  parts?: GeminiPart[];
}

interface GeminiRequest {
  contents?: GeminiContent[];
  generationConfig?: { responseJsonSchema?: unknown; responseSchema?: unknown; responseMimeType?: string };
}

/** Context blocks the CLI puts before the user's words (`<session_context>…</session_context>`). */
const CONTEXT_BLOCK = /^\s*<([a-z_]+)>[\s\S]*<\/\1>\s*$/;

/**
 * The user's prompt: the first user message's own text, without the CLI's context blocks. The
 * conversation sends the context and the prompt as two parts of one message, the router as two
 * messages, so the first message with any text of the user's own is the one.
 */
function promptOf(req: GeminiRequest): string {
  for (const c of req.contents ?? []) {
    if (c.role !== 'user') continue;
    const own = (c.parts ?? [])
      .map((p) => p.text)
      .filter((t): t is string => typeof t === 'string' && !CONTEXT_BLOCK.test(t));
    if (own.length) return own.join('\n');
  }
  return '';
}

/** What each earlier tool call returned, oldest first (`functionResponse.response.output` or `error`). */
function toolResultsOf(req: GeminiRequest): string[] {
  const out: string[] = [];
  for (const c of req.contents ?? []) {
    for (const p of c.parts ?? []) {
      const r = p.functionResponse?.response;
      if (!p.functionResponse) continue;
      if (typeof r?.['output'] === 'string') out.push(r['output']);
      else if (typeof r?.['error'] === 'string') out.push(r['error']);
      else out.push(JSON.stringify(r ?? {}));
    }
  }
  return out;
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  minimum?: number;
}

/** A value that satisfies a (Gemini-style, upper-case types) JSON schema: lowest numbers, first enums. */
function valueFor(schema: JsonSchema | undefined): unknown {
  if (!schema) return null;
  if (schema.enum?.length) return schema.enum[0];
  const type = String(Array.isArray(schema.type) ? schema.type[0] : (schema.type ?? 'object')).toLowerCase();
  switch (type) {
    case 'object':
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, valueFor(v)]));
    case 'array':
      return [];
    case 'string':
      return 'scripted';
    case 'integer':
      return Math.max(1, Math.ceil(schema.minimum ?? 1));
    case 'number':
      return schema.minimum ?? 0;
    case 'boolean':
      return false;
    default:
      return null;
  }
}

function usageMetadata(usage: ModelUsage | undefined): Record<string, number> {
  const u = usage ?? { input: 100, output: 10 };
  return {
    promptTokenCount: u.input,
    candidatesTokenCount: u.output,
    cachedContentTokenCount: u.cacheRead ?? 0,
    totalTokenCount: u.input + u.output,
  };
}

function googleError(res: ServerResponse, status: number, message: string): void {
  const statusName = status === 404 ? 'NOT_FOUND' : status === 400 ? 'INVALID_ARGUMENT' : 'INTERNAL';
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { code: status, message, status: statusName } }));
}

const ROUTE = /^\/v1(?:beta|alpha)?\/models\/([^/:?]+):([A-Za-z]+)(?:\?.*)?$/;

export async function startGeminiServer(initial: ScriptedModel): Promise<ModelServer> {
  let model = initial;
  const requests: ModelRequestRecord[] = [];
  const held = new Set<ServerResponse>();

  const answer = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    const path = req.url ?? '/';
    const m = ROUTE.exec(path);
    const method = m?.[2];
    if (req.method !== 'POST' || !m || (method !== 'generateContent' && method !== 'streamGenerateContent')) {
      requests.push({
        api: 'gemini',
        path,
        at: Date.now(),
        model: m?.[1] ?? '',
        prompt: '',
        toolResults: [],
        action: { kind: 'error', status: 404, body: 'not served' },
      });
      googleError(res, 404, `${req.method ?? '?'} ${path} is not served by this local model server.`);
      return;
    }
    let body: GeminiRequest;
    try {
      body = JSON.parse(raw) as GeminiRequest;
    } catch {
      googleError(res, 400, 'The request body is not JSON.');
      return;
    }
    const turn: ModelTurn = { api: 'gemini', prompt: promptOf(body), toolResults: toolResultsOf(body), model: m[1]! };
    let reply: ModelReply;
    try {
      reply = model(turn);
    } catch (e) {
      reply = { action: { kind: 'error', status: 500, body: { error: { code: 500, message: String(e) } } } };
    }
    const action = reply.action;
    const record: ModelRequestRecord = { ...turn, path, at: Date.now(), action };
    requests.push(record);

    if (action.kind === 'hang') {
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    if (action.kind === 'error') {
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(typeof action.body === 'string' ? action.body : JSON.stringify(action.body));
      return;
    }
    if (method === 'generateContent') {
      // A side question (routing, next speaker, loop check) wants JSON under a schema; else plain text.
      const schema = (body.generationConfig?.responseJsonSchema ?? body.generationConfig?.responseSchema) as
        JsonSchema | undefined;
      const text = schema ? JSON.stringify(valueFor(schema)) : action.kind === 'text' ? action.text : 'OK';
      // The log says what was answered: the schema's object, not the script's step.
      record.action = { kind: 'text', text };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }],
          usageMetadata: usageMetadata(reply.usage),
          modelVersion: turn.model,
        }),
      );
      return;
    }
    const call = functionCallOf(action);
    const part = call ? { functionCall: call } : { text: action.kind === 'text' ? action.text : '' };
    const chunk = {
      candidates: [{ content: { role: 'model', parts: [part] }, finishReason: 'STOP', index: 0 }],
      usageMetadata: usageMetadata(reply.usage),
      modelVersion: turn.model,
    };
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setModel(m: ScriptedModel) {
      model = m;
    },
    async close() {
      for (const res of held) res.destroy();
      held.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
