import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { TmuxRunner } from '../../../src/engine/agents/tmuxRunner';
import { homeAt } from '../../../src/engine/home/pipelineHome';
import {
  assertAllMerged,
  assertGitHealthy,
  readState,
  requireBuild,
  runMonitorQuietly,
  sandbox,
  within,
} from './monitorKit';

/**
 * The tmux runner (the seed's way: a window per agent, commands typed in with send-keys) runs a
 * small pipeline to completion. tmux is required: .ci/run installs it; elsewhere `apt-get install
 * tmux` (this test fails, rather than skips, without it).
 */

requireBuild();
const run = promisify(execFile);

void test('pipeline run --runner tmux: a window per agent, every task merged, no session left at the end', async (t) => {
  assert.ok(
    await TmuxRunner.available(),
    "tmux is not installed: install it (apt-get install tmux; .ci/run does) to run the tmux runner's test",
  );
  const sb = await sandbox({
    tasks: [
      { id: 'TASK-001', title: 'First', paths: ['a/**'] },
      {
        id: 'TASK-002',
        title: 'Second',
        paths: ['b/**'],
        prerequisites: ['TASK-001'],
        description: 'scripted: fail test 1',
      },
    ],
  });
  const home = homeAt(sb.dir);
  const runner = new TmuxRunner(join(home.dir, 'run'), home.dir);
  t.after(async () => {
    await runner.killSession();
    await sb.cleanup();
  });

  const r = await runMonitorQuietly(sb.dir, 'tmux', 90_000);
  assert.equal(r.code, 0, r.output);
  const state = await readState(sb.dir);
  await assertAllMerged(sb.dir, state);
  assert.match(
    state.tasks['TASK-002']!.history.find((h) => h.event === 'fail')!.note!,
    /exited with code 1/,
    'the exit status came through tmux',
  );

  // Each agent ran in its window, whose output is teed into the agent's log.
  for (const agent of ['architect', 'tester', 'implementer', 'supervisor'])
    assert.match(
      await readFile(join(home.logsDir, 'agents', `${agent}.log`), 'utf8'),
      new RegExp(`\\[scripted ${agent} `),
    );
  // The window's output is teed into the agent's log.
  assert.match(
    await readFile(join(home.logsDir, 'agents', 'implementer.log'), 'utf8'),
    /\[scripted implementer TASK-00[12]\] committed/,
  );
  await assertGitHealthy(sb);
  // The run stopped its agents as it ended, and left no session behind.
  await assert.rejects(run('tmux', ['has-session', '-t', runner.session]), 'the session is gone');
});

void test('tmux runner: a window gets the environment of the run, not of a tmux server started before it; the session goes when nothing runs', async (t) => {
  assert.ok(await TmuxRunner.available(), 'tmux is not installed: install it (apt-get install tmux)');
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-tmux-env-'));
  const runner = new TmuxRunner(join(dir, 'run'), dir);
  t.after(async () => {
    await runner.killSession();
    await rm(dir, { recursive: true, force: true });
  });
  // A tmux server and the pipeline's session, started without the variable (an earlier shell).
  await run('tmux', ['new-session', '-d', '-s', runner.session, '-n', 'pipeline'], {
    env: { ...process.env, PIPELINE_TEST_SECRET: 'stale value' },
  });
  process.env.PIPELINE_TEST_SECRET = 'set for this run';
  try {
    const out = join(dir, 'seen.txt');
    const h = await runner.start({
      agentId: 'tester',
      taskId: 'TASK-001',
      attempt: 1,
      role: 'tester',
      worktree: dir,
      taskFile: join(dir, 'task.md'),
      command: { argv: [], env: {}, display: `sh -c 'printf %s "$PIPELINE_TEST_SECRET" > ${out}'` },
      logFile: join(dir, 'logs', 'tester.log'),
    });
    assert.equal((await within('the command ending', 60_000, h.exited)).code, 0);
    assert.equal(await readFile(out, 'utf8'), 'set for this run');
  } finally {
    delete process.env.PIPELINE_TEST_SECRET;
  }
  await runner.dispose();
  await assert.rejects(run('tmux', ['has-session', '-t', runner.session]), 'no session is left behind');
});
