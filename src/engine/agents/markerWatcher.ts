import { watch, type FSWatcher } from 'chokidar';
import type { Disposable } from '../model/events';

/**
 * Hints that a task file may have changed. File events are only hints (inotify overflows silently,
 * editors save by rename), so the monitor also rescans every in-flight task file on an interval; a
 * hint only makes that read happen sooner. Directories are watched, not files, so a file replaced by
 * rename is still seen.
 */
export class MarkerWatcher implements Disposable {
  private watcher: FSWatcher | undefined;
  private dirs = new Set<string>();
  private disposed = false;

  constructor(private readonly onHint: (file: string) => void) {}

  watchDir(dir: string): void {
    // After dispose, a new watcher would keep the process alive with nobody to close it.
    if (this.disposed || this.dirs.has(dir)) return;
    this.dirs.add(dir);
    if (!this.watcher) {
      this.watcher = watch([], { ignoreInitial: true, depth: 0, persistent: true });
      this.watcher.on('add', (p) => this.onHint(p));
      this.watcher.on('change', (p) => this.onHint(p));
      // A watcher error loses events; the monitor's rescan covers for it.
      this.watcher.on('error', () => undefined);
    }
    this.watcher.add(dir);
  }

  dispose(): void {
    this.disposed = true;
    void this.watcher?.close();
    this.watcher = undefined;
    this.dirs.clear();
  }
}
