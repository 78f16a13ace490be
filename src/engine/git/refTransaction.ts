import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createClient, execGit } from './gitCommand';
import { gitEnvironment, stripTrace } from './gitEnv';
import { GitCommandError, GitLockError, heldLockOf } from './gitErrors';
import { emitGitEvent, gitObserved } from './gitMetrics';
import { readySpawnServer } from './gitSpawner';

/**
 * Moves one ref by compare-and-swap while git's lock on it is held across other work: `git
 * update-ref --stdin` in transaction mode (`start`, `update`, `prepare`, then `commit` or `abort`,
 * git ≥ 2.28). `prepare` takes the ref's lock file and checks its old value; until `commit`, nobody
 * else can move the ref, and `abort` (or our process dying, which closes git's stdin) leaves it as it
 * was. The update of a checked-out branch's working tree runs in between (branches.ts), so a ref that
 * cannot be locked is found before any file changes, and a tree that cannot be updated leaves the
 * ref where it was.
 */

export type TransactionOutcome<T> = { readonly kind: 'committed'; readonly value: T } | { readonly kind: 'moved' };

/** Thrown by a failed `commit` after a successful `prepare` (git could not rename its lock into place). */
export class RefCommitError extends GitCommandError {}

interface Session {
  send(line: string): void;
  end(): void;
  /** Resolves when stdout has shown `line`; rejects with the failure when git exits first. */
  until(line: string): Promise<void>;
  exited: Promise<{ code: number | null; stderr: string }>;
  kill(): void;
}

/** The pipes of one git process, wherever it runs: here, or on the spawn server. */
interface SessionPipes {
  write(data: string): void;
  end(): void;
  kill(): void;
  readonly closed: Promise<{ code: number | null; stderr: string }>;
}

/** git as this process's own child. */
function pipesHere(args: readonly string[], cwd: string, stdout: (data: string) => void): SessionPipes {
  const child = spawn('git', [...args], { cwd, env: gitEnvironment(false), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  const closed = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, stderr }));
    child.on('error', (e) => {
      stderr += `\n${e.message}`;
      resolve({ code: -1, stderr });
    });
  });
  child.stdout.on('data', (c: Buffer) => stdout(c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  // A write after git exited fails with EPIPE; the exit explains it.
  child.stdin.on('error', () => undefined);
  return {
    write: (data) => void child.stdin.write(data),
    end: () => child.stdin.end(),
    kill: () => child.kill('SIGKILL'),
    closed,
  };
}

/**
 * Starts `git update-ref --stdin` on the spawn server when it runs (gitSpawnServer.ts), whose fork
 * does not block the engine's event loop nor copy its memory; else here. On the server, its stdin
 * closes when the server dies, which aborts the transaction as our own death would.
 */
function startSession(args: readonly string[], cwd: string, timeoutMs: number): Session {
  let stdout = '';
  const waiters: Array<{ line: string; resolve: () => void; reject: (e: Error) => void }> = [];
  const check = (): void => {
    const lines = stdout.split('\n');
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!;
      if (lines.includes(w.line)) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };
  const onStdout = (data: string): void => {
    stdout += data;
    check();
  };
  const server = readySpawnServer();
  const pipes = server
    ? server.session({ args, cwd, env: gitEnvironment(false) }, onStdout)
    : pipesHere(args, cwd, onStdout);
  const exited = pipes.closed.then(({ code, stderr }) => ({ code, stderr: stripTrace(stderr) }));
  // A line awaited after git exited (it died while the caller worked) fails as those awaited before.
  let ended: string | undefined;
  void exited.then(({ code }) => {
    ended = `git exited (${code ?? 'killed'})`;
    for (const w of waiters.splice(0)) w.reject(new Error(`${ended} before "${w.line}"`));
  });
  return {
    send: (line) => pipes.write(`${line}\n`),
    end: () => pipes.end(),
    // An answer that does not come within the timeout (git waiting on something) stops git.
    until: async (line) => {
      const timer = setTimeout(() => pipes.kill(), timeoutMs);
      try {
        await new Promise<void>((resolve, reject) => {
          const w = { line, resolve, reject };
          waiters.push(w);
          check();
          // git already gone: the line came before it went (check found it), or never will.
          if (ended !== undefined && waiters.includes(w)) {
            waiters.splice(waiters.indexOf(w), 1);
            reject(new Error(`${ended} before "${line}"`));
          }
        });
      } finally {
        clearTimeout(timer);
      }
    },
    exited,
    kill: () => pipes.kill(),
  };
}

/**
 * Moves `ref` from `oldSha` to `newSha`, running `whileLocked` with the ref locked and checked at
 * `oldSha`. Returns 'moved' (nothing done, `whileLocked` not run) when the ref is no longer at
 * `oldSha`; throws GitLockError when another process holds the ref's lock (nothing done). When
 * `whileLocked` throws, the transaction is aborted and its error rethrown: the ref did not move.
 * When the final commit fails, RefCommitError says so: the ref did not move, but whatever
 * `whileLocked` did stands, and the caller undoes it. A commit whose answer is lost (git, or the
 * spawn server it runs on, gone after git committed) is told from a failed one by where the ref is
 * now: at `newSha`, it moved, and undoing the work would leave the branch and its files apart.
 */
export async function updateRefLocked<T>(
  cwd: string,
  ref: string,
  newSha: string,
  oldSha: string,
  reason: string,
  timeoutMs: number,
  whileLocked: () => Promise<T>,
): Promise<TransactionOutcome<T>> {
  const args = ['update-ref', '-m', reason, '--stdin'];
  const started = gitObserved() ? performance.now() : 0;
  const s = startSession(args, cwd, timeoutMs);
  const failure = async (): Promise<GitCommandError> => {
    const { code, stderr } = await s.exited;
    const lock = heldLockOf(stderr);
    if (lock) return new GitLockError(args, cwd, code ?? -1, stderr, '', lock);
    return new GitCommandError(args, cwd, code ?? -1, stderr, '');
  };
  try {
    s.send('start');
    s.send(`update ${ref} ${newSha} ${oldSha}`);
    s.send('prepare');
    try {
      await s.until('prepare: ok');
    } catch {
      const e = await failure();
      if (!(e instanceof GitLockError) && /is at [0-9a-f]+ but expected|unable to resolve reference/.test(e.stderr)) {
        return { kind: 'moved' };
      }
      throw e;
    }
    let value: T;
    try {
      value = await whileLocked();
    } catch (e) {
      s.send('abort');
      s.end();
      await s.exited;
      throw e;
    }
    s.send('commit');
    s.end();
    try {
      await s.until('commit: ok');
    } catch {
      const e = await failure();
      if (await refAt(cwd, ref, newSha, timeoutMs)) return { kind: 'committed', value };
      throw new RefCommitError(args, cwd, e.exitCode, e.stderr, '');
    }
    const { code, stderr } = await s.exited;
    if (code !== 0 && !(await refAt(cwd, ref, newSha, timeoutMs)))
      throw new RefCommitError(args, cwd, code ?? -1, stderr, '');
    return { kind: 'committed', value };
  } finally {
    s.kill();
    if (started) {
      const { code } = await s.exited;
      emitGitEvent({
        type: 'command',
        command: 'update-ref',
        cwd,
        ms: performance.now() - started,
        exitCode: code ?? -1,
      });
    }
  }
}

/** Whether `ref` is at `sha` now; false when that cannot be read either. */
async function refAt(cwd: string, ref: string, sha: string, timeoutMs: number): Promise<boolean> {
  try {
    const r = await execGit(createClient(cwd, true), ['rev-parse', '--verify', '-q', ref], cwd, timeoutMs, [1]);
    return r.stdout.trim() === sha;
  } catch {
    return false;
  }
}
