import type { AgentCliAdapter } from './agentCli';
import { aiderAdapter } from './aiderAdapter';
import { claudeAdapter } from './claudeAdapter';
import { codexAdapter } from './codexAdapter';
import { geminiAdapter } from './geminiAdapter';

/**
 * The agent CLIs the engine knows by preset name. A preset with an adapter is started the way its
 * adapter says (argv, environment, permissions); the other presets stay command templates.
 */
const adapters = new Map<string, AgentCliAdapter>();

function register(adapter: AgentCliAdapter): void {
  adapters.set(adapter.name, adapter);
}

// One line per CLI.
register(claudeAdapter);
register(codexAdapter);
register(geminiAdapter);
register(aiderAdapter);

export const AGENT_CLI_ADAPTERS: ReadonlyMap<string, AgentCliAdapter> = adapters;

/** The adapter for a preset name, or undefined for a template or a preset without one. */
export function adapterFor(command: string): AgentCliAdapter | undefined {
  return adapters.get(command);
}
