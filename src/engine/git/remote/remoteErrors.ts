import { isPipelineError, PipelineError } from '../../errors';
import { GitCommandError } from '../gitErrors';

/**
 * Errors of git across machines, classified as gitErrors.ts classifies lock contention: by code, so
 * the class survives the trip from the git worker process.
 *
 * - Transient (code `git-unreachable`): the remote could not be reached (DNS, a refused or reset
 *   connection, a server error, a timeout). Nothing was changed on either side; the caller tries
 *   again later with back-off.
 * - Permanent (code `git`): the remote refused who we are (authentication), the remote is not a
 *   repository at all, a push was rejected (the remote branch holds commits we do not have), or the
 *   local branch holds work the remote does not. Trying again changes nothing; a person (or another
 *   step of the pipeline) must act, and each message names the remote, the branch and the fix.
 */

export type RemoteFailureKind = 'unreachable' | 'auth' | 'missing';

/**
 * What git's stderr says went wrong with the remote, or undefined when it is no remote failure.
 * Authentication is checked first: ssh ends a refused key with the same "could not read from remote
 * repository" that a dropped connection gives.
 */
const PATTERNS: ReadonlyArray<readonly [RegExp, RemoteFailureKind]> = [
  [
    /Authentication failed|Permission denied \((publickey|password|keyboard)|could not read (Username|Password)|terminal prompts disabled|returned error: 40[13]|Host key verification failed|HTTP Basic: Access denied|Invalid username or password|access denied|not authorized/i,
    'auth',
  ],
  [
    /does not appear to be a git repository|Repository not found|returned error: 404|remote error: .*not found/i,
    'missing',
  ],
  [
    /Could not resolve host|Could not resolve hostname|Temporary failure in name resolution|Failed to connect to|Couldn't connect to server|Connection refused|Connection timed out|Operation timed out|timed out after|Network is unreachable|No route to host|Connection reset|Connection closed|early EOF|remote end hung up unexpectedly|RPC failed|returned error: 5\d\d|Empty reply from server|SSL_connect|gnutls_handshake|TLS connection was non-properly terminated|no output for \d+ ms/i,
    'unreachable',
  ],
];

export function classifyRemoteFailure(stderr: string): RemoteFailureKind | undefined {
  for (const [pattern, kind] of PATTERNS) if (pattern.test(stderr)) return kind;
  return undefined;
}

/** Where a remote operation happened, for messages: the remote's name and URL, the branch. */
export interface RemoteContext {
  readonly remote: string;
  readonly url: string;
  readonly branch: string;
  /** `publish`, `fetch`, `merge into`: what was being done, for the message. */
  readonly action: string;
}

function place(c: RemoteContext): string {
  return `${c.remote} (${c.url})`;
}

/** The remote could not be reached; transient (code `git-unreachable`). Nothing was changed. */
export class RemoteUnreachableError extends PipelineError {
  constructor(
    readonly context: RemoteContext,
    readonly gitError: GitCommandError,
  ) {
    super(
      'git-unreachable',
      `Cannot ${context.action} ${context.branch}: the remote ${place(context)} cannot be reached: ${firstLine(gitError.stderr)}. Nothing was changed.`,
      {
        where: `${context.remote} ${context.branch}`,
        fix: `The pipeline tries again later. If this lasts, check the network and the remote's address (git -C "${gitError.cwd}" remote get-url ${context.remote}) and that the server is up.`,
      },
    );
  }
}

/** The remote refused our credentials; permanent. Nothing was changed. */
export class RemoteAuthError extends PipelineError {
  constructor(
    readonly context: RemoteContext,
    readonly gitError: GitCommandError,
  ) {
    super(
      'git',
      `Cannot ${context.action} ${context.branch}: the remote ${place(context)} refused authentication: ${firstLine(gitError.stderr)}. Nothing was changed.`,
      {
        where: `${context.remote} ${context.branch}`,
        fix: `Give this machine access to ${context.url} without a prompt (an SSH key in ssh-agent, or a credential helper: git config credential.helper store), then check it with: git -C "${gitError.cwd}" ls-remote ${context.remote}`,
      },
    );
  }
}

/** The remote is not a git repository (wrong URL, deleted repository); permanent. */
export class RemoteMissingError extends PipelineError {
  constructor(
    readonly context: RemoteContext,
    readonly gitError: GitCommandError,
  ) {
    super(
      'git',
      `Cannot ${context.action} ${context.branch}: the remote ${place(context)} is not a git repository: ${firstLine(gitError.stderr)}.`,
      {
        where: `${context.remote} ${context.branch}`,
        fix: `Point ${context.remote} at the shared repository: git -C "${gitError.cwd}" remote set-url ${context.remote} <url>`,
      },
    );
  }
}

/**
 * A push was refused: the remote branch is at a commit that is not an ancestor of what we pushed
 * (someone else published to it), or a hook or branch protection declined it. Permanent: nothing
 * is ever forced. `remoteSha` is the remote's commit when it is known.
 */
export class PushRejectedError extends PipelineError {
  constructor(
    readonly context: RemoteContext,
    readonly localSha: string,
    readonly remoteSha: string | undefined,
    readonly reason: string,
    fix: string,
  ) {
    super(
      'git',
      `Cannot ${context.action} ${context.branch}: ${place(context)} rejected the push of ${short(localSha)} (${reason})${
        remoteSha
          ? `; ${context.remote}/${context.branch} is at ${short(remoteSha)}, which is not an ancestor of ${short(localSha)}`
          : ''
      }. Nothing was forced.`,
      { where: `${context.remote} ${context.branch}`, fix },
    );
  }
}

/**
 * The local task branch holds commits the remote branch does not (work done on this machine and
 * never published), and putting the worktree on the remote tip would lose them. Nothing was changed.
 */
export class UnpublishedWorkError extends PipelineError {
  constructor(
    readonly context: RemoteContext,
    readonly localSha: string,
    readonly remoteSha: string,
    /** How many commits the local branch has that the remote does not. */
    readonly commits: number,
    readonly worktree: string,
    /** The remote branch also has commits the local one lacks (not only behind). */
    readonly diverged: boolean,
  ) {
    super(
      'git',
      `Cannot receive ${context.branch} from ${place(context)}: the local ${context.branch} is at ${short(localSha)}, with ${commits} commit(s) that ${context.remote}/${context.branch} (at ${short(remoteSha)}) does not have. Putting ${worktree} on the remote tip would lose them; nothing was changed.`,
      {
        where: `${context.branch} in ${worktree}`,
        fix: diverged
          ? `The remote branch took other work since (the stage was redone elsewhere). Receive with onUnpublished: 'set-aside', which keeps this clone's commits under refs/pipeline/set-aside/… and takes the remote tip; compare them with git -C "${worktree}" log ${context.remote}/${context.branch}...${context.branch}.`
          : `If that work should count, publish it (git -C "${worktree}" push ${context.remote} ${context.branch}); otherwise receive with onUnpublished: 'set-aside', which keeps it under refs/pipeline/set-aside/… and takes the remote tip.`,
      },
    );
  }
}

/** The remote branch to receive or merge does not exist on the remote. */
export class RemoteBranchMissingError extends PipelineError {
  constructor(readonly context: RemoteContext) {
    super('git', `Cannot ${context.action} ${context.branch}: ${place(context)} has no branch ${context.branch}.`, {
      where: `${context.remote} ${context.branch}`,
      fix: `Publish it first from the machine that has it (git push ${context.remote} ${context.branch}), or check the branch name in the pipeline configuration.`,
    });
  }
}

/**
 * A failed git command against the remote as the error a caller acts on: unreachable (transient),
 * authentication or a missing repository (permanent), or the command's own error when it is none of
 * these (a local problem, already explained by gitErrors.ts).
 */
export function remoteFailure(e: unknown, context: RemoteContext): unknown {
  if (!(e instanceof GitCommandError) || e.code === 'git-lock') return e;
  switch (classifyRemoteFailure(`${e.stderr}\n${e.stdout}`)) {
    case 'unreachable':
      return new RemoteUnreachableError(context, e);
    case 'auth':
      return new RemoteAuthError(context, e);
    case 'missing':
      return new RemoteMissingError(context, e);
    default:
      return e;
  }
}

/** True for an error that another attempt later may not meet: the remote unreachable, a git lock held. */
export function isTransientRemoteError(e: unknown): boolean {
  return isPipelineError(e) && (e.code === 'git-unreachable' || e.code === 'git-lock');
}

export function short(sha: string): string {
  return sha.slice(0, 12);
}

function firstLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^(fatal|error): /, '').trim())
    .filter((l) => l !== '' && !l.startsWith('hint:'));
  return lines[0]?.replace(/\.$/, '') ?? 'no output';
}
