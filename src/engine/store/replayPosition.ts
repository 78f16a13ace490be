import type { JournalDamage } from './journalDamage';
import type { StoreCodec } from './storeCodec';

/**
 * What journal replay (journalReplay.ts) works on and hands back: the position it moves on, what it
 * needs besides, and the signal that it must start again. The store's loader (stateLoader.ts) holds
 * the position; a reader's follow (readerFollow.ts) reads it to decide what to do next.
 */

/** Whether the store writes (a leader) or only reads what a leader wrote. */
export type StoreMode = 'writer' | 'reader';

/** Where a reader (or recovery) has got to: the next byte to read in one segment. */
export interface Cursor {
  seg: string;
  offset: number;
  line: number;
}

/** The state as far as replay has got, and where it reads next. The store holds one; replay moves it on. */
export interface ReplayPosition<S> {
  /** Mutated in place by replay; replaced when the store loads again. */
  state: S;
  /** The seq of the last record replay placed. */
  seq: number;
  cursor: Cursor | undefined;
  /** The cursor segment's size when it was last read, so an idle refresh is a readdir and a stat. */
  cursorSeenSize: number;
  /** For each epoch, the highest seq applied from it (the snapshot included): a new fence below it means reload. */
  appliedEpochs: Map<number, number>;
}

/** What replay needs besides the position: where the files are, how to read records, and where to report. */
export interface ReplayContext<S, R> {
  readonly dir: string;
  readonly codec: StoreCodec<S, R>;
  /** Where what cannot be placed or applied is recorded. */
  readonly damage: JournalDamage;
  /** Commits that applied in part at an earlier attempt, by first seq, with why: left out this time. */
  readonly replaySkip: ReadonlyMap<number, string>;
  readonly warn: (text: string) => void;
}

/** Replay applied part of a commit before one of its records failed: start again and leave that commit out. */
export class ReplayRestart extends Error {
  constructor(
    readonly firstSeq: number,
    readonly why: string,
  ) {
    super(`replay restarts to leave out the commit at record ${firstSeq}`);
  }
}
