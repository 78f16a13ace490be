import assert from 'node:assert/strict';
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { TypedEvents } from '../../../src/engine/model/events';
import { MetricsServer, readiness } from '../../../src/engine/observability/metricsServer';
import type { MetricsSnapshot } from '../../../src/engine/observability/metricsSnapshot';
import { PipelineMetrics, type MetricsSource } from '../../../src/engine/observability/pipelineMetrics';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import { configSchema } from '../../../src/engine/model/configSchema';
import { emptyState } from '../../../src/engine/model/schema';
import type { LeaderInfo } from '../../../src/engine/store/leaderLease';

/** The endpoint itself: 127.0.0.1 only, its routes, readiness, and a port in use. */

const other: LeaderInfo = {
  pid: 999,
  host: 'elsewhere',
  epoch: 2,
  since: '2026-01-01T00:00:00.000Z',
  renewedAt: '2026-01-01T00:00:05.000Z',
  label: 'VS Code window',
};

function source(
  over: Partial<MetricsSource> = {},
): MetricsSource & { isLeader: boolean; leader: LeaderInfo | null; storeWarnings: string[] } {
  return {
    events: new TypedEvents<PipelineEventMap>(),
    state: emptyState(),
    config: configSchema.parse({}),
    isLeader: true,
    leader: { ...other, pid: process.pid, label: 'me' },
    storeWarnings: [],
    ...over,
  } as never;
}

async function withServer(src: MetricsSource, fn: (s: MetricsServer) => Promise<void>): Promise<void> {
  const metrics = PipelineMetrics.attach(src, { processMetrics: false });
  const server = await MetricsServer.start({ port: 0, metrics, pipeline: src });
  try {
    await fn(server);
  } finally {
    await server.close();
    metrics.dispose();
  }
}

function rawGet(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

void test('a port in use is a clear error naming the port and the fix; the first server goes on', async () => {
  await withServer(source(), async (first) => {
    const metrics = PipelineMetrics.attach(source(), { processMetrics: false });
    try {
      await assert.rejects(MetricsServer.start({ port: first.port, metrics, pipeline: source() }), (e: unknown) => {
        assert.ok(isPipelineError(e), String(e));
        assert.equal(e.code, 'busy');
        assert.match(e.message, new RegExp(`^Port ${first.port} on 127\\.0\\.0\\.1 is already in use`));
        assert.match(e.details.fix ?? '', /--metrics-port <port>/);
        assert.match(e.details.fix ?? '', /--port <port>/);
        assert.match(e.details.fix ?? '', new RegExp(`lsof -iTCP:${first.port}`));
        assert.match(e.describe(), /fix: /);
        return true;
      });
    } finally {
      metrics.dispose();
    }
    assert.equal((await fetch(`${first.url}/healthz`)).status, 200);
  });
});

void test('ports out of range are usage errors', async () => {
  const metrics = PipelineMetrics.attach(source(), { processMetrics: false });
  try {
    for (const port of [-1, 65536, 1.5, NaN]) {
      await assert.rejects(
        MetricsServer.start({ port, metrics, pipeline: source() }),
        (e: unknown) => isPipelineError(e) && e.code === 'usage' && /not a port number/.test(e.message),
      );
    }
  } finally {
    metrics.dispose();
  }
});

void test('routes: metrics, health, snapshot, 404, 405, HEAD; a non-loopback Host is refused', async () => {
  await withServer(source(), async (s) => {
    const m = await fetch(`${s.url}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(m.headers.get('cache-control'), 'no-store');
    assert.match(await m.text(), /^# HELP pipeline_tasks /m);

    const snap = await fetch(`${s.url}/snapshot.json`);
    assert.equal(snap.status, 200);
    assert.match(snap.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await snap.json()) as MetricsSnapshot;
    assert.equal(body.intervalMs, 5000);
    assert.equal(body.windowMs, 30 * 60_000);
    assert.ok(Array.isArray(body.series) && body.series.length >= 1);

    const head = await fetch(`${s.url}/healthz`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');

    const missing = await fetch(`${s.url}/nope`);
    assert.equal(missing.status, 404);
    await missing.text();
    const post = await fetch(`${s.url}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.text();

    assert.equal(
      (await rawGet(s.port, '/metrics', { host: 'evil.example:80' })).status,
      403,
      'DNS rebinding: a foreign Host is refused',
    );
    assert.equal((await rawGet(s.port, '/healthz', { host: `localhost:${s.port}` })).status, 200);
  });
});

void test('it listens on 127.0.0.1 only, and not after close', async () => {
  let port = 0;
  await withServer(source(), async (s) => {
    port = s.port;
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    if (external)
      await assert.rejects(fetch(`http://${external.address}:${s.port}/healthz`), 'not reachable on another interface');
    await assert.rejects(fetch(`http://[::1]:${s.port}/healthz`), 'not on IPv6 either');
  });
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'closed');
});

void test('readiness: the healthy leader; a leader with store warnings; a follower, with or without a leader', async () => {
  const ready = source();
  assert.equal(readiness(ready).ready, true);

  const warned = source({ storeWarnings: ['journal: dropped a torn record at line 7'] });
  await withServer(warned, async (s) => {
    const r = await fetch(`${s.url}/readyz`);
    assert.equal(r.status, 503);
    assert.equal(await r.text(), 'the state store has warnings: journal: dropped a torn record at line 7\n');
  });

  const follower = source({ isLeader: false, leader: other });
  await withServer(follower, async (s) => {
    const r = await fetch(`${s.url}/readyz?format=json`);
    assert.equal(r.status, 503);
    const j = (await r.json()) as ReturnType<typeof readiness>;
    assert.equal(j.ready, false);
    assert.equal(
      j.reason,
      'not the leader: led by VS Code window (pid 999 on elsewhere, since 2026-01-01T00:00:00.000Z)',
    );
    assert.deepEqual(j.leader, other);
    // The follower takes over: ready from the next request on.
    follower.isLeader = true;
    follower.leader = { ...other, pid: process.pid };
    assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
  });

  const alone = source({ isLeader: false, leader: null });
  assert.deepEqual(readiness(alone), {
    ready: false,
    reason: 'not the leader: no process leads the pipeline',
    isLeader: false,
    leader: null,
    storeWarnings: [],
  });
});
