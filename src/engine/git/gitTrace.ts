import { appendFileSync } from 'node:fs';
import { observeGit } from './gitMetrics';

/**
 * A trace of every git command and lock wait of this process, one JSON line each, for benchmarks
 * that run the pipeline as a process of its own (bench/scale.bench.ts) and so cannot listen to
 * gitMetrics.ts themselves. Named by the environment variable PIPELINE_GIT_TRACE (a file path);
 * without it nothing is recorded. Lines are buffered and appended a few times a second and at exit,
 * so tracing adds no write per command to the paths it measures.
 */
export const GIT_TRACE_ENV = 'PIPELINE_GIT_TRACE';

const FLUSH_MS = 500;

let started = false;

/** Starts the trace when PIPELINE_GIT_TRACE names a file (once per process). */
export function startGitTraceFromEnv(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[GIT_TRACE_ENV];
  if (started || !file) return;
  started = true;
  let lines: string[] = [];
  const flush = (): void => {
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    try {
      appendFileSync(file, text);
    } catch {
      // A trace that cannot be written is lost; the pipeline goes on.
    }
  };
  // Each line says when the event ended (epoch ms), so it lines up with the pipeline's own events.
  observeGit((e) => lines.push(`${JSON.stringify({ at: Date.now(), ...e })}\n`));
  setInterval(flush, FLUSH_MS).unref();
  process.on('exit', flush);
}
