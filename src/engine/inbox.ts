import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { fileTimestamp, writeFileAtomic } from './store/fsUtil';
import { PipelineError } from './errors';
import { answer, fromWireError, type Reply } from './rpc/requestReply';
import { Emitter, type Disposable, type Event } from './model/events';

/**
 * Requests from other processes to the leader. Only the leader writes the state, so a CLI command
 * run while a `pipeline run` or a VS Code window leads drops its request here as a file and waits for
 * the reply file. Files, not sockets: they need no port, survive the leader restarting, and work the
 * same for every process that can see the repository. A request is written atomically (temp +
 * rename), so the leader never reads half of one; watch events are hints, a periodic scan is the
 * truth.
 */

const requestSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f-]{36}$/),
  method: z.string(),
  args: z.array(z.unknown()),
  from: z.strictObject({ pid: z.number(), host: z.string() }),
  at: z.string(),
});
type InboxRequest = z.infer<typeof requestSchema>;

/**
 * A reply file. Files outlive the process that wrote them, and the sender may be another version:
 * the format stays as it was, narrower than the shared reply (rpc/requestReply.ts): an error always
 * has a code (`internal` for one that is not a PipelineError) and only its string details.
 */
const replySchema = z.union([
  z.strictObject({ id: z.string(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({
    id: z.string(),
    ok: z.literal(false),
    error: z.strictObject({
      code: z.string(),
      message: z.string(),
      details: z.record(z.string(), z.string()).optional(),
    }),
  }),
]);

type InboxReply = z.infer<typeof replySchema>;

/** The shared reply, narrowed to the reply file's format. */
function inboxReply(r: Reply<string>): InboxReply {
  if (r.ok) return r;
  const { code, message, details } = r.error;
  const strings = details
    ? (Object.fromEntries(Object.entries(details).filter(([, v]) => typeof v === 'string')) as Record<string, string>)
    : undefined;
  return {
    id: r.id,
    ok: false,
    error: { code: code ?? 'internal', message, ...(strings ? { details: strings } : {}) },
  };
}

export type InboxHandler = (method: string, args: unknown[]) => Promise<unknown>;

const REQ = '.req.json';
/** A request the leader has taken: it answers it (or dies trying); its sender can no longer withdraw it. */
const TAKEN = '.taken.json';

/** Unreadable requests are renamed `<name>.req.json.corrupt-<time>`: kept for a person, never read again. */
const GARBAGE_TAG = 'corrupt';

/** One warning per unreadable request moved aside in `dir`; they stay until a person removes the files. */
export async function inboxWarnings(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const aside = names.filter((n) => n.includes(`.req.json.${GARBAGE_TAG}-`)).sort();
  if (aside.length === 0) return [];
  return [
    `${aside.length} unreadable request file(s) in ${dir} were moved aside and not applied: ${aside.join(', ')}. Look at them (a change someone asked for may be among them), then delete them.`,
  ];
}

export class InboxServer implements Disposable {
  /** Requests this server moved aside (unreadable), one sentence each. */
  readonly warnings: string[] = [];
  private readonly warningEmitter = new Emitter<string>();
  /** Fires each of `warnings` as it is found, so the leader can say it where its person looks. */
  readonly onWarning: Event<string> = this.warningEmitter.event;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  /** The scan running (or the last one): how many requests it took. */
  private current: Promise<number> = Promise.resolve(0);
  private disposed = false;
  /** After this time (ms since the epoch) scans take no more requests: see `drain`. */
  private takeUntil = Number.POSITIVE_INFINITY;

  constructor(
    private readonly dir: string,
    private readonly handler: InboxHandler,
    private readonly scanMs = 500,
  ) {}

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    try {
      this.watcher = watch(this.dir, () => this.kick());
      this.watcher.on('error', () => this.kick());
    } catch {
      // Watching is only a hint; the periodic scan below still finds every request.
    }
    this.timer = setInterval(() => this.kick(), this.scanMs);
    this.timer.unref();
    this.kick();
  }

  /** Schedules a scan; scans never overlap, and a kick during one runs another after it. */
  kick(): void {
    if (this.disposed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.runScan();
  }

  private runScan(): Promise<number> {
    this.running = true;
    const scan = this.scan().finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
    this.current = scan.catch(() => 0);
    return this.current;
  }

  /**
   * Answers every request waiting now (and those that arrive meanwhile), for up to `maxMs`: a
   * leader that leads only for its own change calls it before letting go, so that the senders
   * queued behind it are served instead of having to take their requests back and try again.
   */
  async drain(maxMs = 2000): Promise<void> {
    const end = Date.now() + maxMs;
    // A scan that found many requests would otherwise go on past `end`, one commit each, while the
    // senders behind the last of them time out; those left are served by the next leader.
    this.takeUntil = end;
    while (!this.disposed && Date.now() < end) {
      if (this.running) {
        await this.current;
        continue;
      }
      if ((await this.runScan()) === 0) return;
    }
  }

  /** Answers the requests in the directory; returns how many it took. */
  private async scan(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    let took = 0;
    for (const name of names.filter((n) => n.endsWith(REQ)).sort()) {
      // Disposed (this process stopped leading), or past the end of a drain: what is not taken yet
      // is left to the next leader, or taken back by its sender.
      if (this.disposed || Date.now() >= this.takeUntil) return took;
      const file = join(this.dir, name);
      // Taking is a rename, so that a request is either taken here or withdrawn by its sender
      // (which removes it when nobody leads any more), never both.
      const taken = `${file.slice(0, -REQ.length)}${TAKEN}`;
      try {
        await rename(file, taken);
      } catch {
        continue;
      }
      let text: string;
      try {
        text = await readFile(taken, 'utf8');
      } catch {
        continue;
      }
      let req: InboxRequest;
      try {
        req = requestSchema.parse(JSON.parse(text));
      } catch (e) {
        // Unreadable or foreign: moved aside so it is neither lost nor read again, and said.
        await this.moveAsideGarbage(taken, file, e);
        continue;
      }
      if (this.disposed) {
        // Stopped leading while taking it: give it back untouched (to the next leader, or to its
        // sender to take back). No await between this check and the handler below.
        await rename(taken, file).catch(() => undefined);
        return took;
      }
      took++;
      const reply = inboxReply(await answer(req.id, () => this.handler(req.method, req.args)));
      await writeFileAtomic(join(this.dir, `${req.id}.res.json`), JSON.stringify(reply));
      await rm(taken, { force: true });
    }
    return took;
  }

  private async moveAsideGarbage(taken: string, file: string, e: unknown): Promise<void> {
    const why = e instanceof z.ZodError ? 'not a request of this version' : 'not valid JSON';
    try {
      const to = `${file}.${GARBAGE_TAG}-${fileTimestamp()}`;
      await rename(taken, to);
      const warning = `Inbox request ${file} is unreadable (${why}); it was moved aside to ${to} and not applied.`;
      this.warnings.push(warning);
      this.warningEmitter.fire(warning);
    } catch {
      // Its sender withdrew it in the meantime: nothing is left to keep.
    }
  }

  dispose(): void {
    this.disposed = true;
    this.warningEmitter.dispose();
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * Thrown by `sendInboxRequest` when the leader stopped leading before it took the request, and the
 * request was taken back: nothing was applied, and the caller may try again (and lead itself).
 */
export class InboxRequestWithdrawn extends Error {
  override readonly name = 'InboxRequestWithdrawn';
  constructor() {
    super('The leader stopped leading before it took the request; the request was withdrawn.');
  }
}

/** How often a sender checks that someone still leads while it waits. */
const LEADER_CHECK_MS = 500;

/** How many more times a sender waits `timeoutMs` for a request its leader has taken. */
const MAX_TAKEN_WAITS = 4;

/** The other requests waiting in `dir` besides `name`, not taken yet. */
async function otherRequests(dir: string, name: string): Promise<Set<string>> {
  try {
    return new Set((await readdir(dir)).filter((n) => n.endsWith(REQ) && n !== name));
  } catch {
    return new Set();
  }
}

/**
 * A request file's name begins with the time its change was first sent, so the leader, which takes
 * requests in the order of their names, serves them first come, first served; a request sent again
 * (after a short-lived leader let go) keeps its place.
 */
function requestName(id: string, queuedAt: number): string {
  return `${String(Math.max(0, Math.floor(queuedAt))).padStart(15, '0')}-${id}${REQ}`;
}

/**
 * Sends a request to the leader and waits for its reply; the error names the leader on time-out.
 * With `leaderGone`, a sender whose leader stops leading before taking the request takes it back
 * and throws `InboxRequestWithdrawn` (a short-lived leader, such as a `pipeline task add` while no
 * pipeline runs, leads only for its own change), rather than wait for an answer that never comes.
 */
export async function sendInboxRequest(
  dir: string,
  method: string,
  args: unknown[],
  opts: {
    timeoutMs?: number;
    leaderLabel?: string;
    leaderGone?: () => Promise<boolean>;
    /**
     * Asked when the time is up and the request is not taken yet: true when the leader will soon
     * let go (it leads for one change), so the request is taken back (`InboxRequestWithdrawn`) to be
     * sent again or applied here, rather than reported as failed while a busy machine serves others.
     */
    withdrawOnTimeout?: () => Promise<boolean>;
    /** When the change was first sent (ms since the epoch): its place in the leader's queue. */
    queuedAt?: number;
  } = {},
): Promise<unknown> {
  await mkdir(dir, { recursive: true });
  // The global Web Crypto object, loaded on first use: a read-only command never loads node:crypto.
  const id = globalThis.crypto.randomUUID();
  const req: InboxRequest = {
    id,
    method,
    args,
    from: { pid: process.pid, host: hostname() },
    at: new Date().toISOString(),
  };
  const resFile = join(dir, `${id}.res.json`);
  const reqName = requestName(id, opts.queuedAt ?? Date.now());
  const reqFile = join(dir, reqName);
  const takenFile = join(dir, `${reqName.slice(0, -REQ.length)}${TAKEN}`);
  await writeFileAtomic(reqFile, JSON.stringify(req));
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let deadline = Date.now() + timeoutMs;
  let takenWaits = 0;
  let waiting = await otherRequests(dir, reqName);
  const started = Date.now();
  let nextLeaderCheck = Date.now() + LEADER_CHECK_MS;
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  try {
    // Only our own reply wakes us: with many senders waiting, waking all of them at every change in
    // the inbox costs more than the leader's work (the name may be missing on some platforms).
    const ours = `${id}.res.json`;
    watcher = watch(dir, (_event, name) => {
      if (!name || String(name) === ours) wake?.();
    });
  } catch {
    // Polling below is enough.
  }
  try {
    for (;;) {
      if (Date.now() >= deadline) {
        if (await present(takenFile)) {
          // Taken: the leader is applying it (a busy machine can make that slow); it answers before
          // it lets go. Wait on, a few times, while it leads, rather than report a change that is
          // being made as failed.
          if (takenWaits >= MAX_TAKEN_WAITS || (opts.leaderGone && (await opts.leaderGone()))) break;
          takenWaits++;
        } else {
          const before = waiting;
          waiting = await otherRequests(dir, reqName);
          // Requests that waited at the last look have been taken since: the leader is busy serving
          // them (a scan takes those it listed first), not stuck. Wait on.
          if (![...before].some((n) => !waiting.has(n))) {
            if (!(opts.withdrawOnTimeout && (await opts.withdrawOnTimeout()))) break;
            // Not taken, and its leader leads for one change and lets go soon: take the request
            // back, to be sent again or applied here. Unless that leader took it just now: then wait.
            if (await removed(reqFile)) throw new InboxRequestWithdrawn();
          }
        }
        deadline = Date.now() + timeoutMs;
      }
      let text: string | undefined;
      try {
        text = await readFile(resFile, 'utf8');
      } catch {
        text = undefined;
      }
      if (text !== undefined) {
        await rm(resFile, { force: true });
        // The leader removes the request after replying; if it stopped in between (paused, killed),
        // the request would be applied again by the next leader. Answered is done: remove it here too.
        await rm(reqFile, { force: true });
        await rm(takenFile, { force: true });
        const reply = replySchema.parse(JSON.parse(text));
        if (reply.ok) return reply.result;
        throw fromWireError(reply.error);
      }
      if (opts.leaderGone && Date.now() >= nextLeaderCheck) {
        nextLeaderCheck = Date.now() + LEADER_CHECK_MS;
        // Nobody leads: take the request back unless a leader has taken it (then it answers).
        if ((await opts.leaderGone()) && (await removed(reqFile))) throw new InboxRequestWithdrawn();
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  } finally {
    watcher?.close();
  }
  const withdrawn = await removed(reqFile);
  const wasTaken =
    !withdrawn &&
    (await rm(takenFile).then(
      () => true,
      () => false,
    ));
  const waited = Math.round((Date.now() - started) / 1000);
  throw new PipelineError(
    'not-leader',
    wasTaken
      ? `The pipeline's leader${opts.leaderLabel ? ` (${opts.leaderLabel})` : ''} took the request but did not answer within ${waited} s; it may or may not have been applied.`
      : `The pipeline's leader${opts.leaderLabel ? ` (${opts.leaderLabel})` : ''} did not answer within ${waited} s.`,
    {
      fix: wasTaken
        ? 'Check with `pipeline status` whether the change was made, and run the command again if not.'
        : 'Check that the leading process is still running; if it is not, its lease expires within seconds and the next command takes over.',
    },
  );
}

async function present(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

/** Removes `path`; true when this call removed it (false: it was gone already, taken or withdrawn). */
async function removed(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch {
    return false;
  }
}
