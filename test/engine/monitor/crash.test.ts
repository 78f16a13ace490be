import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskSpec } from '../../../src/engine/model/schema';
import {
  assertAllMerged,
  assertGitHealthy,
  entries,
  git,
  processesMentioning,
  readState,
  requireBuild,
  sandbox,
  startCli,
  until,
  within,
  type CliChild,
} from './monitorKit';

/**
 * `kill -9` of a real `pipeline run --until-idle` at several moments of one run (agents working,
 * a merge under way, a restarted run recovering), then a last run: every task ends merged exactly
 * once with its commits on main, git is healthy, the worktree registry matches the disk, no lock
 * is left and no agent process is left behind (engineering.md, "Reliability").
 */

requireBuild();

const TASKS: TaskSpec[] = [
  { id: 'TASK-001', title: 'Base', paths: ['src/task-001*'] },
  { id: 'TASK-002', title: 'Left', prerequisites: ['TASK-001'], paths: ['src/task-002*'] },
  { id: 'TASK-003', title: 'Right', prerequisites: ['TASK-001'], paths: ['src/task-003*'] },
  { id: 'TASK-004', title: 'Join', prerequisites: ['TASK-002', 'TASK-003'], paths: ['src/task-004*'] },
  { id: 'TASK-005', title: 'Chain one', paths: ['src/task-005*'] },
  { id: 'TASK-006', title: 'Chain two', prerequisites: ['TASK-005'], paths: ['src/task-006*'] },
  { id: 'TASK-007', title: 'Alone', paths: ['src/task-007*'] },
  { id: 'TASK-008', title: 'Alone too', paths: ['src/task-008*'], description: 'scripted: fail test 1' },
];

interface JsonEvent {
  event: string;
  taskId?: string;
  commit?: string | null;
  after?: { id: string; status: string };
}

function events(c: CliChild): JsonEvent[] {
  return c
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JsonEvent);
}

async function kill9(c: CliChild): Promise<void> {
  c.proc.kill('SIGKILL');
  const code = await within('the killed run exiting', 10_000, c.exited);
  assert.equal(code, null, 'killed by the signal, not ended on its own');
}

void test('kill -9 of pipeline run at three moments, then a last run: every task merged once, nothing lost, git healthy', async () => {
  const sb = await sandbox({
    tasks: TASKS,
    agents: [
      ['architect', 'architect'],
      ['tester', 'tester'],
      ['implementer', 'implementer'],
      ['implementer-2', 'implementer'],
      ['supervisor', 'supervisor'],
    ],
  });
  const env = { SCRIPTED_AGENT_DELAY_MS: '120' };
  const run = ['run', '--until-idle', '--json'];
  try {
    // 1. Agents at work after the first merge: kill as soon as a stage starts after it.
    let c = startCli(sb.dir, run, env);
    await until('a merge, then an agent started', 60_000, () => {
      const e = events(c);
      const merged = e.findIndex((x) => x.event === 'merge:finished' && x.commit);
      return merged >= 0 && e.slice(merged + 1).some((x) => x.event === 'agent:started');
    });
    await kill9(c);
    let state = await readState(sb.dir);
    assert.deepEqual(
      Object.keys(state.tasks).sort(),
      TASKS.map((t) => t.id),
      'no task lost after kill 1',
    );
    assert.ok(
      Object.values(state.tasks).some((t) => t.status === 'done'),
      'something was merged before kill 1',
    );
    assert.ok(
      Object.values(state.agents).some((a) => a.status === 'working'),
      'agents were at work at kill 1',
    );

    // 2. In the middle of a merge: kill the moment a task's last stage is approved.
    c = startCli(sb.dir, run, env);
    await until('a task approved for merging', 60_000, () =>
      events(c).some((x) => x.event === 'task:transition' && x.after?.status === 'merging'),
    );
    await kill9(c);
    state = await readState(sb.dir);
    assert.deepEqual(
      Object.keys(state.tasks).sort(),
      TASKS.map((t) => t.id),
      'no task lost after kill 2',
    );

    // 3. While a restarted run recovers: kill at its first agent start.
    c = startCli(sb.dir, run, env);
    await until('the restarted run starting an agent', 60_000, () =>
      events(c).some((x) => x.event === 'agent:started'),
    );
    await kill9(c);
    state = await readState(sb.dir);
    assert.deepEqual(
      Object.keys(state.tasks).sort(),
      TASKS.map((t) => t.id),
      'no task lost after kill 3',
    );

    // The last run finishes the work and exits 0.
    c = startCli(sb.dir, run, env);
    const code = await within('the last run', 90_000, c.exited);
    assert.equal(code, 0, `the last run ends with every task done; it printed:\n${c.output().slice(-3000)}`);

    state = await readState(sb.dir);
    assert.deepEqual(
      Object.keys(state.tasks).sort(),
      TASKS.map((t) => t.id),
    );
    await assertAllMerged(sb.dir, state);
    const subjects = (await git(sb.dir, 'log', '--format=%s', 'main')).split('\n');
    const firstParent = (await git(sb.dir, 'log', '--first-parent', '--format=%s', 'main')).split('\n');
    for (const t of Object.values(state.tasks)) {
      assert.equal(entries(t, 'merged').length, 1, `${t.id} merged once`);
      for (const stage of ['architect', 'test', 'implementation', 'supervisor']) {
        assert.ok(
          subjects.some((s) => s.startsWith(`${t.id} ${stage}:`)),
          `${t.id}'s ${stage} commit is on main`,
        );
      }
      assert.ok(
        firstParent.filter((s) => s.startsWith(`Merge pipeline/${t.id}:`)).length <= 1,
        `${t.id} merged into main at most once by a merge commit`,
      );
    }
    for (const a of Object.values(state.agents))
      assert.deepEqual([a.id, a.status, a.current_task], [a.id, 'idle', null]);
    await assertGitHealthy(sb);
    // Agents orphaned by the kills were followed to their end; none is left running.
    await until('no agent process left', 10_000, async () => (await processesMentioning(sb.base)).length === 0);
  } finally {
    for (const pid of await processesMentioning(sb.base)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone.
      }
    }
    await sb.cleanup();
  }
});
