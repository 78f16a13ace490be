import { ShellCheckRunner } from '../../../src/engine/agents/shellCheckRunner';
import { MemoryChecks, type CheckAnswer, type CheckFunction } from '../../support/twins/memoryChecks';
import { checkRunnerConformance } from './checkRunner.conformance';

/** The CheckRunner's one contract, passed by ShellCheckRunner and by the in-memory twin. */

checkRunnerConformance('ShellCheckRunner (sh -c in its own process group)', () => ({
  checks: new ShellCheckRunner(),
  command: (_name, pair) => pair.shell,
}));

checkRunnerConformance('MemoryChecks (the in-memory twin)', () => {
  const table: Record<string, CheckAnswer | CheckFunction> = {};
  return {
    checks: new MemoryChecks(table),
    command: (name, pair) => {
      table[`npm run check:${name}`] = pair.twin;
      return `npm run check:${name}`;
    },
  };
});
