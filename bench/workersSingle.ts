/**
 * The workers benchmark's reference: the same agents, repository and tasks on one machine, as
 * `pipeline run` leads them (handoff.bench.ts's parallel run, one agent per stage: the monitor in
 * this process, the real git workspace, the process runner, the file journal).
 */
import { join } from 'node:path';
import { createMonitor } from '../src/cli/runtime';
import { Pipeline } from '../src/engine/pipeline';
import { cloneRepo } from './handoffRepo';
import type { AttemptTimes, HistoryRow } from './workersHandoffs';
import { initBenchHome, SCRIPTED_AGENT } from './workersTeam';

export interface RunRecord {
  history: Map<string, HistoryRow[]>;
  times: Map<string, AttemptTimes>;
  wallSeconds: number;
}

export async function singleMachine(
  base: string,
  repo: string,
  seed: (p: Pipeline) => Promise<void>,
  tasks: number,
  timeoutMs: number,
): Promise<RunRecord> {
  const dir = join(base, 'single');
  await cloneRepo(repo, dir);
  await initBenchHome(dir);
  const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'workers bench, one machine' });
  // Nothing between the assignment and the agent's start is timed apart on one machine.
  const times = new Map<string, AttemptTimes>();
  try {
    await seed(p);
    const t0 = Date.now();
    const monitor = await createMonitor(p, 'process', { scriptedAgent: SCRIPTED_AGENT });
    try {
      await monitor.start();
      let timer: NodeJS.Timeout | undefined;
      const idle = await Promise.race([
        monitor.untilIdle(),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(
              () => reject(new Error(`one machine: not idle within ${timeoutMs / 1000} s`)),
              timeoutMs,
            )),
        ),
      ]).finally(() => clearTimeout(timer));
      if (idle.done !== tasks)
        throw new Error(`one machine: ${idle.done} of ${tasks} tasks done (blocked: ${idle.blocked.join(', ')})`);
    } finally {
      await monitor.stop();
    }
    const wallSeconds = (Date.now() - t0) / 1000;
    const history = new Map<string, HistoryRow[]>();
    for (const t of Object.values(p.state.tasks))
      history.set(
        t.id,
        t.history.map((h) => ({ at: Date.parse(h.at), event: h.event, stage: h.stage, agent: h.agent })),
      );
    return { history, times, wallSeconds };
  } finally {
    await p.close();
  }
}
