import type { PipelineHome } from './home/pipelineHome';
import type { PipelineConfig } from './model/configSchema';
import { pipelineStateCodec } from './model/stateCodec';
import { wrongLease, type PostgresBackendOptions, type StateBackend } from './stateBackend';
import { fileLeaseSource, LeaderLease } from './store/leaderLease';
import { StateStore } from './store/stateStore';

/**
 * Which state store a pipeline uses, from `store` in `.pipeline/config.json`: the file journal in
 * `.pipeline/state/` with its lease files (the default, nothing to set up), or a PostgreSQL
 * database whose URL is read from an environment variable (a pipeline shared between machines;
 * postgres/pgBackend.ts, loaded only then). Either way the pipeline sees the same ports.
 */

export function fileBackend(home: PipelineHome, config: PipelineConfig): StateBackend {
  return {
    kind: 'file',
    where: home.stateDir,
    leases: fileLeaseSource(home.leaderDir),
    open: (lease) => {
      if (lease && !(lease instanceof LeaderLease)) throw wrongLease('file');
      return StateStore.open({
        dir: home.stateDir,
        codec: pipelineStateCodec,
        snapshotEvery: config.snapshotEvery,
        ...(lease ? { lease } : {}),
      });
    },
    close: () => Promise.resolve(),
  };
}

/** The backend `config.store` names (the file journal when absent). */
export async function stateBackend(
  home: PipelineHome,
  config: PipelineConfig,
  opts: PostgresBackendOptions = {},
): Promise<StateBackend> {
  if (config.store?.kind !== 'postgres') return fileBackend(home, config);
  const { postgresBackend } = await import('./postgres/pgBackend.js');
  return postgresBackend(home, config.store, opts);
}
