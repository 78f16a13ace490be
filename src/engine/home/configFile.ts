import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PipelineError } from '../errors';
import { findJsonProblem } from '../import/jsonLocation';
import { configSchema, describeZodError, type ConfigIssueParams, type PipelineConfig } from '../model/schema';
import { writeFileAtomic } from '../atomicFile';

/**
 * Reading and writing `.pipeline/config.json`. The file is edited by people, so every problem is
 * reported with the file, the place (line and column for a syntax error, the JSON path for a wrong
 * value) and the fix, and a bad file is never rewritten.
 */

/** Line and column (1-based) of a character offset, for messages about JSON syntax errors. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      col = 1;
    } else col++;
  }
  return { line, column: col };
}

/** Parses JSON text, turning a syntax error into a PipelineError with line and column. */
export function parseJsonText(text: string, file: string, code: PipelineError['code']): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    // V8's message has a position for some errors only ("Unexpected end of JSON input" has none),
    // so the place comes from the import's scanner, which knows where any JSON text stops being JSON.
    const msg = e instanceof Error ? e.message : String(e);
    const m = /position (\d+)/.exec(msg);
    const problem = findJsonProblem(text);
    const offset = problem?.offset ?? (m?.[1] ? Number(m[1]) : undefined);
    const where =
      offset !== undefined
        ? (({ line, column }) => `line ${line}, column ${column}`)(lineColumn(text, offset))
        : undefined;
    throw new PipelineError(code, `${file} is not valid JSON: ${problem?.message ?? msg}.`, {
      file,
      ...(where ? { where } : {}),
      fix: 'Correct the JSON syntax at that place.',
    });
  }
}

export function parseConfig(text: string, file: string): PipelineConfig {
  const json = parseJsonText(text, file, 'invalid-config');
  const r = configSchema.safeParse(json);
  if (!r.success) {
    throw new PipelineError(
      'invalid-config',
      `${file} is not a valid pipeline configuration: ${describeZodError(r.error)}.`,
      {
        file,
        where: issuePath(r.error.issues[0]) || '(top level)',
        fix:
          fixOf(r.error.issues[0]) ??
          'Correct the value at that place, or delete the key to use its default (see README, "Configuration").',
      },
    );
  }
  return r.data;
}

/** The fix a problem carries itself (see ConfigIssueParams), where the general one would be wrong. */
function fixOf(issue: z.core.$ZodIssue | undefined): string | undefined {
  const params = issue?.code === 'custom' ? (issue.params as Partial<ConfigIssueParams> | undefined) : undefined;
  return typeof params?.fix === 'string' ? params.fix : undefined;
}

/** The JSON path of a problem; for a misspelt or unknown key, the path of that key itself. */
function issuePath(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return '';
  const path =
    issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
  return path.map(String).join('.');
}

export async function loadConfig(file: string): Promise<PipelineConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new PipelineError('not-initialised', `Cannot read ${file}: ${(e as Error).message}.`, {
      file,
      fix: 'Run `pipeline init` at the root of your git repository.',
    });
  }
  return parseConfig(text, file);
}

export async function writeConfig(file: string, config: z.input<typeof configSchema>): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(config, null, 2) + '\n');
}
