import { isPipelineError, PipelineError } from '../errors';

/**
 * Errors of the git layer. All are `PipelineError('git', …)` so the CLI and the editor print them
 * as they print every other error; the subclasses carry what a caller may act on (the exit code,
 * the conflicting files, the dirty files) without parsing the message.
 */

/** Known stderr patterns and the sentence that tells the user what to do about them. */
const FIXES: ReadonlyArray<readonly [RegExp, string]> = [
  [
    /Unable to create '([^']*\.lock)': File exists/,
    'Another git process is working in this repository. Wait for it to finish; if none is running, delete the lock file named above (the pipeline removes stale locks at start).',
  ],
  [/not a git repository/i, 'Run the pipeline inside a git repository (or run `git init` first).'],
  [
    /Please tell me who you are|empty ident name|unable to auto-detect email/i,
    'Set an identity for commits: git config user.name "Your Name" && git config user.email you@example.com',
  ],
  [/dubious ownership/i, 'Mark the repository as safe: git config --global --add safe.directory <repository path>'],
  [/would be overwritten by (merge|checkout)/i, 'Commit or stash the local changes in that worktree, then try again.'],
  [
    /is already (checked out|used by worktree) at/i,
    'A branch can be checked out in one worktree only: switch the other worktree to another branch (or detach it) first.',
  ],
  [
    /'refs\/heads\/[^']*' exists; cannot create/,
    'A branch is named like a folder of the new branch (for example "pipeline" blocks "pipeline/TASK-001"): rename that branch.',
  ],
  [
    /refusing to merge unrelated histories/i,
    'The two branches share no history: merge them by hand once, then let the pipeline continue.',
  ],
  [
    /You have not concluded your merge|unfinished merge|MERGE_HEAD exists/i,
    'Finish or abort the merge in progress in that worktree (git merge --abort), then try again.',
  ],
  [
    /invalid reference|unknown revision|Needed a single revision|not a valid object name/i,
    'Check that the branch or commit exists: git branch --list',
  ],
];

/** The fix for a git failure, when its stderr matches a known case. */
export function fixForGitError(stderr: string): string | undefined {
  for (const [pattern, fix] of FIXES) if (pattern.test(stderr)) return fix;
  return undefined;
}

/** A command line as the user would type it, for messages only (never executed). */
export function formatCommand(args: readonly string[]): string {
  return ['git', ...args.map((a) => (/^[\w@%+=:,./^{}~-]+$/.test(a) ? a : JSON.stringify(a)))].join(' ');
}

/** A git command that failed (or timed out): names the command, the directory and git's stderr. */
export class GitCommandError extends PipelineError {
  constructor(
    readonly args: readonly string[],
    readonly cwd: string,
    /** git's exit code; -1 when it was killed by the timeout or could not start. */
    readonly exitCode: number,
    readonly stderr: string,
    readonly stdout: string,
    fix?: string,
    code: 'git' | 'git-lock' = 'git',
  ) {
    const detail = stderr.trim() || stdout.trim() || '(no output)';
    super(code, `${formatCommand(args)} failed${exitCode >= 0 ? ` (exit ${exitCode})` : ''} in ${cwd}: ${detail}`, {
      where: cwd,
      fix: fix ?? fixForGitError(stderr),
    });
  }
}

/** `Unable to create '<path>.lock': File exists`: how git says another process holds one of its locks. */
const LOCK_HELD = /Unable to create '([^']+\.lock)': File exists/;

/** The lock file a failed git command found held, when that is why it failed. */
export function heldLockOf(stderr: string): string | undefined {
  return LOCK_HELD.exec(stderr)?.[1];
}

/**
 * A git command failed because another process holds one of git's lock files: `index.lock` of a
 * worktree, a ref's lock (`cannot lock ref 'refs/heads/main': Unable to create …main.lock`),
 * `packed-refs.lock`, `HEAD.lock`. git takes its locks before it changes anything, and this layer
 * never leaves half an operation behind on such a failure, so nothing was changed: the failure is
 * transient and the caller retries with back-off. A lock left by a crashed git process stays until
 * the pipeline removes it (once no git process is alive and it is old enough; see staleLocks.ts) or
 * a person does. Code `git-lock`, which survives the trip from the git worker process.
 */
export class GitLockError extends GitCommandError {
  constructor(
    args: readonly string[],
    cwd: string,
    exitCode: number,
    stderr: string,
    stdout: string,
    /** The lock file that was held. */
    readonly lockFile: string,
  ) {
    super(
      args,
      cwd,
      exitCode,
      stderr,
      stdout,
      `Another git process holds ${lockFile}; the pipeline tries again later. If no git process is running, the lock is stale: the pipeline removes it once it is old enough, or delete it by hand.`,
      'git-lock',
    );
  }
}

/** True for a GitLockError, by code, so it also holds for one that crossed from the git worker process. */
export function isGitLockError(e: unknown): boolean {
  return isPipelineError(e) && e.code === 'git-lock';
}

/** Merging would conflict: nothing was changed; `files` are the paths that conflict. */
export class MergeConflictError extends PipelineError {
  constructor(
    readonly source: string,
    readonly into: string,
    readonly files: readonly string[],
    fix: string,
  ) {
    super(
      'git',
      `Merging ${source} into ${into} would conflict in ${files.length} file(s): ${files.join(', ')}. Nothing was changed.`,
      { fix },
    );
  }
}

/**
 * A worktree has uncommitted changes (or an unfinished merge or rebase) and the operation would
 * lose them or mix them into other work. Nothing was changed.
 */
export class DirtyWorktreeError extends PipelineError {
  constructor(
    readonly worktree: string,
    readonly files: readonly string[],
    message: string,
    fix: string,
  ) {
    super('git', message, { where: worktree, fix });
  }
}

/** `a, b, c, and 7 more`: a file list short enough for one message line. */
export function listFiles(files: readonly string[], max = 10): string {
  return files.slice(0, max).join(', ') + (files.length > max ? `, and ${files.length - max} more` : '');
}
