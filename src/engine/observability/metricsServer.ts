import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PipelineError } from '../errors';
import type { Disposable } from '../model/events';
import type { LeaderInfo } from '../store/leaderLease';
import type { PipelineMetrics } from './pipelineMetrics';

/**
 * The metrics endpoint: a plain node:http server on 127.0.0.1 only (never another interface).
 *
 * - `GET /metrics`       the Prometheus text exposition of the pipeline's registry
 * - `GET /healthz`       200 while the process lives
 * - `GET /readyz`        200 when this process leads and its store has no warnings; else 503 with
 *                        the reason (naming the leader when another process leads); plain text,
 *                        or JSON with `Accept: application/json` or `?format=json`
 * - `GET /snapshot.json` the metrics panel's snapshot (time series and current figures)
 *
 * Requests whose Host header is not a loopback name are refused (a web page cannot reach the
 * endpoint through DNS rebinding).
 */

export const METRICS_HOST = '127.0.0.1';
export const DEFAULT_METRICS_PORT = 9464;

/** What readiness reads of a pipeline: `Pipeline` has all of it. */
export interface ReadinessSource {
  readonly isLeader: boolean;
  readonly leader: LeaderInfo | null;
  readonly storeWarnings: readonly string[];
}

export interface Readiness {
  ready: boolean;
  /** One sentence: why it is ready or not. */
  reason: string;
  isLeader: boolean;
  leader: LeaderInfo | null;
  storeWarnings: string[];
}

/** Is this process the pipeline's healthy leader? With the reason, for `/readyz` and the status bar. */
export function readiness(p: ReadinessSource): Readiness {
  const leader = p.leader;
  const storeWarnings = [...p.storeWarnings];
  const base = { isLeader: p.isLeader, leader, storeWarnings };
  if (!p.isLeader) {
    const by = leader
      ? `led by ${leader.label || 'another process'} (pid ${leader.pid} on ${leader.host}, since ${leader.since})`
      : 'no process leads the pipeline';
    return { ...base, ready: false, reason: `not the leader: ${by}` };
  }
  if (storeWarnings.length > 0)
    return { ...base, ready: false, reason: `the state store has warnings: ${storeWarnings.join('; ')}` };
  return { ...base, ready: true, reason: `ready: this process leads the pipeline (pid ${leader?.pid ?? process.pid})` };
}

export interface MetricsServerOptions {
  /** 1–65535, or 0 for any free port (see `port` of the result). */
  port: number;
  metrics: PipelineMetrics;
  pipeline: ReadinessSource;
}

export class MetricsServer implements Disposable {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    /** The port it listens on (the one picked when 0 was asked). */
    readonly port: number,
  ) {}

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://${METRICS_HOST}:${this.port}`;
  }

  /**
   * Listens on 127.0.0.1:`port`. A port in use, or one that needs privileges, is a PipelineError
   * naming the port and what to do.
   */
  static async start(o: MetricsServerOptions): Promise<MetricsServer> {
    assertPort(o.port);
    const server = createServer((req, res) => void handle(req, res, o));
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 15_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        server.off('listening', onListening);
        reject(listenError(e, o.port));
      };
      const onListening = () => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ port: o.port, host: METRICS_HOST, exclusive: true });
    });
    const port = (server.address() as AddressInfo).port;
    return new MetricsServer(server, port);
  }

  /** Stops listening and closes open connections. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  dispose(): void {
    void this.close();
  }
}

export function assertPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PipelineError('usage', `${JSON.stringify(port)} is not a port number.`, {
      where: 'port',
      fix: `Use a whole number from 1 to 65535 (default ${DEFAULT_METRICS_PORT}), or 0 for any free port.`,
    });
  }
}

function listenError(e: NodeJS.ErrnoException, port: number): Error {
  if (e.code === 'EADDRINUSE') {
    return new PipelineError(
      'busy',
      `Port ${port} on ${METRICS_HOST} is already in use, so the metrics endpoint cannot listen there.`,
      {
        where: `${METRICS_HOST}:${port}`,
        fix: `Stop the process that listens on port ${port} (find it with \`lsof -iTCP:${port} -sTCP:LISTEN\`), or choose another port: \`--metrics-port <port>\` for \`pipeline run\`, \`--port <port>\` for \`pipeline metrics serve\`, or the agentPipeline.metrics.port setting.`,
      },
    );
  }
  if (e.code === 'EACCES') {
    return new PipelineError('usage', `Port ${port} on ${METRICS_HOST} needs privileges this process does not have.`, {
      where: `${METRICS_HOST}:${port}`,
      fix: `Choose a port above 1023 (the default is ${DEFAULT_METRICS_PORT}).`,
    });
  }
  return new PipelineError('usage', `The metrics endpoint cannot listen on ${METRICS_HOST}:${port}: ${e.message}`, {
    where: `${METRICS_HOST}:${port}`,
  });
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

function hostAllowed(host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return LOOPBACK_HOSTS.has(name);
}

function send(res: ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

async function handle(req: IncomingMessage, res: ServerResponse, o: MetricsServerOptions): Promise<void> {
  const head = req.method === 'HEAD';
  try {
    if (!hostAllowed(req.headers.host))
      return send(res, 403, TEXT, 'forbidden: this endpoint answers only to 127.0.0.1 and localhost\n', head);
    if (req.method !== 'GET' && !head) {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, TEXT, 'method not allowed\n', false);
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    switch (url.pathname) {
      case '/metrics':
        return send(res, 200, o.metrics.contentType, await o.metrics.metricsText(), head);
      case '/healthz':
        return send(res, 200, TEXT, 'ok\n', head);
      case '/readyz': {
        const r = readiness(o.pipeline);
        const status = r.ready ? 200 : 503;
        const json =
          url.searchParams.get('format') === 'json' || (req.headers.accept ?? '').includes('application/json');
        return json
          ? send(res, status, JSON_TYPE, JSON.stringify(r) + '\n', head)
          : send(res, status, TEXT, r.reason + '\n', head);
      }
      case '/snapshot.json':
        return send(res, 200, JSON_TYPE, JSON.stringify(o.metrics.metricsSnapshot()) + '\n', head);
      case '/':
        return send(res, 200, TEXT, 'Agent Pipeline metrics: /metrics /healthz /readyz /snapshot.json\n', head);
      default:
        return send(res, 404, TEXT, 'not found: try /metrics, /healthz, /readyz or /snapshot.json\n', head);
    }
  } catch (e) {
    if (!res.headersSent) send(res, 500, TEXT, `error: ${e instanceof Error ? e.message : String(e)}\n`, head);
    else res.destroy();
  }
}
