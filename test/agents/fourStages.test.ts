import { test } from 'node:test';
import { projectModel } from '../support/modelServers/projectModel';
import { assertAgentsDidTheWork, runRealPipeline, timings, type CliPreset } from '../support/realPipelineKit';

/**
 * Each preset takes one task through the four default stages with its real CLI (the pinned Claude
 * Code, Codex CLI and Gemini CLI), led by the engine's monitor, against our local model servers: the
 * agents write the design, the test and the code with the CLI's own tools, run the tests, commit, and
 * append their markers; the supervisor's approval merges. What is asserted comes from the servers'
 * request log and from git (see assertAgentsDidTheWork).
 */

for (const preset of ['claude', 'codex', 'gemini'] as const satisfies readonly CliPreset[]) {
  void test(`${preset}: one task through architect, test, implementation and supervisor, merged`, async (t) => {
    const presets = { architect: preset, tester: preset, implementer: preset, supervisor: preset };
    const run = await runRealPipeline(presets, projectModel());
    try {
      t.diagnostic(`${preset}: ${timings(run)}`);
      await assertAgentsDidTheWork(run, presets);
    } finally {
      await run.cleanup();
    }
  });
}
