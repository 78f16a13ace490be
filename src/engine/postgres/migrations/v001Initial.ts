import type { Migration } from './migration';

/**
 * The first schema: the leader row with its fencing epoch, the record log, the head of the state
 * (its seq and everything but tasks and agents), and the current tasks, agents, attempts and
 * history, kept in the same transaction as the records so SQL readers see what `status` sees.
 *
 * Times the engine writes (`created_at`, history `at`…) stay the ISO strings it wrote, so the
 * tables give back exactly the state that was committed; the database's own times (`at` of a
 * record, the lease's) are `timestamptz`.
 */
export const v001Initial: Migration = {
  version: 1,
  name: 'initial',
  sql: `
CREATE TABLE pipeline.leader (
  id smallint PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL,
  token text NOT NULL,
  pid integer NOT NULL,
  host text NOT NULL,
  label text NOT NULL,
  since timestamptz NOT NULL,
  renewed_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  released boolean NOT NULL
);
INSERT INTO pipeline.leader VALUES (1, 0, '', 0, '', '', now(), now(), now(), true);

CREATE TABLE pipeline.state_records (
  seq bigint PRIMARY KEY,
  epoch bigint NOT NULL,
  record jsonb NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pipeline.state_head (
  id smallint PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL,
  epoch bigint NOT NULL,
  body jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pipeline.state_head (id, seq, epoch, body) VALUES (1, 0, 0, NULL);

CREATE TABLE pipeline.tasks (
  id text PRIMARY KEY,
  title text NOT NULL,
  status text NOT NULL,
  stage text NOT NULL,
  priority text NOT NULL,
  assigned_to text,
  attempt integer NOT NULL,
  created_order bigint NOT NULL,
  created_at text NOT NULL,
  updated_at text NOT NULL,
  body jsonb NOT NULL,
  changed_seq bigint NOT NULL
);
CREATE INDEX tasks_status_stage ON pipeline.tasks (status, stage);

CREATE TABLE pipeline.task_history (
  task_id text NOT NULL REFERENCES pipeline.tasks (id) ON DELETE CASCADE,
  n integer NOT NULL,
  at text NOT NULL,
  event text NOT NULL,
  from_status text NOT NULL,
  to_status text NOT NULL,
  stage text NOT NULL,
  agent text,
  note text,
  PRIMARY KEY (task_id, n)
);

CREATE TABLE pipeline.task_attempts (
  task_id text NOT NULL REFERENCES pipeline.tasks (id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  stage text NOT NULL,
  agent text,
  started_at text,
  ended_at text,
  outcome text,
  note text,
  usage jsonb,
  PRIMARY KEY (task_id, attempt)
);

CREATE TABLE pipeline.agents (
  id text PRIMARY KEY,
  role text NOT NULL,
  status text NOT NULL,
  current_task text,
  body jsonb NOT NULL,
  changed_seq bigint NOT NULL
);
`,
};
