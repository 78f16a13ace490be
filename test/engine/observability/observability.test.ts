import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { TypedEvents } from '../../../src/engine/model/events';
import { pipelineLogFile, type LogRecord } from '../../../src/engine/observability/jsonLogger';
import { startObservability, type ObservedPipeline } from '../../../src/engine/observability/observability';
import { PipelineMetrics } from '../../../src/engine/observability/pipelineMetrics';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import { configSchema } from '../../../src/engine/model/configSchema';
import { emptyState, type Agent } from '../../../src/engine/model/schema';
import { metric, parseProm, scrape } from './obsKit';

/**
 * startObservability as the extension uses it: metrics attached when the pipeline opens, then the
 * log and the endpoint when the window leads, sharing those metrics; closing the second leaves the
 * first working.
 */

async function fakePipeline(): Promise<{
  p: ObservedPipeline & { events: TypedEvents<PipelineEventMap> };
  dir: string;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'obs-start-'));
  const p = {
    events: new TypedEvents<PipelineEventMap>(),
    state: emptyState(),
    config: configSchema.parse({}),
    isLeader: true,
    leader: null,
    storeWarnings: [],
    home: { logsDir: join(dir, 'logs') },
  };
  return { p, dir };
}

function agent(id: string): Agent {
  return {
    id,
    role: 'architect',
    command: 'scripted',
    status: 'idle',
    current_task: null,
    since: null,
    created_at: new Date().toISOString(),
  };
}

void test('shared metrics: the endpoint serves them, and close leaves them to their owner', async () => {
  const { p, dir } = await fakePipeline();
  const window = await startObservability(p, { log: false, metrics: { processMetrics: false } });
  const shared = window.metrics;
  assert.ok(shared, 'metrics only, as a window that follows keeps them');
  assert.equal(window.logger, undefined);
  assert.equal(window.server, undefined);
  try {
    p.events.emit('agent:added', { agent: agent('arch') });
    const lead = await startObservability(p, { metrics: shared, port: 0 });
    assert.equal(lead.metrics, shared, 'the leader serves the metrics the window already keeps');
    assert.ok(lead.server && lead.logger);
    const url = lead.server.url;
    p.events.emit('agent:added', { agent: agent('arch-2') });
    const samples = await scrape(url);
    // Both agents count: the one added before the endpoint started too.
    assert.equal(metric(samples, 'pipeline_agents_idle'), 2);
    await lead.close();
    await assert.rejects(fetch(`${url}/healthz`), 'the endpoint is closed');
    const lines = (await readFile(pipelineLogFile(p.home.logsDir), 'utf8')).trim().split('\n');
    const events = lines.map((l) => (JSON.parse(l) as LogRecord).event);
    assert.deepEqual(events, ['agent:added'], 'the log saw what happened while it was open, and was written out');

    let changes = 0;
    const sub = shared.onDidChange(() => changes++);
    p.events.emit('agent:added', { agent: agent('arch-3') });
    sub.dispose();
    assert.equal(changes, 1, 'the shared metrics still follow the pipeline');
    assert.equal(metric(parseProm(await shared.metricsText()), 'pipeline_agents_idle'), 3);
  } finally {
    await window.close();
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal((await shared.metricsText()).trim(), '', "the window's close disposed the metrics it attached");
});

void test('a port in use: the error names the port, and the shared metrics and the first endpoint go on', async () => {
  const { p, dir } = await fakePipeline();
  const shared = PipelineMetrics.attach(p, { processMetrics: false });
  const first = await startObservability(p, { log: false, metrics: shared, port: 0 });
  try {
    const port = first.server!.port;
    await assert.rejects(
      startObservability(p, { metrics: shared, port }),
      (e: unknown) => isPipelineError(e) && e.message.includes(String(port)),
    );
    p.events.emit('agent:added', { agent: agent('arch') });
    assert.equal(metric(parseProm(await shared.metricsText()), 'pipeline_agents_idle'), 1);
    assert.equal(metric(await scrape(first.server!.url), 'pipeline_agents_idle'), 1, 'the first endpoint goes on');
  } finally {
    await first.close();
    shared.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
