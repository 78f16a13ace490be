import assert from 'node:assert/strict';
import { test } from 'node:test';
import { printProgress } from '../../../src/cli/progressPrinter';
import { Pipeline } from '../../../src/engine/pipeline';
import { sandbox } from './monitorKit';

/** `pipeline run --json`: one event per line, named by `event`, which the crash tests read. */

void test('run --json: every line names its event, a task transition too (its own event goes under `transition`)', async () => {
  const sb = await sandbox({ tasks: [{ id: 'TASK-001', title: 'One' }] });
  const p = await Pipeline.open({ cwd: sb.dir, role: 'lead' });
  const lines: string[] = [];
  const progress = printProgress(p, true, (l) => lines.push(l));
  try {
    await p.blockTask('TASK-001', 'for the test');
    await p.addTasks([{ spec: { id: 'TASK-002', title: 'Two' } }]);
    const events = lines.map(
      (l) =>
        JSON.parse(l) as {
          event: unknown;
          transition?: { type: string; reason?: string };
          after?: { id: string; status: string };
        },
    );
    assert.deepEqual(
      events.map((e) => e.event),
      ['task:transition', 'task:added'],
    );
    assert.deepEqual(events[0]!.transition, { type: 'block', reason: 'for the test' });
    assert.deepEqual(events[0]!.after, { id: 'TASK-001', status: 'blocked', stage: 'architect' });
  } finally {
    progress.dispose();
    await p.close();
    await sb.cleanup();
  }
});
