import { join } from 'node:path';
import type { AgentRunner } from '../engine/ports/agentRunner';
import { ProcessRunner } from '../engine/agents/processRunner';
import { ShellCheckRunner } from '../engine/agents/shellCheckRunner';
import { TmuxRunner } from '../engine/agents/tmuxRunner';
import { PipelineError } from '../engine/errors';
import { GitWorkspace } from '../engine/git/gitWorkspace';
import { Monitor, type MonitorOptions } from '../engine/monitor/monitor';
import type { Pipeline } from '../engine/pipeline';
import { worktreeRootOf } from '../engine/home/pipelineHome';

/**
 * Builds the monitor for a headless run: the real git workspace and a runner of the chosen kind.
 * The scripted agent ships beside the CLI in dist/.
 */
export const SCRIPTED_AGENT = join(__dirname, 'scriptedAgent.js');

export type RunnerKind = 'process' | 'tmux';

export async function createRunner(p: Pipeline, kind: RunnerKind): Promise<AgentRunner> {
  const runDir = join(p.home.dir, 'run');
  if (kind === 'tmux') {
    if (!(await TmuxRunner.available()))
      throw new PipelineError('usage', 'tmux is not installed.', {
        where: '--runner tmux',
        fix: 'Install tmux, or use --runner process.',
      });
    return new TmuxRunner(runDir, p.home.dir, { niceness: p.config.agentNiceness });
  }
  return new ProcessRunner(runDir, { niceness: p.config.agentNiceness });
}

export async function createMonitor(
  p: Pipeline,
  kind: RunnerKind,
  extra: Partial<MonitorOptions> = {},
): Promise<Monitor> {
  const workspace = await GitWorkspace.open(p.home.root, worktreeRootOf(p.home, p.config.worktreeRoot));
  return new Monitor({
    pipeline: p,
    workspace,
    runner: await createRunner(p, kind),
    checks: new ShellCheckRunner({ niceness: p.config.agentNiceness }),
    scriptedAgent: SCRIPTED_AGENT,
    ...extra,
  });
}
