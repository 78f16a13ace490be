import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Disposable } from '../model/events';

/**
 * Hints that a task file may have changed. File events are only hints (inotify overflows silently,
 * editors save by rename), so the monitor also rescans every in-flight task file on an interval; a
 * hint only makes that read happen sooner. Directories are watched, not files, so a file replaced by
 * rename is still seen.
 *
 * One `fs.watch` per directory (inotify on Linux), whose events name the file: nothing is read
 * per event. chokidar, used before, read the whole directory again (an lstat per entry) on each
 * event and watched every file in it; a task directory keeps the file of every attempt its agent
 * ever ran, so that cost grew with the run (1 000 tasks through 16 agents: a third of the
 * pipeline process's CPU by the last hundred tasks, in bench/scale.bench.ts).
 */
export class MarkerWatcher implements Disposable {
  private readonly watchers = new Map<string, FSWatcher>();
  private disposed = false;

  constructor(private readonly onHint: (file: string) => void) {}

  watchDir(dir: string): void {
    // After dispose, a new watcher would keep the process alive with nobody to close it.
    if (this.disposed || this.watchers.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: true }, (_event, name) => {
        // No name (some platforms, an overflow): the monitor's rescan covers for it.
        if (name) this.onHint(join(dir, name.toString()));
      });
    } catch {
      // A directory that cannot be watched (gone already): the rescan covers for it.
      return;
    }
    // A watcher error (its directory removed) loses events; the rescan covers for it, and the next
    // watchDir for that directory watches it again.
    watcher.on('error', () => {
      watcher.close();
      if (this.watchers.get(dir) === watcher) this.watchers.delete(dir);
    });
    this.watchers.set(dir, watcher);
  }

  dispose(): void {
    this.disposed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
