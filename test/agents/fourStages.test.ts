import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeAction, projectModel, toolCallsOf } from '../support/modelServers/projectModel';
import { assertMerged, runRealPipeline } from '../support/realPipelineKit';
import { git } from '../engine/monitor/monitorKit';

for (const preset of ['codex', 'gemini'] as const)
 void test(`${preset}: four stages`, async (t) => {
  const run = await runRealPipeline(
    { architect: preset, tester: preset, implementer: preset, supervisor: preset },
    projectModel(),
  );
  try {
    t.diagnostic(`${run.ms} ms`);
    for (const c of toolCallsOf(run.servers.requests()))
      t.diagnostic(`${c.facts.role} ${describeAction(c.action)} -> ${JSON.stringify(c.result?.slice(0, 300))}`);
    t.diagnostic(await git(run.sb.dir, 'log', '--graph', '--format=%h %an %s', '--all'));
    assertMerged(run);
  } finally {
    await run.cleanup();
  }
});
