/**
 * What the state store needs to know about the state it keeps: how to start, read, validate and
 * apply it. The store knows nothing of tasks beyond this (model/stateCodec.ts is the pipeline's).
 */

export interface StoreCodec<S, R> {
  initial(): S;
  /** Validates a snapshot's content (read from `file`); throws on invalid content, naming `file`. */
  parseSnapshot(json: unknown, file: string): S;
  /** Validates a record read back from the journal (or about to be written); throws on invalid content. */
  parseRecord(json: unknown): R;
  /** Applies one record in place; throws, leaving the state unchanged, when the record does not apply. */
  apply(state: S, rec: R): void;
  /**
   * A snapshot layout of the codec's own, named in the snapshot's header, so that a state can be
   * read part by part and a snapshot can reuse what did not change. Without one, a snapshot's body
   * is the state's json, read by `parseSnapshot`. Snapshots of either kind are always read.
   */
  readonly layout?: SnapshotLayout<S>;
}

import type { SnapshotLines } from './snapshotLines';

/**
 * A layout's body is lines, each ending with a newline. The store checks the whole body's checksum
 * at open and gives `read` its first `headLines` lines whole and the others on demand, each proved
 * again when it is read (snapshotLines.ts).
 */
export interface SnapshotLayout<S> {
  readonly name: string;
  /** How many lines at the body's start `read` gets whole. */
  readonly headLines: number;
  /** The body of a snapshot of `state` that will be written as `file`; yields to the event loop as it goes. */
  write(state: S, file: string): Promise<Buffer>;
  /** The state from a body `write` produced (checksum already verified); throws on invalid content, naming the file. */
  read(lines: SnapshotLines): S;
}
