import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PipelineError } from '../../../src/engine/errors';
import type { ImportResult, ImportedTask } from '../../../src/engine/import/importTypes';

/** Helpers shared by the import tests. */

export const FIXTURES = join(__dirname, 'fixtures');

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

export async function fixtureText(...parts: string[]): Promise<string> {
  return readFile(fixture(...parts), 'utf8');
}

/** Runs `fn` in a fresh temporary directory that is removed afterwards, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-import-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The import error `fn` throws, checked to carry what the CLI prints: file, place and fix. */
export function importErrorOf(fn: () => unknown, file?: string): PipelineError {
  try {
    fn();
  } catch (e) {
    return checked(e, file);
  }
  assert.fail('expected a PipelineError, but nothing was thrown');
}

export async function importRejection(p: Promise<unknown>, file?: string): Promise<PipelineError> {
  try {
    await p;
  } catch (e) {
    return checked(e, file);
  }
  assert.fail('expected a PipelineError, but the promise resolved');
}

function checked(e: unknown, file: string | undefined): PipelineError {
  assert.ok(e instanceof PipelineError, `expected a PipelineError, got ${String(e)}`);
  assert.equal(e.code, 'import', e.describe());
  if (file !== undefined) assert.equal(e.details.file, file);
  assert.ok(e.details.where, `no place in: ${e.describe()}`);
  assert.ok(e.details.fix, `no fix in: ${e.describe()}`);
  return e;
}

export function byId(result: ImportResult): Map<string, ImportedTask> {
  return new Map(result.tasks.map((t) => [t.spec.id, t]));
}

export function task(result: ImportResult, id: string): ImportedTask {
  const t = result.tasks.find((x) => x.spec.id === id);
  assert.ok(t, `${id} is not among ${result.tasks.map((x) => x.spec.id).join(', ')}`);
  return t;
}

/** Every prerequisite that is in the result comes before its dependent. */
export function assertPrerequisitesFirst(result: ImportResult): void {
  const position = new Map(result.tasks.map((t, i) => [t.spec.id, i]));
  result.tasks.forEach((t, i) => {
    for (const p of t.spec.prerequisites) {
      const j = position.get(p);
      if (j !== undefined) assert.ok(j < i, `${p} (at ${j}) should come before ${t.spec.id} (at ${i})`);
    }
  });
}

export function warningMatching(result: ImportResult, pattern: RegExp): string {
  const w = result.warnings.find((x) => pattern.test(x));
  assert.ok(w, `no warning matches ${String(pattern)} among:\n${result.warnings.join('\n')}`);
  return w;
}
