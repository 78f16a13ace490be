/**
 * Stage checks as a port: a command (for example `npm test`) that must pass in the agent's worktree
 * before a stage counts as done. The real adapter runs it through `sh -c` in its own process group
 * (agents/shellCheckRunner.ts); tests give the monitor a twin that answers from a table.
 */
export interface CheckRequest {
  /** The stage's check command, as configured (a shell line: it is the user's own). */
  command: string;
  /** The worktree it runs in. */
  cwd: string;
  /** Added to the environment (PIPELINE_TASK_ID, PIPELINE_ROLE). */
  env: Record<string, string>;
  /** The check and whatever it started are killed after this long, and it counts as failed. */
  timeoutMs: number;
  /** Where its output is kept, with a header saying what ran where and how it ended. */
  evidenceFile: string;
  /** The task and attempt whose work it checks (workers run checks where that work is). */
  taskId: string;
  attempt: number;
}

export interface CheckResult {
  passed: boolean;
  /** The exit code; null when it was killed or could not start. */
  code: number | null;
  timedOut: boolean;
  durationMs: number;
}

export interface CheckRunner {
  run(req: CheckRequest): Promise<CheckResult>;
}
