import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyRecord, stateRecordSchema, type StateRecord } from '../../../src/engine/model/stateRecords';
import { emptyState, stateSchema, type PipelineState, type Task } from '../../../src/engine/model/schema';
import { pipelineStateCodec } from '../../../src/engine/model/stateCodec';
import { LeaderLease, type LeaseOptions } from '../../../src/engine/store/leaderLease';
import { StateStore, type StoreCodec } from '../../../src/engine/store/stateStore';
import { newTask } from '../../support/taskFixtures';

/**
 * Shared pieces of the store tests: the real pipeline codec (the engine facade has its own; this one
 * is the minimum that exercises the real schemas and reducer, with the real snapshot layout so that
 * the crash and recovery tests cover the snapshots the pipeline writes), record builders and temp dirs.
 */

export const pipelineCodec: StoreCodec<PipelineState, StateRecord> = {
  initial: emptyState,
  parseSnapshot: (json) => stateSchema.parse(json),
  parseRecord: (json) => stateRecordSchema.parse(json),
  apply: applyRecord,
  layout: pipelineStateCodec.layout!,
};

export function makeTask(id: string, seq: number): Task {
  return newTask(id, seq, { description: `Description of ${id}` });
}

export function taskId(n: number, prefix = 'TASK'): string {
  return `${prefix}-${String(n).padStart(3, '0')}`;
}

export function added(n: number, prefix = 'TASK'): StateRecord {
  return { type: 'task.added', task: makeTask(taskId(n, prefix), n) };
}

export function decision(text: string): StateRecord {
  return { type: 'decision', text, at: '2026-01-01T00:00:00.000Z' };
}

/** The events that walk a task around the lifecycle forever: ready, then assign/complete in turn. */
export function transition(id: string, step: number): StateRecord {
  const at = new Date(Date.UTC(2026, 0, 1, 0, 0, step % 60)).toISOString();
  if (step === 0) return { type: 'task.transition', id, event: { type: 'ready' }, at };
  return step % 2 === 1
    ? { type: 'task.transition', id, event: { type: 'assign', agent: 'implementer', attempt: (step + 1) / 2 }, at }
    : { type: 'task.transition', id, event: { type: 'complete', nextStage: 'implementation' }, at };
}

export async function tempDir(prefix = 'store-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function acquireLease(dir: string, opts?: LeaseOptions): Promise<LeaderLease> {
  const got = await LeaderLease.acquire(dir, opts);
  if (!(got instanceof LeaderLease)) throw new Error(`expected to lead ${dir}, but ${JSON.stringify(got.leader)} does`);
  return got;
}

/** Opens a writer with a fresh lease on `dir`; the caller closes the store and releases the lease. */
export async function openWriter(
  dir: string,
  snapshotEvery?: number,
): Promise<{ store: StateStore<PipelineState, StateRecord>; lease: LeaderLease }> {
  const lease = await acquireLease(dir, { leaseMs: 30_000 });
  const store = await StateStore.open({
    dir,
    codec: pipelineCodec,
    lease,
    ...(snapshotEvery ? { snapshotEvery } : {}),
  });
  return { store, lease };
}

export async function openReader(dir: string): Promise<StateStore<PipelineState, StateRecord>> {
  return StateStore.open({ dir, codec: pipelineCodec });
}

/** The state after applying `records` to an empty state, the reference recovery must reproduce. */
export function replayReference(records: readonly StateRecord[]): PipelineState {
  const s = emptyState();
  for (const r of records) applyRecord(s, stateRecordSchema.parse(JSON.parse(JSON.stringify(r))));
  return s;
}
