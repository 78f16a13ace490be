/** One git command's request and answer, and the JavaScript that runs one (gitSpawner.ts, gitSpawnServer.ts). */

export interface SpawnRequest {
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Milliseconds without output after which git is killed. */
  readonly timeoutMs: number;
}

export type SpawnResult =
  | { readonly kind: 'exit'; readonly exitCode: number; readonly stdout: string; readonly stderr: string }
  /** Killed after `timeoutMs` without output. */
  | { readonly kind: 'timeout'; readonly stdout: string; readonly stderr: string }
  /** The process could not be started (git missing, the directory gone): the system's message. */
  | { readonly kind: 'error'; readonly message: string; readonly code: string | undefined };

/**
 * What both transports run for one request, as plain JavaScript: `runOne(request, reply)` starts git,
 * collects its output and replies once. `envs` keeps each environment sent, by id.
 */
export const RUN_ONE_SOURCE = `
const { spawn } = require('node:child_process');
const envs = new Map();
function runOne({ id, args, cwd, envId, env: sent, timeoutMs }, reply) {
  if (sent) envs.set(envId, sent);
  const env = envs.get(envId);
  let done = false;
  const out = [];
  const err = [];
  const finish = (r) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    reply({ id, ...r });
  };
  let child;
  try {
    child = spawn('git', args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
  } catch (e) {
    finish({ kind: 'error', message: String(e && e.message || e), code: e && e.code });
    return;
  }
  let timedOut = false;
  let timer;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
  };
  arm();
  child.stdout.on('data', (d) => { out.push(d); arm(); });
  child.stderr.on('data', (d) => { err.push(d); arm(); });
  child.stdin.on('error', () => undefined);
  // Killed after its timeout, git may leave a child of its own (git-remote-https) holding the pipes
  // open, so 'close' would never come: its exit is the end.
  child.on('exit', () => {
    if (timedOut) finish({ kind: 'timeout', stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
  });
  child.on('error', (e) => finish({ kind: 'error', message: String(e && e.message || e), code: e && e.code }));
  child.on('close', (code) => {
    const stdout = Buffer.concat(out).toString('utf8');
    const stderr = Buffer.concat(err).toString('utf8');
    if (timedOut) finish({ kind: 'timeout', stdout, stderr });
    else finish({ kind: 'exit', exitCode: code === null ? -1 : code, stdout, stderr });
  });
}
`;

/**
 * A process the spawn server starts and leaves running (an agent's command): in its own process
 * group, stdin ignored, stdout and stderr appended to `logFile`, which the server opens itself.
 */
export interface DetachedRequest {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logFile: string;
}

/**
 * The server's first answer to a DetachedRequest: started (its pid), or not. 'error' is the start
 * error Node reports for the process (ENOENT for a command not found); 'failed' is a failure before
 * that (the log file cannot be opened), which the caller throws as it would have thrown it itself.
 */
export type DetachedStart =
  | { readonly kind: 'started'; readonly pid: number }
  | { readonly kind: 'error'; readonly message: string; readonly code: string | undefined }
  | { readonly kind: 'failed'; readonly message: string; readonly code: string | undefined };

/** How a detached process ended, sent by the server when it exits. */
export interface DetachedExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * What the spawn server runs for a DetachedRequest, as plain JavaScript: `startDetached(request,
 * reply)` replies `{ id, ...DetachedStart }` once, then `{ id, kind: 'exited', code, signal }` when
 * the process exits. The log is opened in append mode and closed once the child has its own copy.
 */
export const START_DETACHED_SOURCE = `
const { openSync, closeSync } = require('node:fs');
function startDetached({ id, command, args, cwd, env, logFile }, reply) {
  const failed = (e) => reply({ id, kind: 'failed', message: String(e && e.message || e), code: e && e.code });
  let fd;
  try {
    fd = openSync(logFile, 'a');
  } catch (e) {
    failed(e);
    return;
  }
  let child;
  try {
    child = spawn(command, args, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
  } catch (e) {
    failed(e);
    return;
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) {
    child.once('error', (e) => reply({ id, kind: 'error', message: String(e && e.message || e), code: e && e.code }));
    return;
  }
  child.on('error', () => undefined);
  child.once('exit', (code, signal) => reply({ id, kind: 'exited', code, signal }));
  reply({ id, kind: 'started', pid: child.pid });
}
`;

/** A git process the engine talks to while it runs (`update-ref --stdin`): its stdin written line by line. */
export interface SessionRequest {
  readonly args: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
}

/** How a session's git ended: its exit code (null when killed, -1 when it could not start) and stderr. */
export interface SessionEnd {
  readonly code: number | null;
  readonly stderr: string;
}

/**
 * What the spawn server runs for sessions, as plain JavaScript: `session(message, reply)` takes
 * `{ id, kind: 'session', args, cwd, env }` (starts git), then `write` (`data`), `end` and `kill`
 * for that id; it replies `{ id, kind: 'out', data }` for each piece of stdout, then once
 * `{ id, kind: 'closed', code, stderr }`.
 */
export const SESSION_SOURCE = `
const sessions = new Map();
function session(m, reply) {
  const { id } = m;
  if (m.kind !== 'session') {
    const child = sessions.get(id);
    if (!child) return;
    if (m.kind === 'write') child.stdin.write(m.data);
    else if (m.kind === 'end') child.stdin.end();
    else if (m.kind === 'kill') child.kill('SIGKILL');
    return;
  }
  let stderr = '';
  let done = false;
  const close = (code, extra) => {
    if (done) return;
    done = true;
    sessions.delete(id);
    reply({ id, kind: 'closed', code, stderr: stderr + extra });
  };
  let child;
  try {
    child = spawn('git', m.args, { cwd: m.cwd, env: m.env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
  } catch (e) {
    close(-1, '\\n' + String(e && e.message || e));
    return;
  }
  sessions.set(id, child);
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (data) => reply({ id, kind: 'out', data }));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => (stderr += d));
  // A write after git exited fails with EPIPE; the exit explains it.
  child.stdin.on('error', () => undefined);
  child.on('error', (e) => close(-1, '\\n' + e.message));
  child.on('close', (code) => close(code, ''));
}
`;
