import type { PipelineConfig } from '../model/configSchema';
import type { PipelineState, Task } from '../model/schema';

/**
 * Which tasks may run under the rollout mode: in pilot mode only those labelled `config.pilotLabel`
 * (guard rails while a team tries the pipeline out); in shadow and production mode all of them, for
 * which it returns undefined so plans skip the check. The facade passes the result to `plan`.
 */
export function rolloutEligibility(
  state: Pick<PipelineState, 'mode'>,
  config: Pick<PipelineConfig, 'pilotLabel'>,
): ((t: Task) => boolean) | undefined {
  if (state.mode !== 'pilot') return undefined;
  const label = config.pilotLabel;
  return (t) => t.labels.includes(label);
}
