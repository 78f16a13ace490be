import { PipelineError } from '../errors';

/**
 * The errors the PostgreSQL store gives people, each naming the database (never its password),
 * what was being done and the fix.
 */

interface Named {
  readonly where: string;
  readonly source: string;
}

export function message(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length) return e.errors.map(message).join('; ');
  return e instanceof Error ? e.message || e.name : String(e);
}

/** The server did not answer (or kept failing) for `boundMs` while doing `what`. */
export function unreachableError(db: Named, what: string, cause: unknown, boundMs: number): PipelineError {
  return new PipelineError(
    'database',
    `${db.where} could not be reached for ${Math.round(boundMs / 100) / 10} s while ${what}: ${message(cause)}.`,
    {
      where: db.source,
      fix: `Start the database server (or fix ${db.source} to point at it) and run the command again.`,
    },
  );
}

/** The store's tables are not there, or older than this build needs. */
export function migrationsMissingError(db: Named, pending: readonly string[]): PipelineError {
  return new PipelineError(
    'database',
    `${db.where} has not been prepared for this build of the pipeline: migration${pending.length === 1 ? '' : 's'} ${pending.join(', ')} not applied.`,
    {
      where: db.source,
      fix: 'Run `pipeline db migrate` (with the same environment), then the command again.',
    },
  );
}

/** The database was migrated by a newer build: this one would misread it. */
export function newerSchemaError(db: Named, found: number, known: number): PipelineError {
  return new PipelineError(
    'database',
    `${db.where} has schema version ${found}; this build of the pipeline knows versions up to ${known}.`,
    {
      where: db.source,
      fix: 'Update Agent Pipeline on this machine to the version that migrated the database.',
    },
  );
}

/** What the tables hold does not validate. */
export function invalidTablesError(db: Named, cause: unknown): PipelineError {
  return new PipelineError('invalid-state', `The pipeline state in ${db.where} is not valid: ${message(cause)}`, {
    where: db.source,
    fix: 'Restore the database from a backup, or run the command with a build that wrote it.',
  });
}

/** The tables hold a seq other than the one this writer continues from: someone wrote beside it. */
export function seqMismatchError(db: Named, expected: number, found: number): PipelineError {
  return new PipelineError(
    'invalid-state',
    `${db.where} holds the state at record ${found}, but this process expected ${expected}: something else wrote the state tables.`,
    {
      where: db.source,
      fix: 'Make sure only pipelines write these tables; the store has reloaded the state, so run the command again.',
    },
  );
}

/**
 * A commit that gave up waiting for the server: it was not acknowledged, but if the connection
 * broke just as it committed, it may have landed, so a person checks before repeating it.
 */
export function notAcknowledged(e: PipelineError): PipelineError {
  return new PipelineError('database', `${e.message} The change was not acknowledged.`, {
    ...e.details,
    fix: `${e.details.fix ?? ''} If the database went away just as it committed, the change may be there after all: check with \`pipeline status\` before repeating it.`.trim(),
  });
}
