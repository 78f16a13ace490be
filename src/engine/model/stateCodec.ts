import { PipelineError } from '../errors';
import { describeZodError, emptyState, stateSchema, STATE_SCHEMA_VERSION, type PipelineState } from './schema';
import { applyRecord, stateRecordSchema, type StateRecord } from './stateRecords';
import type { StoreCodec } from '../store/stateStore';
import { HEAD_LINES, LAZY_LAYOUT, readLazySnapshot, writeLazySnapshot } from './lazySnapshot';

/**
 * How the pipeline state is read from snapshots and journal records. Snapshots written by an older
 * schema version are migrated here, step by step, before validation; a newer version than this build
 * knows is refused rather than guessed at.
 */

type Migration = (old: Record<string, unknown>) => Record<string, unknown>;

/** MIGRATIONS[n] upgrades a state of schema version n to n + 1. */
const MIGRATIONS: Record<number, Migration> = {
  // Version 0: the seed's own state file (no schema_version). Its tasks cannot be carried over as
  // they are (they have no stages); `pipeline task import` reads them instead.
  0: (old) => ({
    ...emptyState(),
    orchestration_mode: typeof old.orchestration_mode === 'string' ? old.orchestration_mode : 'parallel',
  }),
  // Version 1 had no token usage, no pauses and no interactive agents: every new field is optional
  // and absent means none, so a version 1 state is a valid version 2 state as it is.
  1: (old) => old,
};

export function migrateState(json: unknown, file = 'state snapshot'): unknown {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return json;
  let obj = json as Record<string, unknown>;
  let v = typeof obj.schema_version === 'number' ? obj.schema_version : 0;
  if (v > STATE_SCHEMA_VERSION) {
    throw new PipelineError(
      'invalid-state',
      `${file} has schema version ${v}; this build reads up to ${STATE_SCHEMA_VERSION}.`,
      {
        file,
        fix: 'Update Agent Pipeline to a version that knows this state.',
      },
    );
  }
  while (v < STATE_SCHEMA_VERSION) {
    const m = MIGRATIONS[v];
    if (!m) throw new PipelineError('invalid-state', `No migration from schema version ${v}.`, { file });
    obj = { ...m(obj), schema_version: v + 1 };
    v++;
  }
  return obj;
}

export function parseState(json: unknown, file = 'state snapshot'): PipelineState {
  const r = stateSchema.safeParse(migrateState(json, file));
  if (!r.success) {
    throw new PipelineError('invalid-state', `${file} is not a valid pipeline state: ${describeZodError(r.error)}.`, {
      file,
      where: r.error.issues[0]?.path.join('.') || '(top level)',
      fix: `Move ${file} aside (for example to ${file}.bad) and run the command again: the state is then recovered from the older snapshot and the journal.`,
    });
  }
  return r.data;
}

export const pipelineStateCodec: StoreCodec<PipelineState, StateRecord> = {
  initial: emptyState,
  parseSnapshot: (json, file) => parseState(json, file),
  parseRecord: (json) => {
    const r = stateRecordSchema.safeParse(json);
    if (!r.success) throw new PipelineError('corrupt-journal', `Invalid journal record: ${describeZodError(r.error)}.`);
    return r.data;
  },
  apply: applyRecord,
  // Snapshots are read part by part (see lazySnapshot.ts); older json snapshots still read whole.
  layout: {
    name: LAZY_LAYOUT,
    write: writeLazySnapshot,
    headLines: HEAD_LINES,
    read: (lines) => readLazySnapshot(lines, (json) => parseState(json, lines.file)),
  },
};
