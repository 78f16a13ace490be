import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startAnthropicServer } from '../support/modelServers/anthropicServer';
import type { ModelReply, ModelTurn } from '../support/modelServers/scriptedModel';

/**
 * The Anthropic Messages stand-in on its own, spoken to as Claude Code speaks to it: what a turn
 * sees of a request, and each action's answer on the wire. (claude.test.ts runs the real CLI on it.)
 */

const CWD = '/work/repo';

function request(messages: unknown[]) {
  return {
    model: 'claude-test',
    stream: true,
    system: [{ type: 'text', text: 'You are Claude Code.' }],
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: '<system-reminder>\ngit status: clean\n</system-reminder>' },
          { type: 'text', text: 'Read the task file /work/repo/t.md and do it.' },
        ],
      },
      { role: 'system', content: [{ type: 'text', text: `# Environment\n - Primary working directory: ${CWD}\n` }] },
      ...messages,
    ],
  };
}

async function post(url: string, body: unknown) {
  const res = await fetch(`${url}/v1/messages?beta=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'k' },
    body: JSON.stringify(body),
  });
  return { res, text: await res.text() };
}

function sseEvents(text: string): { event: string; data: Record<string, unknown> }[] {
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((b) => {
      const event = /^event: (.+)$/m.exec(b)![1]!;
      const data = JSON.parse(/^data: (.+)$/m.exec(b)![1]!) as Record<string, unknown>;
      assert.equal(data.type, event, 'each data names its event');
      return { event, data };
    });
}

void test('a write action streams a Write tool call with the path made absolute against the CLI’s working directory', async () => {
  const turns: ModelTurn[] = [];
  const server = await startAnthropicServer((turn): ModelReply => {
    turns.push(turn);
    return {
      action: { kind: 'write', path: 'work/a.md', content: 'hello "world"\n' },
      usage: { input: 10, output: 7, cacheRead: 3, cacheWrite: 2 },
    };
  });
  try {
    const { res, text } = await post(
      server.url,
      request([
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'Read', input: {} }] },
        {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'file text' }] }],
        },
      ]),
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const evs = sseEvents(text);
    assert.deepEqual(
      evs.map((e) => e.event).filter((e) => e !== 'content_block_delta'),
      ['message_start', 'content_block_start', 'content_block_stop', 'message_delta', 'message_stop'],
    );
    const block = evs[1]!.data.content_block as { type: string; name: string };
    assert.deepEqual([block.type, block.name], ['tool_use', 'Write']);
    const json = evs
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => (e.data.delta as { type: string; partial_json: string }).partial_json)
      .join('');
    assert.deepEqual(JSON.parse(json), { file_path: `${CWD}/work/a.md`, content: 'hello "world"\n' });
    const delta = evs.find((e) => e.event === 'message_delta')!.data;
    assert.deepEqual(delta.delta, { stop_reason: 'tool_use', stop_sequence: null });
    assert.deepEqual(delta.usage, {
      input_tokens: 10,
      output_tokens: 7,
      cache_read_input_tokens: 3,
      cache_creation_input_tokens: 2,
    });
    assert.deepEqual(turns, [
      {
        api: 'anthropic',
        prompt: 'Read the task file /work/repo/t.md and do it.',
        prompts: ['Read the task file /work/repo/t.md and do it.'],
        toolResults: ['file text'],
        model: 'claude-test',
      },
    ]);
    assert.equal(server.requests[0]!.path, '/v1/messages?beta=true');
    assert.equal(server.requests[0]!.action.kind, 'write');
  } finally {
    await server.close();
  }
});

void test('a text action ends the turn; an error action is the status, headers and body given', async () => {
  const server = await startAnthropicServer(() => ({ action: { kind: 'text', text: 'All done.' } }));
  try {
    const { text } = await post(server.url, request([]));
    const evs = sseEvents(text);
    const said = evs
      .filter((e) => e.event === 'content_block_delta')
      .map((e) => (e.data.delta as { text: string }).text)
      .join('');
    assert.equal(said, 'All done.');
    assert.equal(
      (evs.find((e) => e.event === 'message_delta')!.data.delta as { stop_reason: string }).stop_reason,
      'end_turn',
    );

    const body = { type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } };
    server.setModel(() => ({ action: { kind: 'error', status: 429, headers: { 'x-should-retry': 'false' }, body } }));
    const { res, text: errText } = await post(server.url, request([]));
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('x-should-retry'), 'false');
    assert.deepEqual(JSON.parse(errText), body);
    assert.equal(server.requests.length, 2);
  } finally {
    await server.close();
  }
});

void test('a hang action holds the request until the server closes', async () => {
  const server = await startAnthropicServer(() => ({ action: { kind: 'hang' } }));
  const pending = post(server.url, request([]));
  // Wait for the condition (the request arrived), not for a time.
  while (server.requests.length === 0) await new Promise((r) => setImmediate(r));
  let settled = false;
  void pending.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, 'no answer while the server runs');
  await server.close();
  await assert.rejects(pending, 'closing the server ends the held request');
});
