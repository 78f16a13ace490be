/**
 * What the git layer spends its time on, for benchmarks and tracing: every git command it runs and
 * every wait for one of its locks (repoLock.ts). Nothing is recorded while nobody listens, so the
 * cost on the hot path is one `size` check per event.
 */

export type GitEvent =
  | {
      readonly type: 'command';
      /** The git subcommand (`status`, `switch`, `update-ref`). */
      readonly command: string;
      readonly cwd: string;
      readonly ms: number;
      readonly exitCode: number;
    }
  | {
      /** A command found one of git's lock files held (by another process) and will be tried again, or fails. */
      readonly type: 'lock-busy';
      readonly lockFile: string;
      readonly attempt: number;
    }
  | {
      /** `lock-wait`: from asking for a lock to getting it; `lock-held`: from getting it to releasing it. */
      readonly type: 'lock-wait' | 'lock-held';
      /** `repository`, `ref`, `worktree` or `file`. */
      readonly level: string;
      readonly name: string;
      readonly mode: 'shared' | 'exclusive';
      readonly ms: number;
    };

type Listener = (e: GitEvent) => void;

const listeners = new Set<Listener>();

/** Calls `listener` for every git command and lock wait of this process until the returned function is called. */
export function observeGit(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function emitGitEvent(e: GitEvent): void {
  if (listeners.size === 0) return;
  for (const l of listeners) {
    try {
      l(e);
    } catch {
      // A listener's failure is its own; the git operation goes on.
    }
  }
}

/** True when someone listens (so a caller can skip measuring). */
export function gitObserved(): boolean {
  return listeners.size > 0;
}
