import { isPipelineError, PipelineError } from '../errors';
import { errnoCode } from './fsUtil';

/**
 * The errors the state store gives people, each naming the file and the fix. Errors about damage
 * in the journal are in damageReport.ts.
 */

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function isNotLeader(e: unknown): boolean {
  return isPipelineError(e) && e.code === 'not-leader';
}

export function storeClosedError(dir: string): PipelineError {
  return new PipelineError('usage', 'The state store is closed.', {
    file: dir,
    fix: 'Open it again with StateStore.open.',
  });
}

/** The store could not rebuild its state after a failed commit (`cause`): its state in memory may hold half a commit. */
export function storeBrokenError(dir: string, cause: unknown): PipelineError {
  return new PipelineError(
    'invalid-state',
    `The state store in ${dir} could not rebuild its state after a failed commit (${message(cause)}), so its state in memory cannot be trusted.`,
    {
      file: dir,
      fix: 'Close the store and open it again.',
    },
  );
}

export function readOnlyError(dir: string): PipelineError {
  return new PipelineError('not-leader', 'This state store was opened read-only (without the leader lease).', {
    file: dir,
    fix: 'Acquire the lease with LeaderLease.acquire and open the store with it.',
  });
}

export function leaseLostError(dir: string): PipelineError {
  return new PipelineError('not-leader', 'This process lost the leader lease; it can no longer write the state.', {
    file: dir,
    fix: 'Call refresh() to follow the new leader, or acquire the lease again when it is gone.',
  });
}

/** A leader of a higher epoch wrote to `dir` while this process, of `epoch`, thought it led. */
export function newerLeaderError(dir: string, maxEpoch: number, epoch: number): PipelineError {
  return new PipelineError(
    'not-leader',
    `A leader with epoch ${maxEpoch} has written to ${dir}; this process holds epoch ${epoch}.`,
    {
      file: dir,
      fix: 'Open the store without a lease to read it, or acquire the lease again.',
    },
  );
}

/**
 * The lease was lost (`cause`) while records `first`–`last` were committed: they were fenced by the
 * new leader, or nobody can tell yet.
 */
export function lostDuringCommitError(
  dir: string,
  cause: unknown,
  verdict: 'fenced' | 'unknown',
  first: number,
  last: number,
): PipelineError {
  const who = isPipelineError(cause) ? ` ${cause.message}` : '';
  return verdict === 'fenced'
    ? new PipelineError(
        'not-leader',
        `Records ${first}–${last} were written after another process took over the pipeline, so they do not count.${who}`,
        {
          file: dir,
          fix: 'Call refresh() to follow the new leader; redo the change there if it still applies.',
        },
      )
    : new PipelineError(
        'not-leader',
        `This process lost the leader lease while committing records ${first}–${last}; the new leader's recovery decides whether they count.${who}`,
        {
          file: dir,
          fix: 'Call refresh() to follow the new leader and check whether the change is in its state.',
        },
      );
}

/** A file-system error on the state directory as a PipelineError that names the path and the fix. */
export function fsProblem(e: unknown, path: string, what: string): unknown {
  const code = errnoCode(e);
  if (code === 'EISDIR')
    return new PipelineError('invalid-state', `${path} should be ${what}, but it is a directory.`, {
      file: path,
      fix: `Move it out of the way (for example \`mv ${path} ${path}.bad\`) and run the command again; it holds no records the pipeline wrote.`,
    });
  if (code === 'ENOTDIR' || code === 'EEXIST')
    return new PipelineError('invalid-state', `${path} should be ${what}, but it is a file.`, {
      file: path,
      fix: `Move it out of the way (for example \`mv ${path} ${path}.bad\`) and run the command again. If it should hold the pipeline's state, restore the directory from a backup.`,
    });
  if (code === 'EACCES' || code === 'EPERM')
    return new PipelineError('invalid-state', `${path} (${what}) cannot be read or written: permission denied.`, {
      file: path,
      fix: 'Give the user that runs the pipeline read and write access to it.',
    });
  return e;
}
