import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Emitter, type Disposable, type Event, type TypedEvents } from '../model/events';
import type { PipelineEventMap } from '../model/pipelineEvents';
import { describeEvent, type LogLevel, type LogRecord } from './eventLog';

export type { LogLevel, LogRecord } from './eventLog';

/**
 * Structured logs: one JSON object per line in `.pipeline/logs/pipeline.log`, rotated by size
 * (`pipeline.log.1` is the newest rotated file, `pipeline.log.<maxFiles>` the oldest kept).
 *
 * Every line has `time`, `level`, `event` and `message`, and `task` and `agent` when the event
 * names them; `data` holds the event's other fields (tasks and agents by id and status, never their
 * whole text). Lines are queued in memory and written by one writer at a time with asynchronous
 * appends, so logging never blocks the event that caused it and lines are never interleaved or torn;
 * `flush`/`close` wait for what is queued. A file never grows past `maxBytes` unless one line alone
 * is longer.
 */

export interface JsonLoggerOptions {
  /** Rotate when the file would grow past this many bytes. Default 5 MB. */
  maxBytes?: number;
  /** Rotated files kept (`pipeline.log.1` … `pipeline.log.<maxFiles>`). Default 5. */
  maxFiles?: number;
  /** Lines queued in memory beyond this are dropped (and the drop is logged). Default 10 000. */
  maxQueuedLines?: number;
  /** Called when a write or a rotation fails; the logger goes on with the next lines. */
  onError?: (e: Error) => void;
  /** Time source for `time`. Default Date.now. */
  now?: () => number;
}

/** The rotation every log of a pipeline shares: 5 MB per file, 5 rotated files kept. */
export const LOG_ROTATION = { maxBytes: 5 * 1024 * 1024, maxFiles: 5 } as const;

/**
 * Rotates `file`: `file.<maxFiles>` is removed, each `file.<i>` becomes `file.<i+1>`, and `file`
 * becomes `file.1` (the newest rotated file). Missing files are skipped. The caller makes sure no
 * one appends to `file` meanwhile, or those lines land in `file.1`.
 */
export async function rotateLogFile(file: string, maxFiles: number = LOG_ROTATION.maxFiles): Promise<void> {
  const name = (i: number) => `${file}.${i}`;
  await unlink(name(maxFiles)).catch(ignoreEnoent);
  for (let i = maxFiles - 1; i >= 1; i--) await rename(name(i), name(i + 1)).catch(ignoreEnoent);
  await rename(file, name(1)).catch(ignoreEnoent);
}

/**
 * Rotates `file` when it has reached `maxBytes`: for logs that others append to (an agent's output,
 * written by its runner), rotated between writers, before the next one starts. True when it rotated.
 */
export async function rotateLogIfFull(
  file: string,
  o: { maxBytes?: number; maxFiles?: number } = {},
): Promise<boolean> {
  const size = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  if (size < (o.maxBytes ?? LOG_ROTATION.maxBytes)) return false;
  await rotateLogFile(file, o.maxFiles ?? LOG_ROTATION.maxFiles);
  return true;
}

/** Where the pipeline's log lives under a home's logs directory. */
export function pipelineLogFile(logsDir: string): string {
  return join(logsDir, 'pipeline.log');
}

export class JsonLogger implements Disposable {
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private readonly maxQueued: number;
  private readonly now: () => number;
  private readonly lines = new Emitter<{ record: LogRecord; text: string }>();
  private queue: string[] = [];
  private dropped = 0;
  private writing = false;
  private idleWaiters: (() => void)[] = [];
  private fh: FileHandle | undefined;
  private size = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private subs: Disposable[] = [];

  constructor(
    /** The log file (`pipelineLogFile(home.logsDir)` for a pipeline). */
    readonly file: string,
    private readonly opts: JsonLoggerOptions = {},
  ) {
    this.maxBytes = Math.max(1, opts.maxBytes ?? LOG_ROTATION.maxBytes);
    this.maxFiles = Math.max(1, opts.maxFiles ?? LOG_ROTATION.maxFiles);
    this.maxQueued = Math.max(1, opts.maxQueuedLines ?? 10_000);
    this.now = opts.now ?? Date.now;
  }

  /** A logger for a pipeline's events, writing under its home's logs directory. */
  static forPipeline(
    p: { events: TypedEvents<PipelineEventMap>; home: { logsDir: string } },
    opts: JsonLoggerOptions = {},
  ): JsonLogger {
    const logger = new JsonLogger(pipelineLogFile(p.home.logsDir), opts);
    logger.attach(p.events);
    return logger;
  }

  /** Logs every event of `events` except `state:changed`; `dispose` of the result stops that. */
  attach(events: TypedEvents<PipelineEventMap>): Disposable {
    const sub = events.onAny((e) => {
      const type = String(e.type);
      if (type === 'state:changed') return;
      // Progress is logged by its steps only: its other news (words, running token counts) would flood the log.
      if (type === 'agent:progress' && !(e.payload as { line?: string }).line) return;
      this.write({ ...describeEvent(type, e.payload), time: new Date(this.now()).toISOString() });
    });
    this.subs.push(sub);
    return sub;
  }

  /**
   * Every line as it is queued, with its JSON text: for mirroring into an editor's output channel.
   * Listeners run synchronously; they must be quick.
   */
  get onLine(): Event<{ record: LogRecord; text: string }> {
    return this.lines.event;
  }

  /** Logs one line of the logger's user's own (not a pipeline event). */
  log(
    level: LogLevel,
    event: string,
    message: string,
    extra: { task?: string; agent?: string; data?: Record<string, unknown> } = {},
  ): void {
    this.write({
      time: new Date(this.now()).toISOString(),
      level,
      event,
      ...(extra.task ? { task: extra.task } : {}),
      ...(extra.agent ? { agent: extra.agent } : {}),
      message,
      ...(extra.data ? { data: extra.data } : {}),
    });
  }

  private write(r: LogRecord): void {
    if (this.closed) return;
    // The documented keys first, in a fixed order, so lines read well.
    const record: LogRecord = {
      time: r.time,
      level: r.level,
      event: r.event,
      ...(r.task ? { task: r.task } : {}),
      ...(r.agent ? { agent: r.agent } : {}),
      message: r.message,
      ...(r.data ? { data: r.data } : {}),
    };
    let text: string;
    try {
      text = JSON.stringify(record);
    } catch {
      text = JSON.stringify({ ...record, data: { unserialisable: true } });
    }
    if (this.queue.length >= this.maxQueued) {
      this.dropped++;
      return;
    }
    this.queue.push(text + '\n');
    this.lines.fire({ record, text });
    this.kick();
  }

  private kick(): void {
    if (this.writing) return;
    this.writing = true;
    void this.drain().finally(() => {
      this.writing = false;
      if (this.queue.length > 0) this.kick();
      else {
        const ws = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of ws) w();
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      if (this.dropped > 0) {
        batch.push(
          JSON.stringify({
            time: new Date(this.now()).toISOString(),
            level: 'warn',
            event: 'log:dropped',
            message: `${this.dropped} log line(s) dropped: the log could not keep up`,
          }) + '\n',
        );
        this.dropped = 0;
      }
      try {
        await this.writeLines(batch);
      } catch (e) {
        this.opts.onError?.(e instanceof Error ? e : new Error(String(e)));
        // The file handle may be unusable; the next batch reopens it.
        await this.fh?.close().catch(() => undefined);
        this.fh = undefined;
      }
    }
  }

  private async ensureOpen(): Promise<FileHandle> {
    if (this.fh) return this.fh;
    await mkdir(dirname(this.file), { recursive: true });
    const fh = await open(this.file, 'a');
    this.size = (await fh.stat()).size;
    this.fh = fh;
    return fh;
  }

  /** Appends the lines, rotating between them whenever the next one would not fit. */
  private async writeLines(lines: string[]): Promise<void> {
    let fh = await this.ensureOpen();
    let chunk: string[] = [];
    let chunkBytes = 0;
    for (const line of lines) {
      const n = Buffer.byteLength(line);
      if (this.size + chunkBytes + n > this.maxBytes && this.size + chunkBytes > 0) {
        if (chunk.length) await this.append(fh, chunk.join(''));
        chunk = [];
        chunkBytes = 0;
        fh = await this.rotate();
      }
      chunk.push(line);
      chunkBytes += n;
    }
    if (chunk.length) await this.append(fh, chunk.join(''));
  }

  private async append(fh: FileHandle, text: string): Promise<void> {
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await fh.write(buf, off, buf.length - off);
      off += bytesWritten;
    }
    this.size += buf.length;
  }

  /** pipeline.log → .1 → .2 …; the oldest beyond maxFiles is removed. */
  private async rotate(): Promise<FileHandle> {
    await this.fh?.close();
    this.fh = undefined;
    await rotateLogFile(this.file, this.maxFiles);
    return this.ensureOpen();
  }

  /** Resolves once every line logged so far is written. */
  flush(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops listening, writes what is queued and closes the file. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const s of this.subs) s.dispose();
      this.subs = [];
      this.closed = true;
      await this.flush();
      this.lines.dispose();
      await this.fh?.close().catch(() => undefined);
      this.fh = undefined;
    })();
    return this.closing;
  }

  dispose(): void {
    void this.close();
  }
}

function ignoreEnoent(e: unknown): void {
  if ((e as NodeJS.ErrnoException | null)?.code !== 'ENOENT') throw e;
}
