import { isPipelineError } from '../engine/errors';

/**
 * How the CLI talks: results to stdout, errors to stderr with what to do, and exit codes a script
 * can rely on (0 ok, 1 error, 2 usage, 3 "not ready" for checks).
 *
 * Titles, descriptions, reasons, commands and whatever agents write are not ours: an escape sequence
 * in them would be obeyed by the terminal (rewrite the screen, set the window title, plant a link),
 * so every line the CLI prints goes through `printable`, which shows such characters instead.
 */
export const EXIT = { ok: 0, error: 1, usage: 2, notReady: 3 } as const;

/**
 * Characters a terminal may act on rather than show: C0 controls, DEL, C1 controls (8-bit CSI and
 * OSC among them), and the Unicode line separators and bidirectional overrides that make text read
 * differently from what it is.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point here.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
/** Those of them JSON.stringify leaves as they are (it escapes C0 controls itself). */
const RAW_IN_JSON = /[\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text from a user or an agent, safe to print: every control character is shown as its escape
 * (`\x1b`, `\u202e`), so ESC [ 2 J prints as `\x1b[2J` and does nothing. With `multiline`, line
 * breaks and tabs are kept (a description); otherwise they are shown too, so one field stays on one
 * line of a table.
 */
export function printable(text: string, o: { multiline?: boolean } = {}): string {
  return text.replace(CONTROL, (c) => {
    if (o.multiline && (c === '\n' || c === '\t')) return c;
    const short = SHORT[c];
    if (short) return short;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * JSON as printed: exactly the value (it parses back to the same strings), with the characters
 * JSON.stringify leaves raw (C1 controls, separators, bidi overrides) written as \u escapes too.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function printJson(value: unknown): void {
  process.stdout.write(jsonText(value, 2) + '\n');
}

/** Prints a line (or lines) of text; whatever it holds from users or agents is shown, not obeyed. */
export function println(line = ''): void {
  process.stdout.write(printable(line, { multiline: true }) + '\n');
}

/** Writes to stderr, as println does to stdout. */
export function eprintln(line: string): void {
  process.stderr.write(printable(line, { multiline: true }) + '\n');
}

export function reportError(e: unknown): number {
  if (isPipelineError(e)) {
    eprintln(`pipeline: ${e.describe()}`);
    return e.code === 'usage' || e.code === 'invalid-id' ? EXIT.usage : EXIT.error;
  }
  const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
  eprintln(`pipeline: unexpected error: ${msg}`);
  return EXIT.error;
}

/**
 * A plain text table: columns padded to the widest cell, the last one left ragged. Cells are shown
 * with `printable`, each on one line, so a title with a line break cannot break the table.
 */
export function table(header: string[], rows: string[][]): string {
  const safe = rows.map((r) => r.map((c) => printable(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...safe.map(fmt)].join('\n');
}

export function splitList(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
