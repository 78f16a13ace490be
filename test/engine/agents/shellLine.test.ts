import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { exitFileOf, shellLine } from '../../../src/engine/agents/exitFile';
import { shellQuote } from '../../../src/engine/agents/shellWords';
import type { RunRequest } from '../../../src/engine/ports/agentRunner';
import { until } from '../../support/waiting';

/**
 * The line a terminal or tmux runner types: the command's output reaches the agent's log and its
 * status the exit file. An interactive CLI (Claude Code's own interface) must see a terminal on its
 * output, which `tee`'s pipe is not: Claude Code would answer as `-p` does and exit. It gets a
 * terminal of its own, which must not outlive the agent's terminal.
 */

const execFileP = promisify(execFile);

function request(dir: string, argv: string[], interactive: boolean): RunRequest {
  return {
    agentId: 'claude-1',
    taskId: 'TASK-001',
    attempt: 1,
    role: 'tester',
    worktree: dir,
    taskFile: join(dir, 'task.md'),
    command: {
      argv,
      env: { PIPELINE_ROLE: 'tester' },
      display: argv.map(shellQuote).join(' '),
      ...(interactive ? { interactive } : {}),
    },
    logFile: join(dir, 'logs', 'claude-1.log'),
  };
}

async function runLine(interactive: boolean): Promise<{ log: string; status: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'shell-line-'));
  try {
    // Says whether its output is a terminal, with a quote and a dollar that the line must keep.
    const probe = `if [ -t 1 ]; then echo "it's a terminal \\$HOME"; else echo "it's a pipe"; fi; exit 7`;
    const req = request(dir, ['sh', '-c', probe], interactive);
    const exitFile = exitFileOf(dir, req);
    // No terminal on this side: the runner's shell has one, but `script` makes its own without it.
    await execFileP('bash', ['--noprofile', '--norc', '-c', shellLine(req, exitFile)]);
    return { log: await readFile(req.logFile, 'utf8'), status: (await readFile(exitFile, 'utf8')).trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void test('a headless command: its output through tee into the log, its status in the exit file', async () => {
  const r = await runLine(false);
  assert.equal(r.log, "it's a pipe\n");
  assert.equal(r.status, '7');
});

void test('an interactive command: a terminal of its own, its output still in the log, its own status', async () => {
  const r = await runLine(true);
  assert.match(r.log, /it's a terminal \$HOME\r?\n/);
  assert.equal(r.status, '7');
});

void test('an interactive command whose terminal hangs up ends with it: no CLI is left running in a terminal of its own', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shell-line-'));
  let cliPid = 0;
  try {
    const pidFile = join(dir, 'cli.pid');
    const req = request(dir, ['sh', '-c', `echo $$ > ${shellQuote(pidFile)}; exec sleep 600`], true);
    const exitFile = exitFileOf(dir, req);
    // Its own process group, as a terminal's job has: a hang-up goes to the whole group.
    const shell = spawn('bash', ['--noprofile', '--norc', '-c', shellLine(req, exitFile)], {
      detached: true,
      stdio: 'ignore',
    });
    cliPid = await until(
      'the command to start',
      10_000,
      async () => Number((await readFile(pidFile, 'utf8').catch(() => '')).trim()) || undefined,
    );
    process.kill(-shell.pid!, 'SIGHUP');
    await until('the command to end with the hang-up', 10_000, () => !alive(cliPid));
    assert.equal(
      await until('the exit file', 10_000, async () => (await readFile(exitFile, 'utf8').catch(() => '')) || undefined),
      '129\n',
    );
  } finally {
    if (cliPid && alive(cliPid)) process.kill(cliPid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

/** Whether a process runs (a zombie that nobody reaped, where PID 1 does not reap, has ended). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
