import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { writeFileAtomic } from './atomicFile';
import { PipelineError, isPipelineError, type PipelineErrorCode } from './errors';
import type { Disposable } from './model/events';

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

export type InboxHandler = (method: string, args: unknown[]) => Promise<unknown>;

export class InboxServer implements Disposable {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private disposed = false;

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
    this.running = true;
    void this.scan().finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async scan(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names.filter((n) => n.endsWith('.req.json')).sort()) {
      if (this.disposed) return;
      const file = join(this.dir, name);
      let req: InboxRequest;
      try {
        req = requestSchema.parse(JSON.parse(await readFile(file, 'utf8')));
      } catch {
        // Unreadable or foreign: moved aside so it is neither lost nor read again.
        await rm(file, { force: true }).catch(() => undefined);
        continue;
      }
      let reply: z.infer<typeof replySchema>;
      try {
        reply = { id: req.id, ok: true, result: (await this.handler(req.method, req.args)) ?? null };
      } catch (e) {
        const err = isPipelineError(e)
          ? {
              code: e.code,
              message: e.message,
              details: Object.fromEntries(Object.entries(e.details).filter(([, v]) => typeof v === 'string')) as Record<
                string,
                string
              >,
            }
          : { code: 'internal', message: e instanceof Error ? e.message : String(e) };
        reply = { id: req.id, ok: false, error: err };
      }
      await writeFileAtomic(join(this.dir, `${req.id}.res.json`), JSON.stringify(reply));
      await rm(file, { force: true });
    }
  }

  dispose(): void {
    this.disposed = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }
}

/** Sends a request to the leader and waits for its reply; the error names the leader on time-out. */
export async function sendInboxRequest(
  dir: string,
  method: string,
  args: unknown[],
  opts: { timeoutMs?: number; leaderLabel?: string } = {},
): Promise<unknown> {
  await mkdir(dir, { recursive: true });
  const id = randomUUID();
  const req: InboxRequest = {
    id,
    method,
    args,
    from: { pid: process.pid, host: hostname() },
    at: new Date().toISOString(),
  };
  const resFile = join(dir, `${id}.res.json`);
  await writeFileAtomic(join(dir, `${id}.req.json`), JSON.stringify(req));
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  try {
    watcher = watch(dir, () => wake?.());
  } catch {
    // Polling below is enough.
  }
  try {
    while (Date.now() < deadline) {
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
        await rm(join(dir, `${id}.req.json`), { force: true });
        const reply = replySchema.parse(JSON.parse(text));
        if (reply.ok) return reply.result;
        const { code, message, details } = reply.error;
        throw new PipelineError(code as PipelineErrorCode, message, details ?? {});
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
  await rm(join(dir, `${id}.req.json`), { force: true });
  throw new PipelineError(
    'not-leader',
    `The pipeline's leader${opts.leaderLabel ? ` (${opts.leaderLabel})` : ''} did not answer within ${Math.round(timeoutMs / 1000)} s.`,
    {
      fix: 'Check that the leading process is still running; if it is not, its lease expires within seconds and the next command takes over.',
    },
  );
}
