import { test } from 'node:test';
import { projectModel } from '../support/modelServers/projectModel';
import { assertAgentsDidTheWork, runRealPipeline, timings, type StagePresets } from '../support/realPipelineKit';

/**
 * One CLI per stage: the architect on Claude Code, the tester on Codex CLI, the implementer on Gemini
 * CLI and the supervisor on Claude Code again, each against its own local model server. Each agent
 * works on the branch the one before it left (the tester reads the architect's design, the
 * implementer runs the tester's test), and the supervisor's approval merges.
 */
void test('mixed: architect on claude, tester on codex, implementer on gemini, supervisor on claude, merged', async (t) => {
  const presets: StagePresets = { architect: 'claude', tester: 'codex', implementer: 'gemini', supervisor: 'claude' };
  const run = await runRealPipeline(presets, projectModel());
  try {
    t.diagnostic(`mixed: ${timings(run)}`);
    await assertAgentsDidTheWork(run, presets);
  } finally {
    await run.cleanup();
  }
});
