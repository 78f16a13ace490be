import type { Command } from 'commander';
import { PipelineError } from '../engine/errors';
import { DEFAULT_METRICS_PORT } from '../engine/observability/metricsServer';
import { startObservability } from '../engine/observability/observability';
import { Pipeline } from '../engine/pipeline';
import { println } from './output';

/**
 * `pipeline metrics serve`: the metrics endpoint of a pipeline led elsewhere (a `pipeline run` or a
 * VS Code window), from a follower that re-reads the state as it changes. Its /readyz answers 503
 * "not the leader: led by …", as it should: it never leads.
 */
export function registerMetricsCommand(program: Command): void {
  program
    .command('metrics')
    .description('Prometheus metrics and health endpoints on 127.0.0.1')
    .command('serve')
    .description(
      'serve /metrics, /healthz, /readyz and /snapshot.json of this pipeline, following it read-only, until interrupted',
    )
    .option('--port <port>', `the port on 127.0.0.1 (0: any free port)`, String(DEFAULT_METRICS_PORT))
    .action(async (o: { port: string }) => {
      const port = parsePort(o.port, '--port');
      const p = await Pipeline.open({ cwd: process.cwd(), role: 'follow', label: 'pipeline metrics serve' });
      try {
        const obs = await startObservability(p, { log: false, port });
        try {
          println(
            `Serving metrics of ${p.home.root} on ${obs.server!.url}/metrics (also /healthz, /readyz, /snapshot.json), following read-only. Ctrl-C stops.`,
          );
          await new Promise<void>((resolve) => {
            const stop = () => {
              process.off('SIGINT', stop);
              process.off('SIGTERM', stop);
              resolve();
            };
            process.on('SIGINT', stop);
            process.on('SIGTERM', stop);
          });
        } finally {
          await obs.close();
        }
      } finally {
        await p.close();
      }
    });
}

/** A port option's value: a whole number from 0 to 65535. */
export function parsePort(v: string, where: string): number {
  const n = /^\d{1,5}$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n > 65535) {
    throw new PipelineError('usage', `${JSON.stringify(v)} is not a port number.`, {
      where,
      fix: `Use a whole number from 1 to 65535 (default ${DEFAULT_METRICS_PORT}), or 0 for any free port.`,
    });
  }
  return n;
}
