import { isPipelineError } from '../engine/errors';

/**
 * How the CLI talks: results to stdout, errors to stderr with what to do, and exit codes a script
 * can rely on (0 ok, 1 error, 2 usage, 3 "not ready" for checks).
 */
export const EXIT = { ok: 0, error: 1, usage: 2, notReady: 3 } as const;

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function println(line = ''): void {
  process.stdout.write(line + '\n');
}

export function reportError(e: unknown): number {
  if (isPipelineError(e)) {
    process.stderr.write(`pipeline: ${e.describe()}\n`);
    return e.code === 'usage' || e.code === 'invalid-id' ? EXIT.usage : EXIT.error;
  }
  const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
  process.stderr.write(`pipeline: unexpected error: ${msg}\n`);
  return EXIT.error;
}

/** A plain text table: columns padded to the widest cell, the last one left ragged. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)].join('\n');
}

export function splitList(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
