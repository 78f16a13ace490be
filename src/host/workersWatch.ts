import type { Disposable } from '../engine/model/events';
import type { Pipeline } from '../engine/pipeline';
import { NO_WORKERS, type WorkersStatus } from '../engine/workers/workerStatus';

/**
 * The workers of a pipeline in PostgreSQL as a window shows them: read from the database when the
 * state changes and every few seconds (a worker goes offline by its silence, which changes no
 * state), and announced only when what a tree shows changed (which workers run which agents, live
 * or not). A pipeline in files has no workers: nothing is read. A failed reading (the database
 * restarting) keeps the last one; the next tries again.
 */
export class WorkersWatch implements Disposable {
  private last: WorkersStatus = NO_WORKERS;
  private shown = '';
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private disposed = false;
  private readonly sub: Disposable;

  private constructor(
    private readonly pipeline: Pipeline,
    private readonly onChange: () => void,
    private readonly everyMs: number,
  ) {
    this.sub = pipeline.events.on('state:changed', () => void this.refresh());
    this.schedule();
    void this.refresh();
  }

  /** Watches `p`'s workers when its state is in PostgreSQL; undefined otherwise. */
  static start(p: Pipeline, onChange: () => void, everyMs = 3_000): WorkersWatch | undefined {
    return p.storeLocation.kind === 'postgres' ? new WorkersWatch(p, onChange, everyMs) : undefined;
  }

  /** The last reading (none before the first). */
  get status(): WorkersStatus {
    return this.last;
  }

  /** Reads again now; readings never overlap. Resolves when the reading under way (or this one) is done. */
  refresh(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = this.read().finally(() => {
      this.reading = undefined;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    const w = await this.pipeline.workers().catch(() => undefined);
    if (!w || this.disposed) return;
    this.last = w;
    const shown = JSON.stringify(w.agent_workers);
    if (shown === this.shown) return;
    this.shown = shown;
    this.onChange();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      if (this.disposed) return;
      void this.refresh();
      this.schedule();
    }, this.everyMs);
    this.timer.unref();
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.sub.dispose();
  }
}
