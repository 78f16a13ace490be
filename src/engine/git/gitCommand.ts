import { statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { gitEnvironment, stripTrace } from './gitEnv';
import { GitCommandError, GitLockError, heldLockOf } from './gitErrors';
import { emitGitEvent, gitObserved } from './gitMetrics';
import { spawnGit } from './gitSpawner';

/**
 * One git command, started on a worker thread (gitSpawner.ts): the environment (gitEnv.ts), the
 * timeout, every non-zero exit either an answer the caller expects (`okExitCodes`) or an error that
 * names the command, the directory and git's stderr (gitErrors.ts), and a timing for the metrics
 * (gitMetrics.ts). Which locks a command runs under is GitRepo's (gitRepo.ts).
 */

export interface RunResult {
  readonly stdout: string;
  readonly exitCode: number;
}

/** Where and how commands run: a directory, and the environment of a read-only or a mutating call. */
export interface GitClient {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
}

/** The directory a client was asked for does not exist (or is not a directory). */
export class MissingDirectoryError extends Error {
  override readonly name = 'MissingDirectoryError';
  constructor(readonly dir: string) {
    super(`${dir} does not exist or is not a directory`);
  }
}

function isDirectorySync(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** A client for `cwd`; throws MissingDirectoryError when it is not a directory. */
export function createClient(cwd: string, readOnly: boolean): GitClient {
  if (!isDirectorySync(cwd)) throw new MissingDirectoryError(cwd);
  return { cwd, env: gitEnvironment(readOnly) };
}

export async function execGit(
  client: GitClient,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
  okExitCodes: readonly number[],
): Promise<RunResult> {
  const started = gitObserved() ? performance.now() : 0;
  const observe = (exitCode: number): void => {
    if (started)
      emitGitEvent({ type: 'command', command: args[0] ?? '', cwd, ms: performance.now() - started, exitCode });
  };
  const r = await spawnGit({ args, cwd: client.cwd, env: client.env, timeoutMs });
  if (r.kind === 'timeout') {
    observe(-1);
    throw new GitCommandError(
      args,
      cwd,
      -1,
      `no output for ${timeoutMs} ms; git was stopped`,
      '',
      'Look for a git hook or credential helper that waits for input, or a very large repository; the timeout is GitRepoOptions.timeoutMs.',
    );
  }
  if (r.kind === 'error') {
    observe(-1);
    throw new GitCommandError(args, cwd, -1, r.message, '');
  }
  observe(r.exitCode);
  if (r.exitCode === 0 || okExitCodes.includes(r.exitCode)) return { stdout: r.stdout, exitCode: r.exitCode };
  const stderr = stripTrace(r.stderr);
  const lock = heldLockOf(stderr);
  if (lock) throw new GitLockError(args, cwd, r.exitCode, stderr, r.stdout, lock);
  throw new GitCommandError(args, cwd, r.exitCode, stderr, r.stdout);
}
