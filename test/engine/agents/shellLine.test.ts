import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { exitFileOf, shellLine } from '../../../src/engine/agents/exitFile';
import { shellQuote } from '../../../src/engine/agents/shellWords';
import type { RunRequest } from '../../../src/engine/ports/agentRunner';

/**
 * The line a terminal or tmux runner types: the command's output reaches the agent's log and its
 * status the exit file. An interactive CLI (Claude Code's own interface) must see a terminal on its
 * output, which `tee`'s pipe is not: Claude Code would answer as `-p` does and exit.
 */

const execFileP = promisify(execFile);

async function runLine(interactive: boolean): Promise<{ log: string; status: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'shell-line-'));
  try {
    // Says whether its output is a terminal, with a quote and a dollar that the line must keep.
    const probe = `if [ -t 1 ]; then echo "it's a terminal \\$HOME"; else echo "it's a pipe"; fi; exit 7`;
    const argv = ['sh', '-c', probe];
    const req: RunRequest = {
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
