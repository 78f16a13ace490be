import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AgentPriority } from './agentPriority';
import { runBounded } from './boundedRun';
import type { CheckRequest, CheckResult, CheckRunner } from '../ports/checkRunner';

/**
 * Runs a stage's check through `sh -c` in the worktree, in a process group of its own so a timeout
 * kills the check and everything it started (boundedRun.ts). Its output, stdout and stderr
 * interleaved as they came, is kept as evidence whether it passed or not. A check (a build, a test
 * suite) is the agents' kind of work, so it runs at their CPU priority, below the engine's.
 */
export class ShellCheckRunner implements CheckRunner {
  private readonly priority: AgentPriority;

  /** `niceness` is the configuration's `agentNiceness`. */
  constructor(o: { niceness?: number } = {}) {
    this.priority = new AgentPriority(o.niceness);
  }

  async run(req: CheckRequest): Promise<CheckResult> {
    const started = Date.now();
    const r = await runBounded('sh', ['-c', req.command], {
      cwd: req.cwd,
      env: { ...process.env, ...req.env },
      timeoutMs: req.timeoutMs,
      priority: this.priority,
    });
    const timedOut = r.timedOut;
    const code = timedOut ? null : r.code;
    const output = r.startError !== undefined ? `cannot run the check: ${r.startError}` : r.output;
    const ending = timedOut ? `killed after ${Math.round(req.timeoutMs / 1000)} s` : `exit ${code}`;
    await mkdir(dirname(req.evidenceFile), { recursive: true });
    await writeFile(
      req.evidenceFile,
      `$ ${req.command}\n# in ${req.cwd}, ${new Date(started).toISOString()}, ${ending}\n${r.priorityError !== undefined ? `# the check ${r.priorityError}\n` : ''}${output}`,
    );
    return { passed: code === 0 && !timedOut, code, timedOut, durationMs: Date.now() - started };
  }
}
