import type { Migration } from './migration';

/**
 * The leader row says whether its holder leads for one change only (a `task add` while nobody
 * leads), as the file lease's record does: a `pipeline run` started meanwhile then waits for it to
 * let go instead of being refused. Existing holders lead for good (false).
 */
export const v003LeaderOneChange: Migration = {
  version: 3,
  name: 'leader_one_change',
  sql: `
ALTER TABLE pipeline.leader ADD COLUMN one_change boolean NOT NULL DEFAULT false;
`,
};
