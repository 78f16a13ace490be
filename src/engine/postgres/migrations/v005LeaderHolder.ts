import type { Migration } from './migration';

/**
 * Two facts the file lease's record has and the leader row lacked:
 * - `one_change`: its holder leads for one change only (a `task add` while nobody leads); a
 *   `pipeline run` started meanwhile then waits for it to let go instead of being refused.
 *   Existing holders lead for good (false).
 * - `place`: where the holder's pid means something (the kernel's boot and the pid namespace,
 *   pgLease.ts), so that a process in the same place can see that the holder died (kill -9, a
 *   crash) and take over at once, as the file lease does, instead of waiting out the lease.
 *   Existing holders have none (''), and are never judged so.
 */
export const v005LeaderHolder: Migration = {
  version: 5,
  name: 'leader_one_change_place',
  sql: `
ALTER TABLE pipeline.leader ADD COLUMN one_change boolean NOT NULL DEFAULT false;
ALTER TABLE pipeline.leader ADD COLUMN place text NOT NULL DEFAULT '';
`,
};
