import type { Sql } from './pgDatabase';

/**
 * How a state is kept in tables beside its record log, for the PostgreSQL store: which rows a
 * commit's records change, and how the state is read back. The store knows nothing of tasks beyond
 * this (pipelineTables.ts is the pipeline's).
 *
 * The tables are the state: a store opens by reading them (in one snapshot of the database), and
 * every commit updates them in the same transaction as its records, so they always match the seq
 * in `pipeline.state_head`.
 */
export interface TableProjection<S, R> {
  /**
   * Called before `records` are applied to `state`: notes what they touch. The plan's `write` is
   * called after they were applied, inside the commit's transaction, with the state after them.
   */
  plan(state: S, records: readonly R[]): TablePlan<S>;
  /**
   * The state as the tables hold it, as JSON for the codec's `parseSnapshot` (which validates it);
   * undefined when nothing was ever committed. Runs inside a read-only snapshot transaction.
   */
  load(sql: Sql): Promise<unknown>;
}

export interface TablePlan<S> {
  write(sql: Sql, state: S, seq: number): Promise<void>;
  /**
   * Puts back in `state` what the records changed, as it was when the plan was made: a commit that
   * failed leaves nothing applied in memory, even while the database cannot be read.
   */
  undo(state: S): void;
}
