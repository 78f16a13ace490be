import { PipelineError } from '../errors';
import { isName } from '../model/ids';
import { hybridStrategy } from './hybridStrategy';
import type { OrchestrationStrategy } from './orchestrationStrategy';
import { parallelStrategy } from './parallelStrategy';
import { sequentialStrategy } from './sequentialStrategy';

/**
 * The orchestration modes by name: the one place a mode is plugged in. A new mode (the seed's
 * "hybrid", say) is a file exporting an OrchestrationStrategy and one `registerStrategy` line below;
 * the scheduler, the CLI's `pipeline mode orchestration` and the editor's picker read this registry.
 */
const strategies = new Map<string, OrchestrationStrategy>();

export function registerStrategy(s: OrchestrationStrategy): void {
  if (!isName(s.name)) {
    throw new PipelineError('invalid-id', `Invalid orchestration mode name ${JSON.stringify(s.name)}.`, {
      fix: 'Name the mode with lower-case letters, digits and dashes, starting with a letter.',
    });
  }
  const existing = strategies.get(s.name);
  if (existing && existing !== s) {
    throw new PipelineError('duplicate-id', `An orchestration mode named "${s.name}" is already registered.`, {
      fix: 'Give the new mode another name.',
    });
  }
  strategies.set(s.name, s);
}

export function getStrategy(name: string): OrchestrationStrategy {
  const s = strategies.get(name);
  if (!s) {
    throw new PipelineError(
      'usage',
      `Unknown orchestration mode "${name}". Known modes: ${strategyNames().join(', ')}.`,
      {
        fix: `Use \`pipeline mode orchestration <${strategyNames().join('|')}>\`.`,
      },
    );
  }
  return s;
}

/** The registered mode names, sorted. */
export function strategyNames(): string[] {
  return [...strategies.keys()].sort();
}

// The built-in modes.
registerStrategy(sequentialStrategy);
registerStrategy(parallelStrategy);
registerStrategy(hybridStrategy);
