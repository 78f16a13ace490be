/**
 * Errors the user can act on. Every error the engine raises for bad input names what is at fault
 * (a file, an argument, an id), where (a line, a field) and what to do about it, so the CLI and the
 * editor can show it as it is.
 */
export type PipelineErrorCode =
  | 'invalid-id'
  | 'invalid-config'
  | 'invalid-task'
  | 'invalid-state'
  | 'corrupt-journal'
  | 'corrupt-snapshot'
  | 'unknown-task'
  | 'unknown-agent'
  | 'unknown-role'
  | 'duplicate-id'
  | 'cycle'
  | 'illegal-transition'
  | 'busy'
  | 'not-leader'
  | 'not-initialised'
  | 'already-initialised'
  | 'git'
  | 'off-branch'
  /** A git lock file (`index.lock`, `refs/heads/main.lock`) is held by another process: transient, retry later. */
  | 'git-lock'
  /** The git remote cannot be reached (network, DNS, a server error, a timeout): transient, retry later. */
  | 'git-unreachable'
  | 'import'
  /** The PostgreSQL state store: unreachable, not migrated, or migrated by a newer build. */
  | 'database'
  | 'usage';

export interface PipelineErrorDetails {
  /** The file at fault, when there is one. */
  readonly file?: string;
  /** Where in the file or input: a line number, a JSON path, an argument name. */
  readonly where?: string;
  /** What the user can do about it, as a sentence. */
  readonly fix?: string;
}

export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  constructor(
    readonly code: PipelineErrorCode,
    message: string,
    readonly details: PipelineErrorDetails = {},
  ) {
    super(message);
  }

  /** The message with its file, place and fix, one per line, as the CLI prints it. */
  describe(): string {
    const lines = [this.message];
    // A place given in parentheses already, such as "(top level)", is not wrapped in a second pair,
    // and one that only says "the file" adds nothing to the file's name.
    const where = this.details.where?.replace(/^\((.*)\)$/, '$1');
    if (this.details.file)
      lines.push(`  file: ${this.details.file}${where && !WHOLE_FILE.has(where) ? ` (${where})` : ''}`);
    else if (where) lines.push(`  at: ${where}`);
    if (this.details.fix) lines.push(`  fix: ${this.details.fix}`);
    return lines.join('\n');
  }
}

/** Places that say no more than "the file" (the import's "(file)" for a file that cannot be read). */
const WHOLE_FILE = new Set(['file']);

/**
 * By shape, not only by class: the extension is two bundles, each with its own copy of this class,
 * and an error thrown in one is caught in the other.
 */
export function isPipelineError(e: unknown): e is PipelineError {
  if (e instanceof PipelineError) return true;
  if (!(e instanceof Error) || e.name !== 'PipelineError') return false;
  const x = e as Partial<PipelineError>;
  return typeof x.code === 'string' && typeof x.describe === 'function' && typeof x.details === 'object';
}
