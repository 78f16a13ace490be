import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isPipelineError } from '../../../src/engine/errors';
import { stateSchema, type PipelineState } from '../../../src/engine/model/schema';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import { untilNoOneChangeLead } from '../../../src/engine/oneChangeLead';
import {
  isLease,
  type LeaderInfo,
  type LeasePort,
  type LeaseSource,
  type StatePort,
} from '../../../src/engine/ports/statePort';
import { until } from '../../support/waiting';
import { added, decision, replayReference, taskId, transition } from '../store/storeTestKit';

/**
 * The state port's contract, as its doc comments promise it, for any adapter: the file journal
 * (StateStore with LeaderLease) and PostgreSQL (PgStateStore with PgLeaderLease) pass the same
 * tests, on the pipeline's real records and codec.
 */

export type Store = StatePort<PipelineState, StateRecord>;

export interface StoreSubject {
  /** Where leases are taken; each call is another process's view (its own connections). */
  leases(): LeaseSource;
  openWriter(lease: LeasePort): Promise<Store>;
  openReader(): Promise<Store>;
  /**
   * Another process takes the lease over from `lease`, as when its holder froze past its lease
   * (its heartbeat stopped): returns the new holder's lease. The old holder is not told.
   */
  takeOver(lease: LeasePort): Promise<LeasePort>;
  /** The storage's server crashes and starts again (PostgreSQL: an immediate stop, then a start). */
  crashStorage?(): Promise<void>;
  cleanup(): Promise<void>;
}

const notLeader = (e: unknown) => isPipelineError(e) && e.code === 'not-leader';

async function lead(s: StoreSubject, label = 'test writer'): Promise<LeasePort> {
  const got = await s.leases().acquire(label);
  if (!('epoch' in got)) throw new Error(`expected to lead, but ${JSON.stringify(got.leader)} does`);
  return got;
}

export function statePortConformance(name: string, make: () => Promise<StoreSubject>): void {
  const withSubject = (fn: (s: StoreSubject) => Promise<void>) => async () => {
    const s = await make();
    try {
      await fn(s);
    } finally {
      await s.cleanup();
    }
  };

  void describe(`StatePort conformance: ${name}`, () => {
    void test(
      'an acknowledged commit is visible to a new reader at once, and after the writer reopens',
      withSubject(async (s) => {
        const lease = await lead(s);
        const w = await s.openWriter(lease);
        assert.equal(w.seq, 0);
        const records: StateRecord[] = [];
        for (const batch of [[added(1)], [added(2), added(3)], [decision('hello')]]) {
          await w.commit(batch);
          records.push(...batch);
          // The writer is still open: what a new process reads now is what a crash would leave.
          const r = await s.openReader();
          assert.equal(r.seq, records.length);
          assert.deepEqual(r.state, replayReference(records));
          await r.close();
        }
        await w.commit([]);
        assert.equal(w.seq, records.length, 'an empty commit writes nothing');
        await w.close();
        await lease.release();

        const lease2 = await lead(s);
        const again = await s.openWriter(lease2);
        assert.equal(again.seq, records.length);
        assert.deepEqual(again.state, replayReference(records));
        stateSchema.parse(again.state);
        await again.commit([added(4)]);
        assert.equal(again.seq, records.length + 1);
        await again.close();
        await lease2.release();
      }),
    );

    void test(
      'records apply in commit order and seq counts them; a reader replays the same state',
      withSubject(async (s) => {
        const lease = await lead(s);
        const w = await s.openWriter(lease);
        const records: StateRecord[] = [added(1)];
        await w.commit([added(1)]);
        // Each transition is legal only after the one before it: the order is the state's.
        for (let step = 0; step < 7; step++) {
          const r = transition(taskId(1), step);
          records.push(r);
          await w.commit([r]);
          assert.equal(w.seq, records.length);
        }
        const two = [transition(taskId(1), 7), transition(taskId(1), 8)];
        await w.commit(two);
        records.push(...two);
        assert.equal(w.seq, records.length);
        const expected = replayReference(records);
        assert.deepEqual(w.state, expected);
        assert.equal(expected.tasks[taskId(1)]!.history.length, 9);
        const r = await s.openReader();
        assert.deepEqual(r.state, expected);
        assert.equal(r.seq, records.length);
        await r.close();
        await w.close();
        await lease.release();
      }),
    );

    void test(
      'a refused commit (invalid, or not applicable) leaves nothing applied, in memory or durably',
      withSubject(async (s) => {
        const lease = await lead(s);
        const w = await s.openWriter(lease);
        await w.commit([added(1)]);
        const before = structuredClone(w.state);

        const invalid = { type: 'task.added', task: { id: 'not an id' } } as unknown as StateRecord;
        await assert.rejects(w.commit([added(2), invalid]));
        assert.equal(w.seq, 1);
        assert.deepEqual(w.state, before, 'nothing of the invalid commit is applied');

        // Valid records, but the second does not apply (a transition of a task that does not exist):
        // the first was applied in memory and must be undone.
        await assert.rejects(
          w.commit([added(3), transition(taskId(99), 0)]),
          (e: unknown) => isPipelineError(e) && e.code === 'unknown-task',
        );
        assert.equal(w.seq, 1);
        assert.deepEqual(w.state, before, 'the applicable half is undone');
        await assert.rejects(w.commit([added(1)]), (e: unknown) => isPipelineError(e) && e.code === 'duplicate-id');

        const r = await s.openReader();
        assert.equal(r.seq, 1);
        assert.deepEqual(r.state, before, 'nothing of either refused commit is durable');
        await r.close();

        await w.commit([added(4)]);
        assert.equal(w.seq, 2, 'the next commit continues the sequence');
        assert.deepEqual(Object.keys(w.state.tasks).sort(), [taskId(1), taskId(4)]);
        await w.close();
        await lease.release();
      }),
    );

    void test(
      "a reader follows the writer's commits and cannot write",
      withSubject(async (s) => {
        const lease = await lead(s);
        const w = await s.openWriter(lease);
        await w.commit([added(1)]);
        const r = await s.openReader();
        assert.equal(r.seq, 1);
        await assert.rejects(r.commit([added(9)]), notLeader);
        const records: StateRecord[] = [added(1)];
        for (let n = 2; n <= 5; n++) {
          await w.commit([added(n), transition(taskId(n), 0)]);
          records.push(added(n), transition(taskId(n), 0));
        }
        await until('the reader catches up with the writer', 5_000, async () => {
          await r.refresh();
          return r.seq === w.seq;
        });
        assert.deepEqual(r.state, replayReference(records));
        assert.equal(await r.refresh(), false, 'nothing new: the state did not change');
        assert.equal(await w.refresh(), false, "a writer's state is current");
        await r.close();
        await w.close();
        await lease.release();
      }),
    );

    void test(
      'fencing: a writer whose lease was taken over is refused and writes nothing; it then follows the new writer',
      withSubject(async (s) => {
        const a = await lead(s, 'writer a');
        const storeA = await s.openWriter(a);
        await storeA.commit([added(1)]);
        await storeA.commit([added(2)]);
        const lost: unknown[] = [];
        a.onLost((who) => lost.push(who));

        const b = await s.takeOver(a);
        assert.ok(b.epoch > a.epoch, `the new epoch ${b.epoch} is above ${a.epoch}`);
        await assert.rejects(storeA.commit([added(3)]), notLeader);
        assert.equal(storeA.seq, 2, 'the refused commit is not applied');
        assert.equal(lost.length, 1, 'the old holder is told once that it lost');
        await assert.rejects(a.assertLeader(), notLeader);

        const storeB = await s.openWriter(b);
        assert.equal(storeB.seq, 2);
        assert.equal(storeB.state.tasks[taskId(3)], undefined, "the fenced writer's record is nowhere");
        await storeB.commit([added(3), decision('b leads')]);

        // The old writer cannot write again, and follows the new state when refreshed.
        await assert.rejects(storeA.commit([added(4)]), notLeader);
        await until('the replaced writer follows the new one', 5_000, async () => {
          await storeA.refresh();
          return storeA.seq === 4;
        });
        assert.deepEqual(storeA.state, storeB.state);

        const r = await s.openReader();
        assert.equal(r.seq, 4);
        assert.deepEqual(r.state, replayReference([added(1), added(2), added(3), decision('b leads')]));
        await r.close();
        await storeA.close();
        await storeB.close();
        await b.release();
        await a.release();
      }),
    );

    void test(
      'processes racing for the lease: exactly one wins, the others are told who leads',
      withSubject(async (s) => {
        for (let round = 0; round < 3; round++) {
          const sources = [s.leases(), s.leases(), s.leases()];
          const got = await Promise.all(sources.map((src, i) => src.acquire(`racer ${round}.${i}`)));
          const winners = got.filter((g): g is LeasePort => 'epoch' in g);
          assert.equal(winners.length, 1, `round ${round}: one winner`);
          const w = winners[0]!;
          for (const g of got) if (!('epoch' in g)) assert.equal(g.leader.epoch, w.epoch, 'losers name the winner');
          assert.deepEqual(
            { epoch: (await s.leases().current())?.epoch, label: (await s.leases().current())?.label },
            { epoch: w.epoch, label: w.info.label },
          );
          // The winner writes; then gives the lease back for the next round.
          const store = await s.openWriter(w);
          await store.commit([added(round + 1)]);
          await store.close();
          await w.release();
          assert.equal(await s.leases().current(), null, 'released: nobody leads');
        }
        const r = await s.openReader();
        assert.equal(r.seq, 3);
        await r.close();
      }),
    );

    void test(
      'close waits for a commit in flight, then refuses more; the lease stays held until released',
      withSubject(async (s) => {
        const lease = await lead(s);
        const w = await s.openWriter(lease);
        const inFlight = w.commit([added(1), added(2)]);
        await w.close();
        await inFlight;
        assert.equal(w.seq, 2);
        await assert.rejects(w.commit([added(3)]), (e: unknown) => isPipelineError(e));
        await assert.rejects(w.refresh(), (e: unknown) => isPipelineError(e));
        await w.close();
        assert.equal((await s.leases().current())?.epoch, lease.epoch, 'closing the store keeps the lease');
        const r = await s.openReader();
        assert.equal(r.seq, 2);
        await r.close();
        await lease.release();
      }),
    );

    void test(
      'a lease held for one change says so to other processes, and one that waits for it leads once it is let go',
      withSubject(async (s) => {
        // As `pipeline task add` takes it while nobody leads.
        const held = await s.leases().acquire('pipeline task add', { oneChange: true });
        assert.ok(isLease(held), 'nobody led: the one-change lease is taken');
        assert.equal(held.info.oneChange, true);
        // Another process, as `pipeline run` is: refused for now, told it is a one-change holder.
        const other = s.leases();
        const seen = await other.current();
        assert.equal(seen?.oneChange, true);
        assert.equal(seen?.label, 'pipeline task add');
        assert.equal(seen?.epoch, held.epoch);
        const refused = await other.acquire('pipeline run');
        assert.ok(!isLease(refused), 'the one-change holder still leads');
        assert.equal(refused.leader.oneChange, true);
        const told: LeaderInfo[] = [];
        const waiting = untilNoOneChangeLead(other, 60_000, (h) => told.push(h));
        await until('the other process waiting for the one-change holder', 10_000, () => told.length === 1);
        await held.release();
        assert.equal(await waiting, null, 'once let go, nobody leads');
        const run = await other.acquire('pipeline run');
        assert.ok(isLease(run), isLease(run) ? '' : `${JSON.stringify(run.leader)} still leads`);
        assert.ok(run.epoch > held.epoch);
        // A lease taken to lead is not a one-change lease, and a wait for one ends at once.
        assert.equal(run.info.oneChange, undefined);
        assert.equal((await s.leases().current())?.oneChange, undefined);
        const quick = await untilNoOneChangeLead(s.leases(), 60_000, () =>
          assert.fail('no one-change holder to wait for'),
        );
        assert.equal(quick?.epoch, run.epoch);
        await run.release();
      }),
    );

    void test(
      'an acknowledged commit survives a crash of the storage, and the writer goes on after it',
      withSubject(async (s) => {
        if (!s.crashStorage) return;
        const lease = await lead(s);
        const w = await s.openWriter(lease);
        await w.commit([added(1), added(2)]);
        await w.commit([transition(taskId(1), 0)]);
        await s.crashStorage();
        const r = await s.openReader();
        assert.equal(r.seq, 3);
        assert.deepEqual(r.state, replayReference([added(1), added(2), transition(taskId(1), 0)]));
        await w.commit([added(3)]);
        await until('the reader sees the commit after the restart', 5_000, async () => {
          await r.refresh();
          return r.seq === 4;
        });
        await r.close();
        await w.close();
        await lease.release();
      }),
    );
  });
}
