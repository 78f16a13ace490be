import type { Migration } from './migration';

/**
 * Each worker's lease in the `workers` table, so that anyone reading the table (`pipeline status`,
 * `/metrics`, the coordinator deciding whom to offer work) can tell a live worker from one that
 * stopped beating: a worker whose heartbeat is older than its own lease is offline. Rows written by
 * a build before this one have none and are judged by the default lease of `pipeline worker`.
 */
export const v004WorkerLease: Migration = {
  version: 4,
  name: 'worker_lease',
  sql: `
ALTER TABLE pipeline.workers ADD COLUMN lease_ms integer CHECK (lease_ms > 0);
`,
};
