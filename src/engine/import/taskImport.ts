// src/engine/import/ — tasks from other tools and back: the seed's state JSON and Task Master files,
// with error places in the file. Main file: this one. It imports only the model and ../errors.
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PipelineError } from '../errors';
import { taskSpecSchema, type TaskSpecParsed } from '../model/schema';
import type { NewTask } from '../model/taskFactory';
import { orderWithoutCycles } from './importCycles';
import {
  DEFAULT_PREFIX,
  ImportWarnings,
  MAX_IMPORT_BYTES,
  PREFIX_PATTERN,
  importError,
  type ImportFileOptions,
  type ImportFormat,
  type ImportOptions,
  type ImportResult,
  type ImportedTask,
  type TaskDraft,
} from './importTypes';
import {
  assertNoDuplicateKeys,
  formatJsonPath,
  lineColumn,
  parseJsonPath,
  parseJsonText,
  placeOfPath,
  stripByteOrderMark,
} from './jsonLocation';
import { readSeedState } from './seedStateFormat';
import { readTaskMaster } from './taskMasterFormat';

export type { ImportFileOptions, ImportFormat, ImportOptions, ImportResult, ImportedTask } from './importTypes';

/**
 * `pipeline task import <file>`: turns a file of tasks made elsewhere into task specs the pipeline
 * can add, with their statuses, in an order where prerequisites come first.
 *
 * Formats, told apart by shape (see docs/task-import.md for the mapping of each):
 * - `seed-state`: the seed's state JSON, `tasks` an object keyed by id, with `queues`, `agents`...
 * - `taskmaster-tagged`: Task Master's tasks.json since v0.17, `{ "<tag>": { "tasks": [...] } }`.
 * - `taskmaster-legacy`: Task Master's untagged tasks.json, `{ "tasks": [...] }`.
 *
 * Nothing here writes anything: the caller adds the tasks. A prerequisite cycle is refused here,
 * naming the file, unless every task on it is done (importCycles.ts).
 * Every problem with the input is a PipelineError('import') naming the file, the place (a JSON path,
 * or line:column when the text is not JSON) and the fix.
 */

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const SHAPES_FIX =
  'Import Task Master\'s tasks.json ({"tasks": [...]} or {"master": {"tasks": [...]}}) or a pipeline state ({"tasks": {"TASK-001": {...}}, "queues": {...}}).';

/** Tells the formats apart by their shape; the readers then validate the details. */
export function detectFormat(root: unknown, file: string): { format: ImportFormat; root: Record<string, unknown> } {
  if (!isRecord(root)) {
    const found = Array.isArray(root) ? 'an array' : root === null ? 'null' : `a ${typeof root}`;
    throw importError(file, '(top level)', `${file} holds ${found}, not an object of tasks.`, SHAPES_FIX);
  }
  if ('tasks' in root) {
    if (Array.isArray(root.tasks)) return { format: 'taskmaster-legacy', root };
    if (isRecord(root.tasks)) return { format: 'seed-state', root };
    throw importError(
      file,
      'tasks',
      `In ${file}, "tasks" is neither a list (Task Master) nor an object keyed by task id (pipeline state).`,
      SHAPES_FIX,
    );
  }
  if ('queues' in root || 'orchestration_mode' in root || 'agents' in root) return { format: 'seed-state', root };
  const keys = Object.keys(root);
  if (keys.length === 0)
    throw importError(file, '(top level)', `${file} is an empty object: there are no tasks in it.`, SHAPES_FIX);
  if (keys.some((k) => isRecord(root[k]) && 'tasks' in root[k])) return { format: 'taskmaster-tagged', root };
  throw importError(
    file,
    '(top level)',
    `${file} is neither a Task Master tasks file nor a pipeline state: it has no "tasks" (keys: ${keys.slice(0, 5).join(', ')}).`,
    SHAPES_FIX,
  );
}

/** Parses a file's text; `file` names it in messages and errors. Pure: no I/O. */
export function detectAndParse(text: string, file: string, opts: ImportOptions = {}): ImportResult {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new PipelineError('usage', `Invalid id prefix ${JSON.stringify(prefix)}.`, {
      where: '--prefix',
      fix: 'Use 1 to 16 upper-case letters and digits, starting with a letter, such as TM.',
    });
  }
  const body = stripByteOrderMark(text);
  const parsed = parseJsonText(body, file);
  try {
    return readParsed(parsed, body, file, opts, prefix);
  } catch (err) {
    throw withLineAndColumn(err, body);
  }
}

/**
 * An import error placed by a JSON path also says where that is in the text, found with
 * jsonc-parser: in a file of thousands of tasks, `master.tasks[4211].subtasks[2].id` alone is hard
 * to find. Only on the error path, so a good file is parsed once.
 */
function withLineAndColumn(err: unknown, body: string): unknown {
  if (!(err instanceof PipelineError) || err.code !== 'import' || !err.details.where) return err;
  const path = parseJsonPath(err.details.where);
  // A missing key has no place of its own: the nearest object that is there says where to look.
  for (let n = path?.length ?? 0; path && n > 0; n--) {
    const place = placeOfPath(body, path.slice(0, n));
    if (!place) continue;
    const what = n === path.length ? 'It' : formatJsonPath(path.slice(0, n));
    return new PipelineError(
      'import',
      `${err.message} ${what} is at line ${place.line}, column ${place.column}.`,
      err.details,
    );
  }
  return err;
}

function readParsed(parsed: unknown, body: string, file: string, opts: ImportOptions, prefix: string): ImportResult {
  const { format, root } = detectFormat(parsed, file);
  const warnings = new ImportWarnings();

  let drafts: TaskDraft[];
  let tag: string | undefined;
  if (format === 'seed-state') {
    assertNoDuplicateKeys(body, file);
    if (opts.prefix !== undefined)
      warnings.note("--prefix applies to Task Master files; the state's own ids were kept.");
    if (opts.tag !== undefined && !opts.tagSource) warnings.note('--tag applies to Task Master files and was ignored.');
    drafts = readSeedState(root, file, warnings);
  } else {
    ({ drafts, tag } = readTaskMaster(root, format, file, opts, prefix, warnings));
  }

  const tasks = orderWithoutCycles(
    drafts.map((d) => finish(d, file)),
    drafts,
    file,
    warnings,
  );
  warnAboutInconsistencies(tasks, warnings);
  return { format, tasks, warnings: warnings.list(), ...(tag !== undefined ? { tag } : {}) };
}

/** Validates a draft as a task spec, naming the place in the file when it does not pass. */
function finish(draft: TaskDraft, file: string): ImportedTask {
  const r = taskSpecSchema.safeParse(draft.spec);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue?.path[0];
    const input = typeof field === 'string' ? draft.fields[field as keyof TaskDraft['fields']] : undefined;
    // Paths and labels are copied one to one, so the index inside them still points at the input.
    const rest =
      input && (field === 'paths' || field === 'labels')
        ? (issue?.path.slice(1) ?? []).map((p) => (typeof p === 'number' ? p : String(p)))
        : [];
    const where = formatJsonPath(input ? [...draft.path, input, ...rest] : draft.path);
    const problems = r.error.issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || 'task'}: ${i.message}`);
    throw importError(
      file,
      where,
      `${draft.spec.id} (${formatJsonPath(draft.path)}) cannot be imported: ${problems.join('; ')}.`,
      'Correct that field in the file, then import again.',
    );
  }
  const spec: TaskSpecParsed & { id: string } = { ...r.data, id: draft.spec.id };
  return {
    spec,
    status: draft.status,
    ...(draft.reason ? { reason: draft.reason } : {}),
    source: formatJsonPath(draft.path),
  };
}

/** States that import faithfully but will surprise in the pipeline are named, never changed. */
function warnAboutInconsistencies(tasks: readonly ImportedTask[], warnings: ImportWarnings): void {
  const byId = new Map(tasks.map((t) => [t.spec.id, t]));
  for (const t of tasks) {
    for (const p of t.spec.prerequisites) {
      const pre = byId.get(p);
      if (!pre) continue;
      if (t.status === 'done' && (pre.status === 'pending' || pre.status === 'blocked')) {
        warnings.add(
          'Done tasks whose prerequisites are not done (they stay done)',
          `${t.spec.id} (${p} is ${pre.status})`,
        );
        break;
      }
      if ((t.status === 'pending' || t.status === 'blocked') && pre.status === 'cancelled') {
        warnings.add(
          'Tasks that wait on a cancelled prerequisite (they start only once it is removed)',
          `${t.spec.id} (${p})`,
        );
        break;
      }
    }
  }
}

/**
 * Reads and parses a file. Refuses, before parsing, what cannot be a tasks file: one larger than
 * `maxBytes` (50 MB by default, checked before reading), a binary file, a file that is not UTF-8.
 *
 * For Task Master's standard layout (`.taskmaster/tasks/tasks.json`) without `tag`, the default tag
 * is Task Master's current one: `currentTag` in `.taskmaster/state.json`, else `global.defaultTag` in
 * `.taskmaster/config.json`, else `master` — the order Task Master itself resolves it in.
 */
export async function importFile(file: string, opts: ImportFileOptions = {}): Promise<ImportResult> {
  const maxBytes = opts.maxBytes ?? MAX_IMPORT_BYTES;
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile())
      throw importError(
        file,
        '(file)',
        `${file} is not a file.`,
        'Give the path of a Task Master tasks.json or a pipeline state file.',
      );
    size = info.size;
  } catch (err) {
    throw readError(file, err);
  }
  if (size > maxBytes) throw tooLarge(file, size, maxBytes);
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw readError(file, err);
  }
  // The file may have grown between stat and read.
  if (buf.length > maxBytes) throw tooLarge(file, buf.length, maxBytes);
  const text = decodeText(buf, file);

  const { maxBytes: _limit, ...parseOpts } = opts;
  if (parseOpts.tag === undefined) {
    const current = await currentTaskMasterTag(file);
    if (current) return detectAndParse(text, file, { ...parseOpts, tag: current.tag, tagSource: current.source });
  }
  return detectAndParse(text, file, parseOpts);
}

/** The imported tasks as the `addTasks` mutation takes them, each noting the file and the place it came from. */
export function importedNewTasks(file: string, imported: ImportResult): NewTask[] {
  return imported.tasks.map((t) => ({
    spec: t.spec,
    status: t.status,
    source: `${file} ${t.source}`,
    ...(t.reason ? { reason: t.reason } : {}),
  }));
}

function readError(file: string, err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  const code = err instanceof Error && 'code' in err ? String(err.code) : '';
  if (code === 'ENOENT')
    return importError(
      file,
      '(file)',
      `${file} does not exist.`,
      'Check the path (Task Master keeps its tasks in .taskmaster/tasks/tasks.json).',
    );
  if (code === 'EACCES' || code === 'EPERM')
    return importError(file, '(file)', `${file} cannot be read: permission denied.`, "Check the file's permissions.");
  if (code === 'EISDIR')
    return importError(
      file,
      '(file)',
      `${file} is a directory.`,
      'Give the path of a Task Master tasks.json or a pipeline state file.',
    );
  const message = err instanceof Error ? err.message : String(err);
  return importError(
    file,
    '(file)',
    `${file} cannot be read: ${message}.`,
    'Check the path and the file, then import again.',
  );
}

function sizeText(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(1)} MB` : `${bytes} bytes`;
}

function tooLarge(file: string, size: number, max: number): PipelineError {
  return importError(
    file,
    '(whole file)',
    `${file} is ${sizeText(size)}, more than the import limit of ${sizeText(max)}.`,
    'Import it in parts (Task Master: one tag at a time, in files of their own), or leave out finished tasks; then import again.',
  );
}

/** Git's test for binary content (a NUL in the first 8000 bytes), then strict UTF-8. */
function decodeText(buf: Buffer, file: string): string {
  if ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff)) {
    throw importError(
      file,
      '1:1',
      `${file} is UTF-16 text; the import reads UTF-8.`,
      'Save the file as UTF-8, then import again.',
    );
  }
  const nul = buf.subarray(0, 8000).indexOf(0);
  if (nul !== -1) {
    throw importError(
      file,
      `byte ${nul}`,
      `${file} looks like a binary file (a NUL byte at offset ${nul}), not JSON text.`,
      'Give the path of a Task Master tasks.json or a pipeline state file.',
    );
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    const loose = buf.toString('utf8');
    const { line, column } = lineColumn(loose, Math.max(0, loose.indexOf('\uFFFD')));
    throw importError(
      file,
      `${line}:${column}`,
      `${file} is not UTF-8 text: an invalid byte sequence at line ${line}, column ${column}.`,
      'Save the file as UTF-8, then import again.',
    );
  }
}

async function readSmallJson(path: string): Promise<unknown> {
  try {
    const info = await stat(path);
    if (!info.isFile() || info.size > 1024 * 1024) return undefined;
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch {
    // Task Master's own state is a hint for the default tag; when it is unreadable, so is the hint.
    return undefined;
  }
}

/** Task Master's current tag for a tasks.json in its standard place, if it has one. */
async function currentTaskMasterTag(file: string): Promise<{ tag: string; source: string } | null> {
  const tasksDir = dirname(resolve(file));
  const home = dirname(tasksDir);
  if (basename(tasksDir) !== 'tasks' || basename(home) !== '.taskmaster') return null;
  const state = await readSmallJson(join(home, 'state.json'));
  // tm-core's RuntimeStateManager also reads `activeTag`, an older name of the same field.
  const current = isRecord(state) ? (state.currentTag ?? state.activeTag) : undefined;
  if (typeof current === 'string' && current.trim()) return { tag: current.trim(), source: '.taskmaster/state.json' };
  const config = await readSmallJson(join(home, 'config.json'));
  const global = isRecord(config) ? config.global : undefined;
  const fallback = isRecord(global) ? global.defaultTag : undefined;
  if (typeof fallback === 'string' && fallback.trim())
    return { tag: fallback.trim(), source: '.taskmaster/config.json (global.defaultTag)' };
  return null;
}
