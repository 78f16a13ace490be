// src/engine/observability/ — what a running pipeline tells the world: Prometheus metrics, the
// 127.0.0.1 endpoint, the JSON log, the metrics panel's data. Main file: this one (wiring for the CLI and
// the extension). It imports the model, ../errors, the store's leader info, the usage sums and the agent
// presets' names.
import { JsonLogger, type JsonLoggerOptions } from './jsonLogger';
import { MetricsServer } from './metricsServer';
import { PipelineMetrics, type MetricsSource, type PipelineMetricsOptions } from './pipelineMetrics';

/**
 * Observability for one open pipeline, as `pipeline run`, `pipeline metrics serve` and the extension
 * use it: the JSON log, the metrics, and their endpoint on 127.0.0.1.
 *
 * The extension calls it twice: once when it opens the pipeline, for metrics only (the metrics panel
 * works in a window that follows), and again when the window takes the lead, for the log and the
 * endpoint, sharing those metrics so `/metrics` counts from the same start as the panel.
 */
export interface ObservabilityOptions {
  /** Write `.pipeline/logs/pipeline.log` (default true). */
  log?: boolean | JsonLoggerOptions;
  /**
   * Keep metrics (default: only when a port is given). Metrics attached earlier are used as they
   * are and left to their owner: `close` does not dispose them.
   */
  metrics?: boolean | PipelineMetricsOptions | PipelineMetrics;
  /** Serve /metrics, /healthz, /readyz, /snapshot.json on 127.0.0.1 at this port (0: any free one). */
  port?: number;
}

/** What observability reads of a pipeline: `Pipeline` has all of it. */
export interface ObservedPipeline extends MetricsSource {
  readonly home: { readonly logsDir: string };
}

export interface Observability {
  readonly logger: JsonLogger | undefined;
  readonly metrics: PipelineMetrics | undefined;
  readonly server: MetricsServer | undefined;
  /** Stops the endpoint and the metrics it attached, and writes out and closes the log. */
  close(): Promise<void>;
}

export async function startObservability(p: ObservedPipeline, o: ObservabilityOptions = {}): Promise<Observability> {
  const logger = o.log === false ? undefined : JsonLogger.forPipeline(p, typeof o.log === 'object' ? o.log : {});
  const m = o.metrics;
  let owned: PipelineMetrics | undefined;
  if (!(m instanceof PipelineMetrics) && (o.port !== undefined || (m !== undefined && m !== false)))
    owned = PipelineMetrics.attach(p, typeof m === 'object' ? m : {});
  const metrics = m instanceof PipelineMetrics ? m : owned;
  let server: MetricsServer | undefined;
  if (o.port !== undefined && metrics) {
    try {
      server = await MetricsServer.start({ port: o.port, metrics, pipeline: p });
    } catch (e) {
      owned?.dispose();
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
        owned?.dispose();
        await logger?.close();
      })()),
  };
}
