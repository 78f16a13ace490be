import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { TmuxRunner } from '../../../src/engine/agents/tmuxRunner';
import { homeAt } from '../../../src/engine/home/pipelineHome';
import { assertAllMerged, assertGitHealthy, readState, requireBuild, runMonitorQuietly, sandbox } from './monitorKit';

/**
 * The tmux runner (the seed's way: a window per agent, commands typed in with send-keys) runs a
 * small pipeline to completion. tmux is required: .ci/run installs it; elsewhere `apt-get install
 * tmux` (this test fails, rather than skips, without it).
 */

requireBuild();
const run = promisify(execFile);

void test('pipeline run --runner tmux: a window per agent, every task merged, the session killed at the end', async (t) => {
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

  const windows = (await run('tmux', ['list-windows', '-t', runner.session, '-F', '#{window_name}'])).stdout
    .split('\n')
    .filter(Boolean);
  for (const agent of ['architect', 'tester', 'implementer', 'supervisor'])
    assert.ok(windows.includes(agent), `a window for ${agent}: ${windows.join(', ')}`);
  // The window's output is teed into the agent's log.
  assert.match(
    await readFile(join(home.logsDir, 'agents', 'implementer.log'), 'utf8'),
    /\[scripted implementer TASK-00[12]\] committed/,
  );
  await assertGitHealthy(sb);

  await runner.killSession();
  await assert.rejects(run('tmux', ['has-session', '-t', runner.session]), 'the session is gone');
});
