import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CheckRequest, CheckResult, CheckRunner } from '../ports/checkRunner';
import type { RemoteRunner } from './remoteRunner';

/**
 * The coordinator's CheckRunner when agents run on workers. A stage's check must run where the
 * agent's work is, in the worker's clone: the worker runs it after the agent's marker, before it
 * publishes, and reports how it ended with its output. Here the monitor's "run the check" reads that
 * report and keeps the worker's output as the evidence, as on one machine. An attempt whose report
 * has no check (a worker of an older version) fails its check with a reason that says so: a stage
 * never counts as done unchecked.
 */
export class ReportedChecks implements CheckRunner {
  constructor(private readonly runner: RemoteRunner) {}

  async run(req: CheckRequest): Promise<CheckResult> {
    const reported = await this.runner.takeCheck(req.taskId, req.attempt);
    const ending = !reported
      ? 'not run: the worker reported no check (update `pipeline` on the worker)'
      : reported.timedOut
        ? `killed after ${Math.round(req.timeoutMs / 1000)} s`
        : `exit ${reported.code}`;
    await mkdir(dirname(req.evidenceFile), { recursive: true });
    await writeFile(
      req.evidenceFile,
      `$ ${req.command}\n# on the worker, attempt ${req.attempt} of ${req.taskId}, ${ending}\n${reported?.output ?? ''}`,
    );
    if (!reported) return { passed: false, code: null, timedOut: false, durationMs: 0 };
    return {
      passed: reported.passed,
      code: reported.code,
      timedOut: reported.timedOut,
      durationMs: reported.durationMs,
    };
  }
}
