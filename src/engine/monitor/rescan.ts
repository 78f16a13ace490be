import { checkMarker } from './completion';
import type { MonitorContext } from './monitorContext';

/**
 * The reconciliation rescan: file events are only hints (inotify overflows silently), so every
 * in-flight task file is read again on an interval that adapts to the load, the seed's 60/30/15 s
 * (idle / normal / busy), now only the backstop.
 */
export class Rescan {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: MonitorContext,
    private readonly seconds: () => { idle: number; normal: number; busy: number },
  ) {}

  schedule(): void {
    if (this.ctx.stopped) return;
    const r = this.seconds();
    const active = this.ctx.attempts.size;
    const secs = active === 0 ? r.idle : active > 3 ? r.busy : r.normal;
    this.timer = setTimeout(() => {
      void this.now().then(() => this.schedule());
    }, secs * 1000);
  }

  /** Reads every in-flight task file now. */
  async now(): Promise<void> {
    for (const a of this.ctx.attempts.all()) await checkMarker(this.ctx, a);
    this.ctx.kick();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
