import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * `JSON.stringify` in slices of a few milliseconds, yielding to the event loop between them.
 *
 * A 10 000-task state is about 5 MB of json; one `JSON.stringify` call takes 30–60 ms, during which
 * the extension host does nothing else. The snapshot must still capture the state at one seq
 * exactly, so the caller holds its commit queue while this runs (commits wait, the rest of the host
 * does not).
 *
 * The split is two levels deep, which is where a state's size is (a record of tasks, a list of
 * decisions): the top-level object's members, and the members of any large plain object or array
 * among them, are stringified one by one. The output is byte for byte what `JSON.stringify` gives
 * for plain data; anything with a `toJSON` is left to `JSON.stringify` whole.
 */

// Time slices are measured with the global `performance`, which Node loads on first use (a read-only
// command, which writes no snapshot, never loads perf_hooks).

/** Members beyond which an object or array is split into separately stringified entries. */
const SPLIT_AT = 64;

function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === null) && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
}

export async function sliceStringify(value: unknown, sliceMs = 4): Promise<string> {
  if (!isPlain(value)) return JSON.stringify(value);
  let deadline = performance.now() + sliceMs;
  const pause = async (): Promise<void> => {
    await nextTurn();
    deadline = performance.now() + sliceMs;
  };

  const members: string[] = [];
  for (const key of Object.keys(value)) {
    const v = value[key];
    let json: string | undefined;
    if (isPlain(v) && Object.keys(v).length > SPLIT_AT) {
      const inner: string[] = [];
      for (const k of Object.keys(v)) {
        const s = JSON.stringify(v[k]);
        if (s !== undefined) inner.push(`${JSON.stringify(k)}:${s}`);
        if (performance.now() > deadline) await pause();
      }
      json = `{${inner.join(',')}}`;
    } else if (Array.isArray(v) && v.length > SPLIT_AT && typeof (v as { toJSON?: unknown }).toJSON !== 'function') {
      const items: string[] = [];
      for (const item of v as unknown[]) {
        // As JSON.stringify does: what has no json form becomes null inside an array.
        items.push(JSON.stringify(item) ?? 'null');
        if (performance.now() > deadline) await pause();
      }
      json = `[${items.join(',')}]`;
    } else {
      json = JSON.stringify(v);
    }
    if (json !== undefined) members.push(`${JSON.stringify(key)}:${json}`);
    if (performance.now() > deadline) await pause();
  }
  return `{${members.join(',')}}`;
}
