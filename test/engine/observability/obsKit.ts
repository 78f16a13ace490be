import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

/** Helpers of the observability tests: temporary repositories, Prometheus text, HTTP. */

export const REPO_ROOT = join(__dirname, '..', '..', '..');
export const SCRIPTED_AGENT = join(REPO_ROOT, 'dist', 'scriptedAgent.js');
export const TSX_LOADER = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');

export function assertBuilt(): void {
  if (!existsSync(SCRIPTED_AGENT)) throw new Error(`${SCRIPTED_AGENT} is missing: run \`npm run build\` first.`);
}

/** A temporary directory for a repository; `cleanup` also removes the worktrees beside it. */
export async function tempRepoDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const parent = await mkdtemp(join(tmpdir(), `obs-${prefix}-`));
  const dir = join(parent, 'repo');
  return {
    dir,
    cleanup: async () => {
      await rm(parent, { recursive: true, force: true });
      await rm(join(dirname(dir), `${basename(dir)}.pipeline-worktrees`), { recursive: true, force: true });
    },
  };
}

/** Changes `.pipeline/config.json` of the repository at `dir`. */
export async function editConfig(dir: string, fn: (c: Record<string, unknown>) => void): Promise<void> {
  const file = join(dir, '.pipeline', 'config.json');
  const c = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  fn(c);
  await writeFile(file, JSON.stringify(c, null, 2) + '\n');
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it for these tests: no escapes in label values but \" and \\). */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, '$1');
    }
    out.push({ name: m[1]!, labels, value: m[4] === '+Inf' ? Infinity : Number(m[4]) });
  }
  return out;
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function metric(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

export function has(samples: Sample[], name: string): boolean {
  return samples.some((s) => s.name === name);
}

export async function scrape(base: string): Promise<Sample[]> {
  const r = await fetch(`${base}/metrics`);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parseProm(await r.text());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function eventually<T>(
  fn: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
