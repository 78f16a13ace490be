import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';

/**
 * Wakes the waits for agents' exit files when the run directory changes, so a terminal runner does
 * not read every working agent's exit file ten times a second in the extension host: one watch of
 * the directory, and a slow poll behind it (file events are hints: inotify can overflow, and a watch
 * can fail to start), which is the `sleep` a wait uses between two reads.
 */
export class ExitFileWaker {
  private watcher: FSWatcher | undefined;
  private readonly sleepers = new Map<string, Set<() => void>>();
  /** Files written while nobody slept on them: the next sleep on one returns at once. */
  private readonly written = new Set<string>();
  private readonly expected = new Set<string>();
  private disposed = false;

  constructor(private readonly dir: string) {}

  /** Starts the watch (the directory must exist); without one, sleeps last their whole time. */
  start(): void {
    if (this.watcher || this.disposed) return;
    try {
      const w = watch(this.dir, (_event, name) => {
        if (name) this.wake(join(this.dir, name.toString()));
      });
      // A failed watch loses events; the polls cover for it.
      w.on('error', () => {
        w.close();
        if (this.watcher === w) this.watcher = undefined;
      });
      this.watcher = w;
    } catch {
      // No watch (a file system without one): the polls alone.
    }
  }

  /** Marks a file as waited for: its writes are remembered until a sleep on it takes them. */
  expect(file: string): void {
    this.expected.add(file);
  }

  /** The wait for `file` is over: nothing about it is kept. */
  forget(file: string): void {
    this.expected.delete(file);
    this.written.delete(file);
  }

  /** Resolves after `ms`, or sooner when `file` is written (or `wake` names it). */
  sleep(file: string, ms: number): Promise<void> {
    if (this.written.delete(file)) return Promise.resolve();
    return new Promise((resolve) => {
      const set = this.sleepers.get(file) ?? new Set<() => void>();
      this.sleepers.set(file, set);
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.sleepers.delete(file);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  /** Ends the sleeps on `file` now (it was written, or its terminal closed or is being stopped). */
  wake(file: string): void {
    const set = this.sleepers.get(file);
    if (set?.size) for (const done of [...set]) done();
    else if (this.expected.has(file)) this.written.add(file);
  }

  /** Ends the watch; sleeps under way last their time (the polls go on while a wait does). */
  dispose(): void {
    this.disposed = true;
    this.watcher?.close();
    this.watcher = undefined;
    this.written.clear();
    this.expected.clear();
  }
}
