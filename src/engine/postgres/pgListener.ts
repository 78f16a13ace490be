import pg from 'pg';

/**
 * A LISTEN on one channel that outlives the server restarting: its own connection (a pooled one
 * could not keep the LISTEN), reconnected with back-off when it drops. Notifications are hints, not
 * the truth: after every reconnect `onNotify` is called once, because notifications sent while the
 * connection was down are lost; a reader's polling remains the backstop.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private closed = false;
  private delay = 100;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onNotify: () => void,
  ) {}

  /** Starts listening; resolves once the first LISTEN is in place, or after the first failure (it keeps trying). */
  static async start(url: string, channel: string, onNotify: () => void): Promise<PgListener> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`Invalid channel name ${channel}.`);
    const l = new PgListener(url, channel, onNotify);
    await l.connect();
    return l;
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5_000, keepAlive: true });
    let dropped = false;
    const drop = () => {
      if (dropped) return;
      dropped = true;
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
      this.retry();
    };
    client.on('error', drop);
    client.on('end', drop);
    client.on('notification', (n) => {
      if (n.channel === this.channel) this.onNotify();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch {
      drop();
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    // The connection (re)started: anything committed meanwhile was not notified.
    if (this.delay > 100) this.onNotify();
    this.delay = 100;
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, this.delay);
    this.timer.unref();
    this.delay = Math.min(this.delay * 2, 5_000);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
