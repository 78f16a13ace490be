import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PipelineError } from '../../../src/engine/errors';
import { initRepo } from '../../../src/engine/git/initRepo';
import { Pipeline, type OpenPipelineOptions } from '../../../src/engine/pipeline';
import type { PipelineEventMap } from '../../../src/engine/model/pipelineEvents';
import { initHome } from '../../../src/engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../../../src/engine/model/configSchema';
import type { StateRecord } from '../../../src/engine/model/stateRecords';
import { LeaderLease } from '../../../src/engine/store/leaderLease';
import { patience, until } from '../../support/waiting';

/**
 * The engine's facade in-process: events fire only after their change is durable; a follower
 * forwards its mutations to the leader through the inbox and catches up with the leader's state; a
 * follower that may take over leads once the leader closes; orchestration switches are refused,
 * drained or forced.
 */

interface Sandbox {
  dir: string;
  stateDir: string;
  open: (o?: OpenPipelineOptions) => Promise<Pipeline>;
}

/** A repository with `.pipeline/`; every pipeline opened through it is closed afterwards. */
async function withSandbox(fn: (sb: Sandbox) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-facade-'));
  const dir = join(base, 'repo');
  await initRepo(dir);
  await initHome(dir, { targetBranch: 'main', stages: DEFAULT_STAGES });
  const opened: Pipeline[] = [];
  try {
    await fn({
      dir,
      stateDir: join(dir, '.pipeline', 'state'),
      open: async (o = {}) => {
        const p = await Pipeline.open({ cwd: dir, followIntervalMs: 50, ...o });
        opened.push(p);
        return p;
      },
    });
  } finally {
    for (const p of opened.reverse()) await p.close();
    await rm(base, { recursive: true, force: true });
  }
}

/** The records in the journal on disk right now (read synchronously, from inside an event handler). */
function journalOnDisk(stateDir: string): StateRecord[] {
  const out: StateRecord[] = [];
  for (const name of readdirSync(stateDir)
    .filter((n) => /^journal-\d+-e\d+\.log$/.test(n))
    .sort()) {
    for (const line of readFileSync(join(stateDir, name), 'utf8').split('\n')) {
      if (line.length > 9) out.push((JSON.parse(line.slice(9)) as { rec: StateRecord }).rec);
    }
  }
  return out;
}

function next<K extends keyof PipelineEventMap>(p: Pipeline, name: K, ms = 5_000): Promise<PipelineEventMap[K]> {
  const limitMs = patience(ms);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.dispose();
      reject(new Error(`no ${String(name)} event within ${limitMs} ms`));
    }, limitMs);
    const sub = p.events.on(name, (e) => {
      clearTimeout(timer);
      sub.dispose();
      resolve(e);
    });
  });
}

async function rejection(p: Promise<unknown>): Promise<PipelineError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PipelineError, `expected a PipelineError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

test('events fire after their change is in the journal on disk: task:added, task:transition, agent:changed, state:changed', async () => {
  await withSandbox(async ({ stateDir, open }) => {
    const p = await open({ role: 'lead', label: 'test leader' });
    assert.equal(p.isLeader, true);
    const seen: string[] = [];
    const problems: string[] = [];
    const check = (what: string, ok: boolean) => {
      seen.push(what);
      if (!ok) problems.push(`${what} fired before its record was on disk`);
    };
    p.events.on('task:added', ({ task }) => {
      check(
        `task:added ${task.id}`,
        journalOnDisk(stateDir).some((r) => r.type === 'task.added' && r.task.id === task.id),
      );
      if (!p.state.tasks[task.id]) problems.push(`task:added ${task.id} fired before the state held it`);
    });
    p.events.on('task:transition', ({ after, event }) => {
      // One event per transition of the batch, all after the batch's one commit.
      check(
        `task:transition ${after.id} ${event.type}`,
        journalOnDisk(stateDir).some(
          (r) => r.type === 'task.transition' && r.id === after.id && r.event.type === event.type,
        ),
      );
    });
    p.events.on('agent:added', ({ agent }) =>
      check(
        `agent:added ${agent.id}`,
        journalOnDisk(stateDir).some((r) => r.type === 'agent.added' && r.agent.id === agent.id),
      ),
    );
    p.events.on('agent:changed', ({ before, after }) => {
      check(
        `agent:changed ${after.id} ${before.status}→${after.status}`,
        journalOnDisk(stateDir).some((r) => r.type === 'agent.updated' && r.id === after.id),
      );
    });
    p.events.on('state:changed', ({ seq }) => check(`state:changed ${seq}`, journalOnDisk(stateDir).length >= seq));

    await p.addAgent({ id: 'architect', role: 'architect', command: 'scripted' });
    const [t] = await p.addTasks([{ spec: { title: 'One' } }]);
    assert.equal(t!.id, 'TASK-001');
    // The monitor's kind of change: one batch, one commit, events after it.
    const b = p.newBatch();
    b.transition('TASK-001', { type: 'ready' });
    b.transition('TASK-001', { type: 'assign', agent: 'architect', attempt: 1 });
    b.updateAgent('architect', { status: 'working', current_task: 'TASK-001', since: b.at });
    await p.commit(b);
    // A person's block frees the agent.
    await p.blockTask('TASK-001', 'waiting for a person');

    assert.deepEqual(problems, []);
    assert.deepEqual(seen, [
      'agent:added architect',
      'state:changed 1',
      'task:added TASK-001',
      'state:changed 2',
      'task:transition TASK-001 ready',
      'task:transition TASK-001 assign',
      'agent:changed architect idle→working',
      'state:changed 5',
      'task:transition TASK-001 block',
      'agent:changed architect working→idle',
      'state:changed 7',
    ]);

    // A commit that does not apply fires nothing and leaves the state as it was.
    seen.length = 0;
    const bad = p.newBatch();
    await assert.rejects(async () => {
      bad.transition('TASK-001', { type: 'merged', commit: 'abc' });
      await p.commit(bad);
    });
    assert.deepEqual(seen, []);
    assert.equal(p.state.tasks['TASK-001']?.status, 'blocked');
  });
});

test('a follower forwards mutations to the leader through the inbox and its state catches up; errors come back as they are', async () => {
  await withSandbox(async ({ open }) => {
    const leader = await open({ role: 'lead', label: 'the leader' });
    const follower = await open({ role: 'follow', label: 'a follower' });
    assert.equal(follower.isLeader, false);
    assert.equal(follower.leader?.label, 'the leader');
    assert.equal(follower.leader?.pid, process.pid);

    const added = next(leader, 'task:added');
    const tasks = await follower.addTasks([{ spec: { title: 'Forwarded', priority: 'high' }, source: 'test' }]);
    assert.equal(tasks[0]!.id, 'TASK-001');
    assert.equal((await added).task.title, 'Forwarded', 'the leader applied it');
    assert.equal(follower.state.tasks['TASK-001']?.priority, 'high', 'the follower has it as soon as the call returns');
    assert.equal(follower.isLeader, false, 'forwarding does not take the lead');

    await follower.addAgent({ id: 'arch', role: 'architect', command: 'scripted' });
    const blocked = await follower.blockTask('TASK-001', 'hold');
    assert.equal(blocked.status, 'blocked');
    assert.equal(leader.state.tasks['TASK-001']?.status, 'blocked');
    assert.deepEqual(await follower.setRolloutMode('shadow'), { from: 'production', to: 'shadow', requeued: [] });
    assert.equal(leader.state.mode, 'shadow');

    // Errors: the leader's PipelineError, with its code, place and fix, rejects the follower's call.
    const unknown = await rejection(follower.addTasks([{ spec: { title: 'Broken', prerequisites: ['TASK-404'] } }]));
    assert.match(unknown.message, /TASK-404/);
    assert.ok(unknown.details.fix, unknown.describe());
    const role = await rejection(follower.addAgent({ id: 'rev', role: 'reviewer', command: 'scripted' }));
    assert.equal(role.code, 'unknown-role');
    assert.match(role.details.fix ?? '', /architect, tester, implementer, supervisor/);
    const mode = await rejection(follower.setOrchestrationMode('round-robin'));
    assert.match(mode.message, /hybrid, parallel, sequential/);
    assert.deepEqual(Object.keys(leader.state.tasks), ['TASK-001'], 'nothing half applied');

    // The leader's own changes reach the follower through its heartbeat.
    const caughtUp = next(follower, 'state:changed');
    await leader.addTasks([{ spec: { title: 'By the leader' } }]);
    await caughtUp;
    await until('the follower catching up', 3_000, () => follower.state.tasks['TASK-002']);
    assert.equal(follower.scheduler.explain('TASK-002', follower.state, Date.now()).includes('TASK-002'), true);
  });
});

test('a follower with takeOver leads once the leader closes; the others then follow it', async () => {
  await withSandbox(async ({ open }) => {
    const first = await open({ role: 'lead', label: 'first' });
    await first.addTasks([{ spec: { title: 'Before the handover' } }]);
    const second = await open({ role: 'follow', label: 'second', takeOver: true });
    assert.equal(second.isLeader, false);
    assert.equal(second.leader?.label, 'first');
    // While the first leads, taking the lead is refused naming it.
    const refused = await rejection(second.lead());
    assert.equal(refused.code, 'not-leader');
    assert.match(refused.message, /led by first \(pid \d+/);

    const acquired = next(second, 'leader:acquired');
    await first.close();
    const { leader } = await acquired;
    assert.equal(leader.label, 'second');
    assert.equal(second.isLeader, true);
    assert.ok(leader.epoch > 0);
    assert.deepEqual(Object.keys(second.state.tasks), ['TASK-001'], 'it leads with the state as it was');

    // It commits as the leader now, and a newcomer follows it.
    const added = next(second, 'task:added');
    await second.addTasks([{ spec: { title: 'After the handover' } }]);
    assert.equal((await added).task.id, 'TASK-002');
    const third = await open({ role: 'follow', label: 'third' });
    assert.equal(third.leader?.label, 'second');
    assert.deepEqual(Object.keys(third.state.tasks), ['TASK-001', 'TASK-002']);

    // Giving up the lead: another process may lead.
    await second.follow();
    assert.equal(second.isLeader, false);
    assert.equal(await LeaderLease.current(join(third.home.dir)), null);
    await third.lead();
    assert.equal(third.isLeader, true);
    await second.addTasks([{ spec: { title: 'Forwarded to the third' } }]);
    assert.ok(third.state.tasks['TASK-003']);
  });
});

test('with nobody leading, a follower mutates under a lease taken just for that change, then follows again', async () => {
  await withSandbox(async ({ dir, open }) => {
    const p = await open({ role: 'follow', label: 'a window' });
    assert.equal(p.leader, null);
    const [t] = await p.addTasks([{ spec: { title: 'While nothing runs' } }]);
    assert.equal(t!.id, 'TASK-001');
    assert.equal(p.isLeader, false);
    assert.equal(await LeaderLease.current(join(dir, '.pipeline')), null, 'the lease was released');
    const other = await open({ role: 'follow' });
    assert.deepEqual(Object.keys(other.state.tasks), ['TASK-001']);
    // `lead` leads or fails naming the leader; `auto` follows when someone leads.
    const lead = await open({ role: 'lead', label: 'lead' });
    await assert.rejects(open({ role: 'lead', label: 'another' }), /led by lead/);
    const auto = await open({ role: 'auto', label: 'auto' });
    assert.equal(auto.isLeader, false);
    assert.equal(auto.leader?.label, 'lead');
    await lead.close();
    await assert.rejects(Pipeline.open({ cwd: join(dir, '..') }), /No pipeline found/);
  });
});

test('orchestration switch: refused while an agent works, drained once it is idle, or forced with its task requeued', async () => {
  await withSandbox(async ({ open }) => {
    const p = await open({ role: 'lead' });
    await p.addAgent({ id: 'architect', role: 'architect', command: 'scripted' });
    await p.addTasks([{ spec: { title: 'Busy' } }, { spec: { title: 'Other' } }]);
    const work = async (id: string) => {
      const b = p.newBatch();
      b.transition(id, { type: 'ready' });
      b.transition(id, { type: 'assign', agent: 'architect', attempt: 1 });
      b.updateAgent('architect', { status: 'working', current_task: id, since: b.at });
      await p.commit(b);
    };
    await work('TASK-001');
    assert.deepEqual(p.busyAgents(), ['architect (TASK-001)']);

    const unknown = await rejection(p.setOrchestrationMode('round-robin'));
    assert.match(unknown.message, /Known modes: hybrid, parallel, sequential/);
    const busy = await rejection(p.setOrchestrationMode('sequential'));
    assert.equal(busy.code, 'busy');
    assert.match(busy.message, /architect \(TASK-001\)/);
    assert.match(busy.details.fix ?? '', /--drain.*--force/);

    const pendingEvent = next(p, 'mode:switchPending');
    assert.deepEqual(await p.setOrchestrationMode('sequential', { drain: true }), {
      outcome: 'pending',
      mode: 'sequential',
      requeued: [],
    });
    assert.deepEqual(await pendingEvent, { to: 'sequential', busy: ['architect'] });
    assert.equal(p.state.pending_switch, 'sequential');
    assert.equal(p.status().pending_switch, 'sequential');
    assert.match(p.dryRun().lines.join('\n'), /waits for in-flight work to drain/);
    assert.equal(await p.applyPendingSwitch(), false, 'not while the agent works');

    // The stage finishes: the switch applies.
    const done = p.newBatch();
    done.transition('TASK-001', { type: 'complete', nextStage: 'test' });
    done.updateAgent('architect', { status: 'idle', current_task: null, since: null });
    await p.commit(done);
    const switched = next(p, 'mode:orchestration');
    assert.equal(await p.applyPendingSwitch(), true);
    assert.deepEqual(await switched, { from: 'parallel', to: 'sequential' });
    assert.deepEqual([p.state.orchestration_mode, p.state.pending_switch], ['sequential', null]);

    // Forced: the in-flight task is requeued and its agent freed, in one commit.
    await work('TASK-002');
    const r = await p.setOrchestrationMode('parallel', { force: true });
    assert.deepEqual(r, { outcome: 'switched', mode: 'parallel', requeued: ['TASK-002'] });
    assert.equal(p.state.tasks['TASK-002']?.status, 'queued');
    assert.equal(p.state.agents.architect?.status, 'idle');
    assert.deepEqual(await p.setOrchestrationMode('parallel'), {
      outcome: 'unchanged',
      mode: 'parallel',
      requeued: [],
    });
  });
});
