import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProcessRunner } from '../../../src/engine/agents/processRunner';
import { TmuxRunner } from '../../../src/engine/agents/tmuxRunner';
import { MemoryRunner, type ScriptedAgent } from '../../support/twins/memoryRunner';
import { agentRunnerConformance, shellCommand } from './agentRunner.conformance';

/**
 * The AgentRunner's one contract, passed by ProcessRunner, TmuxRunner and the in-memory twin.
 * tmux is required (CI installs it; elsewhere `apt-get install tmux`): without it this file fails
 * saying so rather than skipping. The VS Code terminal runner needs the editor and is not run here.
 */

agentRunnerConformance('ProcessRunner (child processes)', (dir) => {
  const runDir = join(dir, 'run');
  return Promise.resolve({
    runner: new ProcessRunner(runDir),
    command: (_name, b) => shellCommand(b),
    restarted: () => new ProcessRunner(runDir),
    cleanup: () => Promise.resolve(),
  });
});

void test('tmux is installed, for the TmuxRunner conformance tests', async () => {
  assert.ok(
    await TmuxRunner.available(),
    'tmux is not installed: install it (apt-get install tmux; CI does) to run the TmuxRunner conformance tests',
  );
});

agentRunnerConformance('TmuxRunner (a tmux window per agent)', async (dir) => {
  if (!(await TmuxRunner.available()))
    throw new Error('tmux is not installed: install it (apt-get install tmux; CI does) to run these tests');
  const runDir = join(dir, 'run');
  const runner = new TmuxRunner(runDir, dir);
  return {
    runner,
    command: (_name, b) => shellCommand(b),
    restarted: () => new TmuxRunner(runDir, dir),
    cleanup: () => runner.killSession(),
  };
});

agentRunnerConformance('MemoryRunner (the in-memory twin)', () => {
  const agents: Record<string, ScriptedAgent> = {};
  const runner = new MemoryRunner({ agents });
  return Promise.resolve({
    runner,
    command: (name, b) => {
      agents[name] = b.twin;
      return `${name} {taskFile}`;
    },
    restarted: () => runner.restarted(),
    cleanup: () => Promise.resolve(),
  });
});
