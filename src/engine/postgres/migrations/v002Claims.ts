import type { Migration } from './migration';

/**
 * Workers on several machines (src/engine/workers/): the `claims` table, one row per attempt the
 * coordinator offers to the workers, and the `workers` table, one row per worker that says which
 * agents it runs and when it was last heard of.
 *
 * A claim moves offered → claimed (a worker took it: `worker`, its lease and a new `epoch`) → done
 * (the worker reported its outcome under that epoch), or to expired / cancelled (the coordinator
 * took it back; the epoch is bumped, so the worker's late report matches no row). The state log
 * stays single-writer: only the coordinator turns a claim's outcome into a transition.
 */
export const v002Claims: Migration = {
  version: 2,
  name: 'claims',
  sql: `
CREATE TABLE pipeline.claims (
  task_id text NOT NULL,
  attempt integer NOT NULL,
  stage text NOT NULL,
  role text NOT NULL,
  agent text NOT NULL,
  command text NOT NULL,
  base text NOT NULL,
  task_file_name text NOT NULL,
  task_text text NOT NULL,
  coordinator_epoch bigint NOT NULL,
  status text NOT NULL CHECK (status IN ('offered', 'claimed', 'done', 'expired', 'cancelled')),
  epoch bigint NOT NULL DEFAULT 0,
  worker text,
  offered_at timestamptz NOT NULL DEFAULT now(),
  claimed_at timestamptz,
  heartbeat_at timestamptz,
  lease_expires_at timestamptz,
  finished_at timestamptz,
  output text NOT NULL DEFAULT '',
  final_text text,
  exit_code integer,
  exit_signal text,
  start_error text,
  published text,
  note text,
  PRIMARY KEY (task_id, attempt)
);
CREATE INDEX claims_open ON pipeline.claims (status, agent, offered_at) WHERE status IN ('offered', 'claimed');

CREATE TABLE pipeline.workers (
  name text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  agents text[] NOT NULL,
  coordinate boolean NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  stopped boolean NOT NULL DEFAULT false
);
`,
};
