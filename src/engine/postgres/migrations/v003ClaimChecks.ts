import type { Migration } from './migration';

/**
 * Stage checks on workers. A stage's check (`npm test`, …) must run where the agent's work is: in
 * the worker's clone, not on the coordinator. The offer carries the check the coordinator's
 * configuration gives the stage (workers' own configurations may differ), and the worker's report
 * carries how it ended and its output, which the coordinator keeps as the check's evidence.
 *
 * Resumes after a usage limit: the offer names the CLI session the attempt continues (the one the
 * limited attempt's stream gave), so the worker starts the CLI with its own resume and the agent
 * keeps its context, as on one machine.
 */
export const v003ClaimChecks: Migration = {
  version: 3,
  name: 'claim checks and resumes',
  sql: `
ALTER TABLE pipeline.claims
  ADD COLUMN check_command text,
  ADD COLUMN check_passed boolean,
  ADD COLUMN check_code integer,
  ADD COLUMN check_timed_out boolean,
  ADD COLUMN check_ms integer,
  ADD COLUMN check_output text,
  ADD COLUMN resume_session text;
`,
};
