import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { TmuxRunner } from '../../../src/engine/agents/tmuxRunner';
import { runMonitor } from '../../../src/cli/runCommand';
import { homeAt } from '../../../src/engine/home/pipelineHome';
import type { RunRequest } from '../../../src/engine/ports/agentRunner';
import { assertAllMerged, assertGitHealthy, readState, requireBuild, sandbox, until, within } from './monitorKit';

/**
 * The tmux runner (the seed's way: a window per agent, commands typed in with send-keys) runs a
 * small pipeline to completion. tmux is required: .ci/run installs it; elsewhere `apt-get install
 * tmux` (this test fails, rather than skips, without it).
 */

requireBuild();
const run = promisify(execFile);

/** `pipeline run --until-idle --runner tmux`, its lines captured; a run that hangs fails showing them and the windows. */
async function runShowingWindows(
  dir: string,
  runner: TmuxRunner,
  ms: number,
): Promise<{ code: number; output: string }> {
  let output = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array) => {
    output += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  };
  try {
    const code = await within('pipeline run --until-idle --runner tmux', ms, runMonitor('tmux', true, false, dir));
    return { code, output };
  } catch (e) {
    throw new Error(`${String(e)}\n--- printed\n${output}${await panes(runner)}`);
  } finally {
    process.stdout.write = write;
  }
}

/** What every window of the session shows, for a failure's message. */
async function panes(runner: TmuxRunner): Promise<string> {
  const names = await run('tmux', ['list-windows', '-t', runner.session, '-F', '#{window_name}']).then(
    (r) => r.stdout.split('\n').filter(Boolean),
    (e: unknown) => [`(no windows: ${String(e)})`],
  );
  const out: string[] = [];
  for (const name of names) {
    const pane = await run('tmux', ['capture-pane', '-p', '-J', '-S', '-100', '-t', `${runner.session}:${name}`]).then(
      (r) => r.stdout.trimEnd(),
      () => '',
    );
    out.push(`--- window ${name}\n${pane}`);
  }
  return out.join('\n');
}

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

  // The run normally takes a few seconds; the limit is for a run that hangs, which then shows what
  // it printed and what each agent's window shows.
  const r = await runShowingWindows(sb.dir, runner, 90_000);
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

void test('tmux runner: a stopped attempt ends with a status and keeps its window; one that ignores Ctrl-C ends when its shell is replaced; neither takes the status of another task', async (t) => {
  assert.ok(await TmuxRunner.available(), 'tmux is not installed: install it (apt-get install tmux)');
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-tmux-'));
  const runner = new TmuxRunner(join(dir, 'run'), dir);
  t.after(async () => {
    await runner.killSession();
    await rm(dir, { recursive: true, force: true });
  });
  // Attempt numbers count per task: the tester's attempt 2 of TASK-001, TASK-002 and TASK-003.
  const request = (taskId: string, display: string): RunRequest => ({
    agentId: 'tester',
    taskId,
    attempt: 2,
    role: 'tester',
    worktree: dir,
    taskFile: join(dir, `${taskId}.attempt-2.md`),
    command: { argv: [], env: { PIPELINE_TASK_ID: taskId }, display },
    logFile: join(dir, 'logs', 'tester.log'),
  });
  // Stopped once it runs (it says so in the agent's log), not while its line is still being typed.
  const running = (taskId: string) =>
    until(`the command of ${taskId} running`, 60_000, async () =>
      (await readFile(join(dir, 'logs', 'tester.log'), 'utf8').catch(() => '')).includes(`started ${taskId}`),
    );
  const shellPid = async () =>
    (await run('tmux', ['display-message', '-p', '-t', `${runner.session}:tester`, '#{pane_pid}'])).stdout.trim();

  // Stopped while it works (Ctrl-C, as the monitor stops an agent): the status is still written,
  // so the attempt ends by it and the window's shell, with what it showed, stays.
  const first = await runner.start(request('TASK-001', `sh -c 'echo started TASK-001; exec sleep 600'`));
  await running('TASK-001');
  const shell = await shellPid();
  await first.stop();
  const interrupted = await within('the interrupted attempt to end', 60_000, first.exited);
  assert.equal(interrupted.code, 130, 'ended by SIGINT, and its status says so');
  assert.equal(await shellPid(), shell, 'the window kept its shell');

  // A command that ignores Ctrl-C writes no status: its shell is replaced, and the attempt ends then.
  const stubborn = await runner.start(request('TASK-002', `sh -c 'trap "" INT; echo started TASK-002; sleep 600'`));
  await running('TASK-002');
  await stubborn.stop();
  const killed = await within('the attempt whose shell was replaced to end', 60_000, stubborn.exited);
  assert.equal(killed.code, null, 'no status: it was killed');

  // The next task's attempt 2 in the same window: its own status, 3, comes to it.
  const next = await runner.start(request('TASK-003', 'sh -c "exit 3"'));
  const exit = await within("TASK-003's attempt to report its exit", 60_000, next.exited);
  assert.equal(exit.code, 3);
});
