import type { Pipeline } from '../pipeline';
import { JsonLogger, type JsonLoggerOptions } from './jsonLogger';
import { MetricsServer } from './metricsServer';
import { PipelineMetrics, type PipelineMetricsOptions } from './pipelineMetrics';

/**
 * Observability for one open pipeline, as `pipeline run`, `pipeline metrics serve` and the extension
 * use it: the JSON log, the metrics, and their endpoint on 127.0.0.1.
 */
export interface ObservabilityOptions {
  /** Write `.pipeline/logs/pipeline.log` (default true). */
  log?: boolean | JsonLoggerOptions;
  /** Keep metrics (default: only when a port is given). */
  metrics?: boolean | PipelineMetricsOptions;
  /** Serve /metrics, /healthz, /readyz, /snapshot.json on 127.0.0.1 at this port (0: any free one). */
  port?: number;
}

export interface Observability {
  readonly logger: JsonLogger | undefined;
  readonly metrics: PipelineMetrics | undefined;
  readonly server: MetricsServer | undefined;
  /** Stops the endpoint and the metrics, and writes out and closes the log. */
  close(): Promise<void>;
}

export async function startObservability(p: Pipeline, o: ObservabilityOptions = {}): Promise<Observability> {
  const logger = o.log === false ? undefined : JsonLogger.forPipeline(p, typeof o.log === 'object' ? o.log : {});
  const wantMetrics = o.port !== undefined || (o.metrics !== undefined && o.metrics !== false);
  const metrics = wantMetrics ? PipelineMetrics.attach(p, typeof o.metrics === 'object' ? o.metrics : {}) : undefined;
  let server: MetricsServer | undefined;
  if (o.port !== undefined && metrics) {
    try {
      server = await MetricsServer.start({ port: o.port, metrics, pipeline: p });
    } catch (e) {
      metrics.dispose();
      await logger?.close();
      throw e;
    }
  }
  let closing: Promise<void> | undefined;
  return {
    logger,
    metrics,
    server,
    close: () =>
      (closing ??= (async () => {
        await server?.close();
        metrics?.dispose();
        await logger?.close();
      })()),
  };
}
