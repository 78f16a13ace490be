import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PipelineError } from '../errors';
import { describeJsonSyntaxError, formatJsonPath, placeOfPath, stripByteOrderMark } from '../import/jsonLocation';
import { configSchema, type ConfigIssueParams, type PipelineConfig } from '../model/configSchema';
import { describeZodError } from '../model/schema';
import { writeFileAtomic } from '../store/fsUtil';

/**
 * Reading and writing `.pipeline/config.json`. The file is edited by people, so every problem is
 * reported with the file, the place (line and column for a syntax error, the JSON path for a wrong
 * value) and the fix, and a bad file is never rewritten.
 */

/** Parses JSON text, turning a syntax error into a PipelineError with line and column. */
export function parseJsonText(text: string, file: string, code: PipelineError['code']): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    // V8's message has a position for some errors only ("Unexpected end of JSON input" has none),
    // so the place comes from the import's JSON locator, shared by every file a person edits.
    const { message, line, column } = describeJsonSyntaxError(text, e);
    throw new PipelineError(code, `${file} is not valid JSON: ${message} at line ${line}, column ${column}.`, {
      file,
      where: `line ${line}, column ${column}`,
      fix: 'Correct the JSON syntax at that place.',
    });
  }
}

export function parseConfig(raw: string, file: string): PipelineConfig {
  // A byte-order mark (Windows editors write one) is not part of the JSON.
  const text = stripByteOrderMark(raw);
  const json = parseJsonText(text, file, 'invalid-config');
  // Parsed once per process: zod's generated fast path (compiled with new Function on first use)
  // costs a command more to build than it saves on one parse.
  const r = configSchema.safeParse(json, { jitless: true });
  if (!r.success) {
    const path = issuePath(r.error.issues[0]);
    const place = path.length ? placeOfPath(text, path) : null;
    const at = place ? ` (line ${place.line}, column ${place.column})` : '';
    throw new PipelineError(
      'invalid-config',
      `${file} is not a valid pipeline configuration: ${describeZodError(r.error)}${at}.`,
      {
        file,
        where: formatJsonPath(path),
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
function issuePath(issue: z.core.$ZodIssue | undefined): Array<string | number> {
  if (!issue) return [];
  const path =
    issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
  return path.map((p) => (typeof p === 'number' ? p : String(p)));
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
