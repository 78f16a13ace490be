/**
 * Events and disposables shaped like VS Code's (`Event<T>`, `Disposable`), defined here so the
 * engine stays free of `vscode` while views subscribe to it the usual way.
 */
export interface Disposable {
  dispose(): void;
}

export type Event<T> = (listener: (e: T) => void) => Disposable;

export class Emitter<T> implements Disposable {
  private listeners = new Set<(e: T) => void>();
  private disposed = false;

  readonly event: Event<T> = (listener) => {
    if (this.disposed) return { dispose: () => undefined };
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  /** Calls every listener; one that throws does not stop the others, and its error is reported. */
  fire(e: T): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  dispose(): void {
    this.disposed = true;
    this.listeners.clear();
  }
}

/** Holds disposables and disposes them together, last added first. */
export class DisposableStore implements Disposable {
  private items: Disposable[] = [];
  add<D extends Disposable>(d: D): D {
    this.items.push(d);
    return d;
  }
  dispose(): void {
    const items = this.items.reverse();
    this.items = [];
    for (const d of items) d.dispose();
  }
}

/**
 * A typed, namespaced event map: one emitter per event name, so the trees, the status bar, the CLI's
 * progress printer and the metrics all subscribe to exactly what they need.
 */
export class TypedEvents<M extends Record<string, unknown>> implements Disposable {
  private emitters = new Map<keyof M, Emitter<unknown>>();
  private anyEmitter = new Emitter<{ [K in keyof M]: { type: K; payload: M[K] } }[keyof M]>();

  on<K extends keyof M>(type: K, listener: (payload: M[K]) => void): Disposable {
    let em = this.emitters.get(type);
    if (!em) {
      em = new Emitter<unknown>();
      this.emitters.set(type, em);
    }
    return em.event(listener as (e: unknown) => void);
  }

  /** Every event, in order, tagged with its name: for loggers and the `--json` progress stream. */
  readonly onAny = this.anyEmitter.event;

  emit<K extends keyof M>(type: K, payload: M[K]): void {
    this.emitters.get(type)?.fire(payload);
    this.anyEmitter.fire({ type, payload });
  }

  dispose(): void {
    for (const e of this.emitters.values()) e.dispose();
    this.emitters.clear();
    this.anyEmitter.dispose();
  }
}
