import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { resolveCommand } from '../agents/commandTemplate';
import { ShellCheckRunner } from '../agents/shellCheckRunner';
import { END_OF_TASK_FILE, findAppendedMarker } from '../agents/completionMarker';
import { TASK_DIR } from '../agents/taskFile';
import { taskBranch } from '../model/ids';
import { writeAttemptHeader } from '../monitor/attemptOutput';
import type { RunExit, RunHandle, RunRequest } from '../ports/agentRunner';
import { isTransient } from '../postgres/pgDatabase';
import { CHECK_TIMEOUT_MS } from '../monitor/completion';
import type { ClaimRow, Report, ReportedCheck } from './claimStore';
import type { WorkerContext } from './worker';

/**
 * One claimed attempt on a worker: receive the task branch into the agent's worktree (the remote
 * tip, brought up to date with the target), write the task file the coordinator made, start the
 * agent as `pipeline run` would, and wait for its marker or its exit. On a marker: commit what the
 * agent left, renew the claim (so the lease outlasts the push), publish the branch, report. On an
 * exit without one: set aside what it left, report. Whenever the claim turns out lost (a heartbeat
 * or the report matches no row under this epoch), the agent is stopped, its work kept aside, and
 * nothing more is written.
 */

/** Most output sent with one heartbeat; the rest follows with the next ones. */
const CHUNK_BYTES = 256 * 1024;
/** Most of a stage check's output sent with the report: its end, where a test run says what failed. */
const CHECK_OUTPUT_BYTES = 256 * 1024;

export class WorkerAttempt {
  readonly taskId: string;
  readonly attempt: number;
  readonly agentId: string;
  readonly epoch: string;
  private logFile = '';
  private sent = 0;
  private handle: RunHandle | null = null;
  private lostResolve!: () => void;
  /** Settles when the claim is found lost. */
  readonly lost = new Promise<void>((r) => (this.lostResolve = r));
  isLost = false;
  private finished = false;
  /** The worker is shutting down: the agent is stopped and the attempt reported without a marker. */
  private shutdown = false;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly w: WorkerContext,
    readonly row: ClaimRow,
  ) {
    this.taskId = row.task_id;
    this.attempt = row.attempt;
    this.agentId = row.agent;
    this.epoch = row.epoch;
  }

  private say(text: string): void {
    this.w.log(`${this.agentId} ${this.taskId} attempt ${this.attempt}: ${text}`);
  }

  /** The agent's output since the last heartbeat (at most CHUNK_BYTES), and where it ends. */
  private async newOutput(): Promise<{ text: string; end: number }> {
    if (!this.logFile) return { text: '', end: this.sent };
    try {
      const f = await open(this.logFile, 'r');
      try {
        const { size } = await f.stat();
        const n = Math.min(CHUNK_BYTES, Math.max(0, size - this.sent));
        const buf = Buffer.alloc(n);
        await f.read(buf, 0, n, this.sent);
        // Never split a UTF-8 character between two heartbeats.
        let cut = n;
        if (n === CHUNK_BYTES) while (cut > 0 && (buf[cut - 1]! & 0xc0) === 0x80) cut--;
        return { text: buf.subarray(0, cut).toString('utf8'), end: this.sent + cut };
      } finally {
        await f.close();
      }
    } catch {
      return { text: '', end: this.sent };
    }
  }

  /** Renews the claim with the new output; marks it lost when the row is no longer this worker's. */
  async heartbeat(): Promise<boolean> {
    if (this.isLost || this.finished) return !this.isLost;
    const out = await this.newOutput();
    const held = await this.w.claims.renew(this.taskId, this.attempt, this.epoch, this.w.leaseMs, out.text);
    if (held) this.sent = out.end;
    else this.markLost('its heartbeat found the claim taken back');
    return held;
  }

  private markLost(why: string): void {
    if (this.isLost || this.finished) return;
    this.isLost = true;
    this.say(`lost the claim (${why}): stopping the agent; its work is kept aside`);
    this.lostResolve();
  }

  run(): Promise<void> {
    this.running = this.runOnce();
    return this.running;
  }

  /** Stops the agent because the worker stops; the attempt is reported without a marker (retried elsewhere). */
  async stopForShutdown(): Promise<void> {
    this.shutdown = true;
    this.lostResolve();
    await this.running;
  }

  private async runOnce(): Promise<void> {
    try {
      await this.execute();
    } catch (e) {
      // An error before or after the agent ran (git, the file system): reported as a failed attempt.
      const text = e instanceof Error ? e.message : String(e);
      this.say(`failed: ${text}`);
      if (!this.isLost) await this.report(null, { code: null, signal: null }, `the worker could not run it: ${text}`);
    } finally {
      this.finished = true;
      await this.handle?.stop().catch(() => undefined);
    }
  }

  private async execute(): Promise<void> {
    const { row, w } = this;
    const received = await w.remote.receive(this.agentId, this.taskId, row.base, {
      onUnpublished: 'set-aside',
      mergeTarget: true,
    });
    if (received.setAside) this.say(`kept earlier unpublished work at ${received.setAside}`);
    const dir = join(received.worktree, TASK_DIR);
    await mkdir(dir, { recursive: true });
    const taskFile = join(dir, row.task_file_name);
    await writeFile(taskFile, withConflicts(row.task_text, received.conflicts));
    const permissions = w.config.agentCli[row.command];
    const command = resolveCommand(
      row.command,
      { taskFile, taskId: this.taskId, worktree: received.worktree, role: row.role },
      {
        scriptedAgent: w.scriptedAgent,
        ...(permissions ? { permissions } : {}),
        // After a usage limit, the agent continues its conversation with its CLI's own resume.
        ...(row.resume_session ? { resume: row.resume_session } : {}),
      },
    );
    for (const f of command.files ?? []) {
      await mkdir(dirname(f.path), { recursive: true });
      await writeFile(f.path, f.content);
    }
    const req: RunRequest = {
      agentId: this.agentId,
      taskId: this.taskId,
      attempt: this.attempt,
      role: row.role,
      worktree: received.worktree,
      taskFile,
      command,
      logFile: join(w.home.logsDir, 'agents', `${this.agentId}.log`),
    };
    await writeAttemptHeader(req, new Date().toISOString());
    this.logFile = req.logFile;
    this.sent = (await stat(req.logFile)).size;
    if (this.isLost) return;
    this.handle = await w.runner.start(req);
    this.say(`started ${command.display} in ${received.worktree}`);
    const ended = await this.waitForEnd(taskFile, this.handle);
    if (ended === 'lost') {
      await this.keepAside();
      if (this.shutdown && !this.isLost)
        await this.report(null, { code: null, signal: 'SIGTERM' }, 'the worker stopped before the agent finished');
      return;
    }
    const text = await readFile(taskFile, 'utf8').catch(() => row.task_text);
    const marker = findAppendedMarker(text);
    if (!marker) {
      await this.keepAside();
      const exit = await this.handle.exited;
      await this.report(text, exit, null);
      return;
    }
    // The stage's check runs here, where the agent's work is, before anything is published; a
    // failed check publishes nothing and keeps what the agent left aside, as on one machine.
    const check =
      marker.kind === 'completed' && row.check_command !== null
        ? await this.runCheck(row.check_command, received.worktree)
        : null;
    if (this.isLost) return;
    if (check && !check.passed) {
      await this.keepAside();
      await this.report(text, { code: 0, signal: null }, `the stage's check failed on ${w.name}`, null, check);
      return;
    }
    await w.workspace.commitAll(
      this.agentId,
      `${this.taskId} ${row.stage}: work left uncommitted by ${this.agentId}`,
      taskBranch(this.taskId),
    );
    // The lease is renewed just before the push, so no other worker can hold this claim while it runs.
    if (!(await this.persist(() => this.heartbeat())) || this.isLost) return;
    const published = await this.persist(() => w.remote.publish(this.taskId));
    if (this.isLost) return;
    await this.report(text, { code: 0, signal: null }, null, published.sha, check);
    // The agent said it is done: it gets a short grace to finish, then it is stopped.
    await Promise.race([this.handle.exited, new Promise((r) => setTimeout(r, 3_000).unref())]);
  }

  /** The marker, the command's exit, or the claim's loss, whichever comes first. */
  private waitForEnd(taskFile: string, handle: RunHandle): Promise<'marker' | 'exit' | 'lost'> {
    return new Promise((resolve) => {
      let watcher: FSWatcher | undefined;
      let timer: NodeJS.Timeout | undefined;
      let over = false;
      const done = (how: 'marker' | 'exit' | 'lost') => {
        if (over) return;
        over = true;
        watcher?.close();
        if (timer) clearTimeout(timer);
        resolve(how);
      };
      const look = async () => {
        const text = await readFile(taskFile, 'utf8').catch(() => '');
        if (findAppendedMarker(text)) done('marker');
      };
      try {
        watcher = watch(dirname(taskFile), () => void look());
        watcher.on('error', () => undefined);
      } catch {
        watcher = undefined;
      }
      // File events are hints: a read every half second is the backstop.
      const tick = () => {
        timer = setTimeout(() => {
          void look().then(() => !over && tick());
        }, 500);
        timer.unref();
      };
      tick();
      void look();
      void handle.exited.then(async () => {
        await look();
        done('exit');
      });
      void this.lost.then(() => done('lost'));
    });
  }

  /** Runs the stage's check in the agent's worktree; its output (the end of it) goes with the report. */
  private async runCheck(command: string, worktree: string): Promise<ReportedCheck> {
    this.say(`running the stage's check: ${command}`);
    const evidenceFile = join(
      this.w.home.dir,
      'evidence',
      this.taskId,
      `${this.row.stage}.attempt-${this.attempt}.check.log`,
    );
    const r = await new ShellCheckRunner({ niceness: this.w.config.agentNiceness }).run({
      command,
      cwd: worktree,
      env: { PIPELINE_TASK_ID: this.taskId, PIPELINE_ROLE: this.row.role },
      timeoutMs: CHECK_TIMEOUT_MS,
      evidenceFile,
      taskId: this.taskId,
      attempt: this.attempt,
    });
    const text = await readFile(evidenceFile, 'utf8').catch(() => '');
    this.say(`the check ${r.passed ? 'passed' : 'failed'} (${r.timedOut ? 'timed out' : `exit ${r.code}`})`);
    return { ...r, output: text.length > CHECK_OUTPUT_BYTES ? `…${text.slice(-CHECK_OUTPUT_BYTES)}` : text };
  }

  /** Stops the agent and keeps what it left uncommitted aside in this clone. */
  private async keepAside(): Promise<void> {
    await this.handle?.stop().catch(() => undefined);
    const ref = `refs/pipeline/set-aside/${this.taskId}/attempt-${this.attempt}`;
    const kept = await this.w.workspace
      .setAside(
        this.agentId,
        ref,
        `${this.taskId} ${this.row.stage}: left uncommitted by ${this.agentId} in attempt ${this.attempt}`,
      )
      .catch((e: unknown) => {
        this.say(`could not set aside what it left: ${e instanceof Error ? e.message : String(e)}`);
        return null;
      });
    if (kept) this.say(`what it left uncommitted is kept at ${kept}`);
  }

  /** Reports the outcome under this claim's epoch; a refusal means the claim was lost meanwhile. */
  private async report(
    finalText: string | null,
    exit: RunExit,
    note: string | null,
    published: string | null = null,
    check: ReportedCheck | null = null,
  ) {
    const out = await this.newOutput();
    const rep: Report = {
      finalText,
      exitCode: exit.code,
      exitSignal: exit.signal,
      startError: exit.startError ?? null,
      published,
      note,
      check,
    };
    const accepted = await this.persist(() =>
      this.w.claims.report(this.taskId, this.attempt, this.epoch, rep, out.text),
    );
    if (accepted) {
      this.sent = out.end;
      this.finished = true;
      this.say(`reported: ${findAppendedMarker(finalText ?? '')?.kind ?? 'no marker'}`);
    } else {
      this.say('the late write was refused: the claim was taken back (its epoch moved on)');
      this.markLost('its report was refused');
    }
  }

  /** Runs `fn` again while the database is unreachable (a restart), for as long as the worker runs. */
  private async persist<T>(fn: () => Promise<T>): Promise<T> {
    let delay = 100;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!isTransient(e) && !isTransientGit(e)) throw e;
        if (this.w.stopping) throw e;
        if (delay === 100)
          this.say(
            `waiting for ${isTransient(e) ? 'the database' : 'git'}: ${e instanceof Error ? e.message : String(e)}`,
          );
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2_000);
      }
    }
  }
}

function isTransientGit(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return code === 'git-unreachable' || code === 'git-lock';
}

/** The task file with the files that conflict with the target named, when receiving found some. */
function withConflicts(text: string, conflicts: readonly string[]): string {
  if (conflicts.length === 0) return text;
  const note = `\n## Conflicts with the target branch\n\nBringing this branch up to date with the target conflicts in: ${conflicts.join(', ')}. Merge the target branch and resolve them as part of this stage.\n\n`;
  const at = text.lastIndexOf(END_OF_TASK_FILE);
  return at < 0 ? text + note : text.slice(0, at) + note + text.slice(at);
}
