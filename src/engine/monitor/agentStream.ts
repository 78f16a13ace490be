import { open, stat } from 'node:fs/promises';
import type { AgentActivity, StreamParser, TokenCounts } from '../agents/cli/agentActivity';
import { adapterFor } from '../agents/cli/agentCliRegistry';
import type { AttemptUsage } from '../model/schema';
import type { ModelPrice } from '../model/configSchema';
import type { AgentProgress } from '../progress/progressBoard';
import { addTo, emptyTotals, priced } from '../usage/pricing';
import { UsageTally } from '../usage/usageTally';
import type { Attempt } from './attemptTable';
import { checkBudgets } from './budget';
import type { MonitorContext } from './monitorContext';

/**
 * Reading what a working agent does, from its log as the runner writes it: whatever the runner (a
 * process, a tmux window, a terminal), the agent's output is appended to `.pipeline/logs/agents/
 * <agent>.log`, so the monitor follows that file from the attempt's header on, reading only what
 * was added since the last look (a stat and a short read a few times a second per working agent).
 * Each new line goes to the agent CLI's adapter's stream parser; its steps, words, tokens and
 * session id become the agent's progress (in memory, see ProgressBoard) and, once the command has
 * finished its output, the attempt's usage record in the journal.
 *
 * An agent's command is given a short grace after its completion marker (`markerGraceSeconds`):
 * Claude Code writes its true token counts and cost in its last event, after the marker.
 */

const POLL_MS = 300;
/** A log read at most this much at a time: a runaway agent's output is read over a few polls. */
const MAX_READ = 1 << 20;

interface Follow {
  readonly a: Attempt;
  readonly logFile: string;
  offset: number;
  rest: Buffer;
  parser: StreamParser | null;
  tally: UsageTally;
  progress: AgentProgress;
  timer: NodeJS.Timeout | undefined;
  reading: Promise<void>;
  stopped: boolean;
}

export class AgentStreams {
  private readonly follows = new Map<Attempt, Follow>();
  /** Agents whose command may still run after its marker, until it ends or its grace runs out. */
  private readonly lingering = new Map<string, Promise<void>>();
  /** Usage records not yet committed (an attempt whose command is finishing its output). */
  private pendingRecords = 0;
  /** What this run of the monitor spent, for `budget.perRunUsd`. */
  runCostUsd = 0;

  constructor(private readonly ctx: MonitorContext) {}

  /** True while an attempt's usage is still to be recorded: the monitor is not idle yet. */
  get busy(): boolean {
    return this.pendingRecords > 0;
  }

  /** Starts following an attempt's output from `offset` (just after its header in the log). */
  async follow(
    a: Attempt,
    offset: number,
    threadBefore: readonly (TokenCounts & { model: string })[] = [],
  ): Promise<void> {
    const req = a.request;
    if (!req || this.follows.has(a)) return;
    const command = this.ctx.pipeline.state.agents[a.agentId]?.command ?? '';
    const adapter = adapterFor(command);
    let parser: StreamParser | null = null;
    if (adapter?.streamParser && !req.command.interactive) {
      const model = await adapter.configuredModel?.({ ...process.env, ...req.command.env }).catch(() => undefined);
      parser = adapter.streamParser({
        worktree: req.worktree,
        argv: req.command.argv,
        ...(model ? { model } : {}),
      });
    }
    const f: Follow = {
      a,
      logFile: req.logFile,
      offset,
      rest: Buffer.alloc(0),
      parser,
      tally: new UsageTally(threadBefore),
      progress: {
        agentId: a.agentId,
        taskId: a.taskId,
        stage: a.stage.name,
        attempt: a.attempt,
        startedAt: a.startedAt,
        step: null,
        stepAt: null,
        steps: 0,
        message: null,
        usage: null,
        session: req.command.resumed ?? null,
      },
      timer: undefined,
      reading: Promise.resolve(),
      stopped: false,
    };
    this.follows.set(a, f);
    this.ctx.pipeline.progress.update(f.progress);
    this.schedule(f);
  }

  private schedule(f: Follow): void {
    if (f.stopped) return;
    f.timer = setTimeout(() => {
      f.reading = f.reading.then(() => this.read(f)).finally(() => this.schedule(f));
    }, POLL_MS);
    f.timer.unref();
  }

  /** Reads what the log gained since the last read, and hands each whole line to the parser. */
  private async read(f: Follow, all = false): Promise<void> {
    for (;;) {
      const size = await stat(f.logFile).then(
        (s) => s.size,
        () => -1,
      );
      if (size <= f.offset) return;
      const length = Math.min(size - f.offset, MAX_READ);
      const buf = Buffer.alloc(length);
      const fh = await open(f.logFile, 'r');
      try {
        await fh.read(buf, 0, length, f.offset);
      } finally {
        await fh.close();
      }
      f.offset += length;
      // Lines are cut at '\n' bytes only, so a character split between two reads stays whole.
      const data = Buffer.concat([f.rest, buf]);
      const end = data.lastIndexOf(0x0a);
      f.rest = end < 0 ? data : data.subarray(end + 1);
      if (end >= 0) for (const line of data.subarray(0, end).toString('utf8').split('\n')) this.line(f, line);
      if (!all || f.offset >= size) return;
    }
  }

  private line(f: Follow, line: string): void {
    if (!f.parser || !line.trim()) return;
    let activities: AgentActivity[];
    try {
      activities = f.parser(line);
    } catch {
      return;
    }
    for (const act of activities) this.apply(f, act);
  }

  private apply(f: Follow, act: AgentActivity): void {
    const line = applyActivity(f.progress, f.tally, act, this.ctx.config.prices, this.ctx.now());
    this.ctx.pipeline.progress.update({ ...f.progress }, line);
  }

  /** Stops following and reads what is left; the attempt's progress is cleared. */
  private async finish(a: Attempt): Promise<Follow | undefined> {
    const f = this.follows.get(a);
    if (!f) return undefined;
    this.follows.delete(a);
    f.stopped = true;
    if (f.timer) clearTimeout(f.timer);
    await f.reading;
    await this.read(f, true).catch(() => undefined);
    if (f.rest.length) this.line(f, f.rest.toString('utf8'));
    f.rest = Buffer.alloc(0);
    if (this.ctx.pipeline.progress.get(a.agentId)?.attempt === a.attempt) this.ctx.pipeline.progress.clear(a.agentId);
    return f;
  }

  /**
   * The attempt settled and its command has ended (or was stopped): its usage is recorded. After a
   * marker, the command first gets its grace to finish its output (see `afterMarker`).
   */
  ended(a: Attempt): void {
    this.track(this.record(a));
  }

  /**
   * After a completion marker: the command may finish its output (its last event carries the
   * token counts) for up to `markerGraceSeconds`, then it is stopped; its agent takes no new work
   * until then (its worktree is still in use). A command whose CLI gives no totals is stopped as
   * soon as its output has stopped. Then the usage is recorded.
   */
  afterMarker(a: Attempt): void {
    const grace = this.ctx.config.markerGraceSeconds * 1000;
    const interactive = a.request?.command.interactive === true;
    const done = (async () => {
      const handle = a.handle;
      if (handle) {
        const f = this.follows.get(a);
        // A person's session never ends by itself; a stream that gave its totals has nothing more to say.
        const wait = interactive ? Math.min(grace, 2000) : grace;
        let timer: NodeJS.Timeout | undefined;
        const quiet = { stopped: false };
        await Promise.race([
          handle.exited,
          new Promise<void>((r) => (timer = setTimeout(r, wait))),
          f?.parser ? this.untilFinal(f) : new Promise<never>(() => undefined),
          // A command whose CLI gives no totals has nothing to finish after its marker but its
          // output: it is let go once that has stopped, not after the whole grace (its agent would
          // stand idle meanwhile, and the next stage wait for it).
          f && !f.parser && !interactive ? untilQuiet(f.logFile, quiet) : new Promise<never>(() => undefined),
        ]);
        quiet.stopped = true;
        if (timer) clearTimeout(timer);
        await handle.stop().catch(() => undefined);
      }
      await this.record(a);
    })();
    const lingering = done.catch(() => undefined);
    this.lingering.set(a.agentId, lingering);
    void lingering.then(() => {
      if (this.lingering.get(a.agentId) === lingering) this.lingering.delete(a.agentId);
      // The agent can take work again (the plan left it out meanwhile).
      this.ctx.kick();
    });
    this.track(done);
  }

  /** Resolves once the stream has given its final totals and a moment more for the process to go. */
  private async untilFinal(f: Follow): Promise<void> {
    while (!f.stopped && !f.tally.final) await new Promise((r) => setTimeout(r, POLL_MS));
    if (f.tally.final) await new Promise((r) => setTimeout(r, 1000));
  }

  /** Whether the agent's previous command is still in its grace after its marker. */
  lingers(agentId: string): boolean {
    return this.lingering.has(agentId);
  }

  /** Waits until the agent's previous command is gone (bounded by its grace). */
  async untilFree(agentId: string): Promise<void> {
    await this.lingering.get(agentId);
  }

  private track(p: Promise<void>): void {
    this.pendingRecords++;
    void p
      .catch((e: unknown) =>
        this.ctx.warn(`could not record what an attempt spent: ${e instanceof Error ? e.message : String(e)}`),
      )
      .finally(() => {
        this.pendingRecords--;
        this.ctx.kick();
      });
  }

  /** Commits the attempt's usage and session (when there is any), then checks the budgets. */
  private async record(a: Attempt): Promise<void> {
    const f = await this.finish(a);
    if (!f) return;
    const models = f.tally.total().map((m) => priced(m, this.ctx.config.prices));
    const session = f.progress.session;
    if (models.length === 0 && !session) return;
    const p = this.ctx.pipeline;
    if (!p.isLeader || !p.state.tasks[a.taskId]) return;
    const thread = f.tally.threadTotals();
    const usage: AttemptUsage = {
      attempt: a.attempt,
      stage: a.stage.name,
      agent: a.agentId,
      at: new Date(this.ctx.now()).toISOString(),
      models,
      session,
      ...(thread ? { thread: thread.map((m) => priced(m, this.ctx.config.prices)) } : {}),
    };
    const b = p.newBatch();
    b.record({ type: 'attempt.usage', id: a.taskId, usage });
    await p.commit(b);
    p.events.emit('attempt:usage', { taskId: a.taskId, usage });
    for (const m of models) this.runCostUsd += m.costUsd ?? 0;
    await checkBudgets(this.ctx, a.taskId);
  }

  /** The monitor stops: pending records are written (each within its grace); following ends. */
  async drain(): Promise<void> {
    for (;;) {
      const pending = [...this.lingering.values()];
      if (pending.length === 0) break;
      await Promise.all(pending);
    }
    for (const a of [...this.follows.keys()]) await this.finish(a);
  }
}

/**
 * One thing the stream said, applied to the attempt's progress (and its usage to the tally, priced
 * from `prices` where the CLI gave no cost). Returns the readable line when it is a new step.
 */
export function applyActivity(
  p: AgentProgress,
  tally: UsageTally,
  act: AgentActivity,
  prices: Readonly<Record<string, ModelPrice>>,
  now: number,
): string | undefined {
  switch (act.kind) {
    case 'step':
      p.steps++;
      p.step = act.text;
      p.stepAt = now;
      return `${p.agentId} ${p.taskId} (${p.stage}): ${act.text}`;
    case 'message':
      p.message = act.text;
      return undefined;
    case 'session':
      p.session = act.id;
      return undefined;
    case 'usage': {
      tally.add(act);
      const totals = emptyTotals();
      for (const m of tally.total()) addTo(totals, priced(m, prices));
      p.usage = totals;
      return undefined;
    }
  }
}

/** How long a command's output must not grow after its marker before the command is let go. */
const QUIET_MS = 200;
/** How often the log is looked at meanwhile. */
const QUIET_POLL_MS = 50;

/** Resolves once `logFile` has not grown for QUIET_MS (looked at every QUIET_POLL_MS), or `until.stopped`. */
async function untilQuiet(logFile: string, until: { stopped: boolean }): Promise<void> {
  const size = () =>
    stat(logFile).then(
      (s) => s.size,
      () => -1,
    );
  let last = await size();
  let quietSince = Date.now();
  while (!until.stopped) {
    await new Promise((r) => setTimeout(r, QUIET_POLL_MS));
    const now = await size();
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= QUIET_MS) return;
  }
}

/** The byte offset just after this attempt's header line in the agent's log (its output starts there). */
export async function attemptOutputOffset(
  logFile: string,
  header: { agentId: string; taskId: string; attempt: number },
): Promise<number> {
  let fh;
  try {
    fh = await open(logFile, 'r');
  } catch {
    return 0;
  }
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - 8 * MAX_READ);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    const needle = Buffer.from(` ${header.agentId} ${header.taskId} attempt ${header.attempt}: `);
    const at = buf.lastIndexOf(needle);
    if (at < 0) return size;
    const nl = buf.indexOf(0x0a, at);
    return nl < 0 ? size : start + nl + 1;
  } finally {
    await fh.close();
  }
}
