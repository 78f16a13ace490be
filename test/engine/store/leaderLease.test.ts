import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isPipelineError } from '../../../src/engine/errors';
import { stateSchema } from '../../../src/engine/model/schema';
import { LeaderLease, type LeaderInfo } from '../../../src/engine/store/leaderLease';
import { StateStore } from '../../../src/engine/store/stateStore';
import { encodeLine, encodeSnapshot } from '../../../src/engine/store/storeFiles';
import { killChild, startChild, type Child } from './childProcess';
import { acquireLease, added, openReader, pipelineCodec, removeDir, taskId, tempDir } from './storeTestKit';

void test('one leader at a time in a process: acquire, who leads, release, take over, clean up', async () => {
  const dir = await tempDir();
  try {
    assert.equal(await LeaderLease.current(dir), null);
    const a = await acquireLease(dir, { label: 'first', leaseMs: 5_000 });
    assert.equal(a.epoch, 1);
    const other = await LeaderLease.acquire(dir, { label: 'second' });
    assert.ok(!(other instanceof LeaderLease));
    assert.equal(other.leader.pid, process.pid);
    assert.equal(other.leader.label, 'first');
    assert.equal((await LeaderLease.current(dir))?.epoch, 1);
    await a.assertLeader();
    await a.release();
    await assert.rejects(a.assertLeader(), (e: unknown) => isPipelineError(e) && e.code === 'not-leader');
    assert.equal(await LeaderLease.current(dir), null);
    for (let i = 2; i <= 10; i++) {
      const l = await acquireLease(dir, { leaseMs: 5_000 });
      assert.equal(l.epoch, i);
      await l.release();
    }
    const files = (await readdir(join(dir, 'leader'))).filter((n) => n.startsWith('epoch-'));
    assert.ok(files.length <= 5, `old epochs are cleaned up: ${files.join(', ')}`);
    await assert.rejects(
      LeaderLease.acquire(dir, { leaseMs: 100, renewMs: 100 }),
      (e: unknown) => isPipelineError(e) && e.code === 'usage',
    );
  } finally {
    await removeDir(dir);
  }
});

void test('a holder whose process died on this host is replaced at once; a live one is not', async () => {
  const dir = await tempDir();
  try {
    const child = startChild({ mode: 'writer', dir, leaseMs: 60_000, pauseMs: 20 });
    await child.waitFor(/^ack /);
    const held = await LeaderLease.acquire(dir);
    assert.ok(!(held instanceof LeaderLease), 'a live holder keeps the lease');
    assert.equal(held.leader.pid, child.proc.pid);
    assert.equal(held.leader.host, hostname());
    await killChild(child, 'SIGKILL');
    const lease = await acquireLease(dir);
    assert.equal(lease.epoch, 2);
    await lease.release();
  } finally {
    await removeDir(dir);
  }
});

void test('fencing: a replaced leader cannot commit, and its late writes are ignored on replay', async () => {
  const dir = await tempDir();
  try {
    const a = await acquireLease(dir, { leaseMs: 60_000 });
    const storeA = await StateStore.open({ dir, codec: pipelineCodec, lease: a });
    await storeA.commit([added(1)]);
    await storeA.commit([added(2)]);
    const lostEvents: (LeaderInfo | null)[] = [];
    a.onLost((who) => lostEvents.push(who));

    // Another process claims epoch 2 and dies (as if it had judged A's lease expired), then B
    // takes over from it with epoch 3.
    const now = new Date().toISOString();
    await writeFile(
      join(dir, 'leader', 'epoch-0000000002.json'),
      JSON.stringify({
        pid: 2 ** 22 + 12345,
        host: hostname(),
        epoch: 2,
        since: now,
        renewedAt: now,
        label: 'gone',
        leaseMs: 60_000,
      }),
    );
    await assert.rejects(
      storeA.commit([added(3)]),
      (e: unknown) => isPipelineError(e) && e.code === 'not-leader' && /Epoch 2/.test(e.message),
    );
    assert.equal(lostEvents.length, 1);
    assert.equal(lostEvents[0]?.epoch, 2);
    assert.equal(storeA.seq, 2, 'the refused commit is not applied');

    const b = await acquireLease(dir, { leaseMs: 60_000 });
    assert.equal(b.epoch, 3);
    const storeB = await StateStore.open({ dir, codec: pipelineCodec, lease: b });
    assert.equal(storeB.seq, 2);

    // A's write that passed its lease check just before B took over lands late: a record and a
    // snapshot of epoch 1 covering seq 3, past B's takeover point.
    const segA = (await readdir(dir)).find((n) => n.startsWith('journal-') && n.endsWith('-e1.log'))!;
    await appendFile(join(dir, segA), encodeLine(3, 1, now, 3, JSON.stringify(added(99))));
    await writeFile(
      join(dir, 'snapshot-000000000003-e1.json'),
      Buffer.concat(encodeSnapshot(3, 1, JSON.stringify(storeA.state))),
    );
    await storeB.commit([added(3)]);

    const reader = await openReader(dir);
    assert.equal(reader.seq, 3);
    assert.ok(reader.state.tasks[taskId(3)] && !reader.state.tasks[taskId(99)], 'the stale record is ignored');
    assert.ok(
      reader.warnings.some((w) => w.includes(segA) && w.includes('ignored 1 record')),
      reader.warnings.join(' / '),
    );
    assert.ok(
      reader.warnings.some((w) => w.includes('snapshot-000000000003-e1.json') && w.includes('replaced leader')),
      reader.warnings.join(' / '),
    );
    await reader.close();

    await storeB.close();
    const storeB2 = await StateStore.open({ dir, codec: pipelineCodec, lease: b });
    assert.equal(storeB2.seq, 3);
    assert.ok(
      (await readdir(dir)).some((n) => n.startsWith('snapshot-000000000003-e1.json.stale-')),
      'the stale snapshot is moved aside',
    );
    await storeB2.close();
    await b.release();
    // The lost store cannot write again, and follows the new state when refreshed.
    await assert.rejects(storeA.commit([added(4)]), (e: unknown) => isPipelineError(e) && e.code === 'not-leader');
    assert.equal(await storeA.refresh(), true);
    assert.equal(storeA.seq, 3);
    await storeA.close();
  } finally {
    await removeDir(dir);
  }
});

interface Ack {
  child: number;
  epoch: number;
  seq: number;
  id: string;
}

void test('processes contending for leadership: one holder per epoch, and every acknowledged commit is kept', async (t) => {
  const dir = await tempDir();
  const children: Child[] = [];
  try {
    // Short leases, and children that freeze themselves while leading now and then: besides
    // releases, leadership changes hands by expiry, with the old holder waking up afterwards.
    for (let i = 0; i < 4; i++) {
      children.push(
        startChild({
          mode: 'contend',
          dir,
          leaseMs: 250,
          renewMs: 60,
          durationMs: 4_000,
          prefix: `P${i}`,
          selfStopChance: 0.08,
        }),
      );
    }
    const waker = setInterval(() => {
      for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGCONT');
    }, 450);
    try {
      await Promise.all(children.map((c) => c.waitFor(/^done$/, 30_000)));
    } finally {
      clearInterval(waker);
    }
    await Promise.all(children.map((c) => c.exited));

    const leaders = new Map<number, number>();
    const acks: Ack[] = [];
    let lost = 0;
    children.forEach((c, i) => {
      assert.deepEqual(c.stderr, [], `child ${i} stderr`);
      for (const line of c.lines) {
        let m = /^lead (\d+) (\d+)$/.exec(line);
        if (m) {
          const epoch = Number(m[1]);
          assert.ok(!leaders.has(epoch), `epoch ${epoch} led by two processes (${leaders.get(epoch)} and ${m[2]})`);
          leaders.set(epoch, Number(m[2]));
        }
        m = /^ack (\d+) (\d+) (\S+)$/.exec(line);
        if (m) acks.push({ child: i, epoch: Number(m[1]), seq: Number(m[2]), id: m[3]! });
        if (line.startsWith('lost ')) lost++;
      }
    });
    assert.ok(leaders.size >= 20, `only ${leaders.size} rounds of leadership`);
    assert.ok(new Set(acks.map((a) => a.child)).size >= 2, 'more than one process led');

    // Acknowledged commits of a later epoch all come after those of an earlier one.
    const byEpoch = new Map<number, number[]>();
    for (const a of acks) byEpoch.set(a.epoch, [...(byEpoch.get(a.epoch) ?? []), a.seq]);
    const epochs = [...byEpoch.keys()].sort((x, y) => x - y);
    for (let i = 1; i < epochs.length; i++) {
      assert.ok(
        Math.max(...byEpoch.get(epochs[i - 1]!)!) < Math.min(...byEpoch.get(epochs[i]!)!),
        `epochs ${epochs[i - 1]} and ${epochs[i]} overlap`,
      );
    }
    const reader = await openReader(dir);
    stateSchema.parse(reader.state);
    for (const a of acks)
      assert.ok(reader.state.tasks[a.id], `acknowledged ${a.id} (epoch ${a.epoch}, seq ${a.seq}) is missing`);
    // A commit refused because the lease was lost while it was being written may still count (the
    // new leader's recovery saw it): at most one such record per refusal, none otherwise.
    assert.ok(
      reader.seq >= acks.length && reader.seq - acks.length <= lost,
      `${reader.seq} records, ${acks.length} acknowledged, ${lost} refused`,
    );
    await reader.close();
    t.diagnostic(`${leaders.size} leadership rounds, ${acks.length} acknowledged commits, ${lost} refused`);
  } finally {
    for (const c of children) await killChild(c);
    await removeDir(dir);
  }
});

void test('a leader paused past its lease (SIGSTOP) is fenced when it resumes (SIGCONT)', async (t) => {
  for (let run = 0; run < 3; run++) {
    const dir = await tempDir();
    const child = startChild({ mode: 'writer', dir, leaseMs: 400, renewMs: 100 });
    try {
      await child.waitFor(/^ack /);
      await sleep(20 + Math.random() * 100);
      child.proc.kill('SIGSTOP');
      await sleep(600);
      const lease = await acquireLease(dir, { leaseMs: 10_000 });
      assert.equal(lease.epoch, 2);
      const store = await StateStore.open({ dir, codec: pipelineCodec, lease });
      const takeoverSeq = store.seq;
      const mine: string[] = [];
      for (let i = 1; i <= 10; i++) {
        await store.commit([added(i, 'NEW')]);
        mine.push(taskId(i, 'NEW'));
      }
      const acksBefore = child.lines.filter((l) => l.startsWith('ack ')).length;
      child.proc.kill('SIGCONT');
      await child.waitFor(/^lost not-leader$/, 10_000);
      for (let i = 11; i <= 20; i++) {
        await store.commit([added(i, 'NEW')]);
        mine.push(taskId(i, 'NEW'));
      }
      await store.close();
      await lease.release();

      const reader = await openReader(dir);
      stateSchema.parse(reader.state);
      for (const id of mine) assert.ok(reader.state.tasks[id], `${id} missing`);
      const childAcks = child.lines.filter((l) => l.startsWith('ack '));
      for (const line of childAcks) {
        const [, , from, to] = line.split(' ').map(Number);
        for (let n = from!; n <= to!; n++)
          assert.ok(
            reader.state.tasks[taskId(n)],
            `run ${run}: the paused leader's acknowledged ${taskId(n)} is missing`,
          );
      }
      // The child may print an ack after it resumes, but only for a commit that was durable and
      // checked before it was paused, which the new leader's recovery therefore included.
      for (const line of childAcks.slice(acksBefore)) {
        assert.ok(
          Number(line.split(' ')[1]) <= takeoverSeq,
          `run ${run}: the resumed leader acknowledged ${line} past the takeover at ${takeoverSeq}`,
        );
      }
      t.diagnostic(
        `run ${run}: ${acksBefore} acks before the pause, ${childAcks.length - acksBefore} printed after it; warnings: ${reader.warnings.join(' / ') || 'none'}`,
      );
      await reader.close();
    } finally {
      await killChild(child, 'SIGKILL');
      await removeDir(dir);
    }
  }
});

void test('a one-change lease is waited for, up to a limit; an ordinary lease is not waited for', async () => {
  const dir = await tempDir();
  try {
    const short = await LeaderLease.acquire(dir, { label: 'pipeline task add', oneChange: true });
    assert.ok(short instanceof LeaderLease);
    assert.equal(short.info.oneChange, true);
    const waits: LeaderInfo[] = [];
    // Held throughout: the wait ends at its limit and names the holder.
    const still = await LeaderLease.untilNoOneChangeLead(dir, 100, (h) => waits.push(h));
    assert.equal(still?.oneChange, true);
    assert.equal(still?.label, 'pipeline task add');
    assert.equal(waits.length, 1, 'told once');
    // Let go while waited for: the wait ends with nobody leading.
    const waiting = LeaderLease.untilNoOneChangeLead(dir, 60_000);
    await short.release();
    assert.equal(await waiting, null);
    const long = await acquireLease(dir, { label: 'pipeline run' });
    assert.equal(long.info.oneChange, undefined);
    const told: LeaderInfo[] = [];
    assert.equal((await LeaderLease.untilNoOneChangeLead(dir, 60_000, (h) => told.push(h)))?.label, 'pipeline run');
    assert.deepEqual(told, [], 'no wait for a lease that is not for one change');
    await long.release();
  } finally {
    await removeDir(dir);
  }
});
