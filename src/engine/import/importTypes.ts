import type { z } from 'zod';
import { PipelineError } from '../errors';
import type { Priority, TaskSpecParsed } from '../model/schema';
import { formatJsonPath, type JsonPath } from './jsonLocation';

/**
 * What `pipeline task import` produces, shared by the format readers (Task Master, the seed's state)
 * and the entry points in taskImport.ts. See docs/task-import.md for the mapping.
 */

export type ImportFormat = 'seed-state' | 'taskmaster-tagged' | 'taskmaster-legacy';

/** The statuses an import can give: work that was in flight elsewhere starts again as pending. */
export type ImportedStatus = 'pending' | 'done' | 'cancelled' | 'blocked';

export interface ImportedTask {
  spec: TaskSpecParsed & { id: string };
  status: ImportedStatus;
  /** Why the task is blocked (set when `status` is `blocked`, naming the original status). */
  reason?: string;
  /** Where in the file the task came from, as a JSON path: `master.tasks[3].subtasks[1]`. */
  source: string;
}

export interface ImportResult {
  format: ImportFormat;
  /** Prerequisites before dependents where the graph allows it; otherwise the file's order. */
  tasks: ImportedTask[];
  /** Things the user should know: lossy mappings, ignored parts of the file, suspicious data. */
  warnings: string[];
  /** The Task Master tag that was imported (tagged and legacy files only). */
  tag?: string;
}

export interface ImportOptions {
  /** Prefix of the ids made from Task Master's numbers: `TM` gives `TM-12` and `TM-12.3`. */
  prefix?: string;
  /** The Task Master tag to import; by default the current tag, else `master`. */
  tag?: string;
  /**
   * Where `tag` came from when it was not given by the user (`.taskmaster/state.json`). A tag the
   * user names must exist; a tag found in Task Master's state is only a default, so a missing one
   * falls back to `master` with a warning.
   */
  tagSource?: string;
}

export interface ImportFileOptions extends ImportOptions {
  /** Files larger than this are refused before they are read. */
  maxBytes?: number;
}

export const DEFAULT_PREFIX = 'TM';
export const DEFAULT_TAG = 'master';
/** Large enough for ~100 000 Task Master tasks with details; small enough to parse in memory. */
export const MAX_IMPORT_BYTES = 50 * 1024 * 1024;
/** The same rule as `taskPrefix` in the configuration, so imported ids look like generated ones. */
export const PREFIX_PATTERN = /^[A-Z][A-Z0-9]{0,15}$/;

/**
 * A task as a format reader builds it, before the spec is validated. `fields` names the input field
 * each spec field came from (under `path`), so a validation error names the place in the file rather
 * than our field name; a spec field without one is reported at `path`. It is one shared object per
 * format, because a large import makes tens of thousands of drafts.
 */
export interface TaskDraft {
  spec: {
    id: string;
    title: string;
    description: string;
    prerequisites: string[];
    priority: Priority;
    paths: string[];
    labels: string[];
  };
  status: ImportedStatus;
  reason?: string;
  path: JsonPath;
  fields: Readonly<Partial<Record<keyof TaskDraft['spec'], string>>>;
}

export function importError(file: string, where: string, message: string, fix: string): PipelineError {
  return new PipelineError('import', message, { file, where, fix });
}

/** One error for a failed zod parse: the first problem's path is the place, the first few are listed. */
export function zodImportError(
  file: string,
  base: JsonPath,
  err: z.ZodError,
  what: string,
  fix: string,
): PipelineError {
  const issues = err.issues
    .slice(0, 3)
    .map((i) => `${formatJsonPath([...base, ...i.path.map(pathSegment)])}: ${i.message}`);
  const more = err.issues.length > 3 ? ` (and ${err.issues.length - 3} more)` : '';
  const first = err.issues[0];
  const where = formatJsonPath([...base, ...(first ? first.path.map(pathSegment) : [])]);
  return importError(file, where, `${file} is not a valid ${what}: ${issues.join('; ')}${more}.`, fix);
}

function pathSegment(p: PropertyKey): string | number {
  return typeof p === 'number' ? p : String(p);
}

/**
 * Warnings grouped by kind, so a file with thousands of tasks gives a few readable lines rather than
 * thousands: "Unknown priority, imported as medium (2): TM-4 ("urgent"), TM-9 ("p1")".
 */
export class ImportWarnings {
  private readonly notes: string[] = [];
  private readonly groups = new Map<string, string[]>();
  static readonly EXAMPLES = 10;

  note(text: string): void {
    this.notes.push(text);
  }

  add(group: string, item: string): void {
    const items = this.groups.get(group);
    if (items) items.push(item);
    else this.groups.set(group, [item]);
  }

  list(): string[] {
    const out = [...this.notes];
    for (const [group, items] of this.groups) {
      const shown = items.slice(0, ImportWarnings.EXAMPLES).join(', ');
      const more = items.length > ImportWarnings.EXAMPLES ? `, and ${items.length - ImportWarnings.EXAMPLES} more` : '';
      out.push(`${group} (${items.length}): ${shown}${more}.`);
    }
    return out;
  }
}
