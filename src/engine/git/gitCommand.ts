import { performance } from 'node:perf_hooks';
import { GitError, GitPluginError, simpleGit, type SimpleGit } from 'simple-git';
import { ALLOWED_GIT_ENV, gitEnvironment, stripTrace } from './gitEnv';
import { GitCommandError, GitLockError, heldLockOf } from './gitErrors';
import { emitGitEvent, gitObserved } from './gitMetrics';

/**
 * One git command, run through simple-git: the environment (gitEnv.ts), the timeout, every non-zero
 * exit either an answer the caller expects (`okExitCodes`) or an error that names the command, the
 * directory and git's stderr (gitErrors.ts), and a timing for the metrics (gitMetrics.ts). Which
 * locks a command runs under is GitRepo's (gitRepo.ts).
 */

export interface RunResult {
  readonly stdout: string;
  readonly exitCode: number;
}

/** A non-zero exit, carried through simple-git with its code and both streams intact. */
class GitExit extends GitError {
  constructor(
    readonly exitCode: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(undefined, `git exited with ${exitCode}`);
  }
}

export function createClient(cwd: string, readOnly: boolean, timeoutMs: number): SimpleGit {
  return simpleGit({
    baseDir: cwd,
    trimmed: false,
    timeout: { block: timeoutMs },
    allowEnvironment: [...ALLOWED_GIT_ENV],
    // simple-git treats a non-zero exit with an empty stderr as success (`merge-tree` exits 1 on
    // conflicts, silently): every non-zero exit becomes a GitExit so the caller decides.
    errors(error, result) {
      if (result.exitCode === 0 || error instanceof GitPluginError) return error;
      return new GitExit(
        result.exitCode,
        Buffer.concat(result.stdOut).toString('utf8'),
        stripTrace(Buffer.concat(result.stdErr).toString('utf8')),
      );
    },
  }).env(gitEnvironment(readOnly));
}

export async function execGit(
  client: SimpleGit,
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
  try {
    const stdout = await client.raw([...args]);
    observe(0);
    return { stdout, exitCode: 0 };
  } catch (e) {
    observe(e instanceof GitExit ? e.exitCode : -1);
    if (e instanceof GitExit) {
      if (okExitCodes.includes(e.exitCode)) return { stdout: e.stdout, exitCode: e.exitCode };
      const lock = heldLockOf(e.stderr);
      if (lock) throw new GitLockError(args, cwd, e.exitCode, e.stderr, e.stdout, lock);
      throw new GitCommandError(args, cwd, e.exitCode, e.stderr, e.stdout);
    }
    if (e instanceof GitPluginError && e.plugin === 'timeout') {
      throw new GitCommandError(
        args,
        cwd,
        -1,
        `no output for ${timeoutMs} ms; git was stopped`,
        '',
        'Look for a git hook or credential helper that waits for input, or a very large repository; the timeout is GitRepoOptions.timeoutMs.',
      );
    }
    if (e instanceof GitError) throw new GitCommandError(args, cwd, -1, stripTrace(e.message), '');
    throw e;
  }
}
