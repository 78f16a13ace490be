import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEMO_TASKS, setUpDemo } from '../../../src/cli/demo';
import { createMonitor } from '../../../src/cli/runtime';
import type { LogRecord } from '../../../src/engine/observability/jsonLogger';
import { JsonLogger } from '../../../src/engine/observability/jsonLogger';
import { MetricsServer } from '../../../src/engine/observability/metricsServer';
import type { MetricsSnapshot } from '../../../src/engine/observability/metricsSnapshot';
import { PipelineMetrics } from '../../../src/engine/observability/pipelineMetrics';
import { Pipeline } from '../../../src/engine/pipeline';
import {
  assertBuilt,
  editConfig,
  eventually,
  has,
  metric,
  scrape,
  SCRIPTED_AGENT,
  sleep,
  tempRepoDir,
  type Sample,
} from './obsKit';

/**
 * The demo pipeline (seven tasks, five scripted agents, a failed attempt, a review that requests
 * changes) runs for real, with a check on the test stage that fails once. Its leader serves metrics
 * and a follower in the same process serves its own; both are scraped over HTTP while it runs.
 */

const STAGES = ['architect', 'test', 'implementation', 'supervisor'];

void test(
  'metrics, health and snapshots of a real run, from the leader and from a follower',
  { timeout: 600_000 },
  async () => {
    assertBuilt();
    const { dir, cleanup } = await tempRepoDir('run');
    const flag = join(dir, '..', 'check-failed-once');
    await setUpDemo(dir);
    await editConfig(dir, (c) => {
      const stages = c.stages as { name: string; check?: string }[];
      stages[1]!.check = `test "$PIPELINE_TASK_ID" != TASK-004 || test -f '${flag}' || { touch '${flag}'; exit 1; }`;
    });

    const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'metrics test leader' });
    const f = await Pipeline.open({ cwd: dir, role: 'follow', label: 'metrics test follower', followIntervalMs: 100 });
    const metrics = PipelineMetrics.attach(p, { intervalMs: 500 });
    const fMetrics = PipelineMetrics.attach(f, { intervalMs: 500, processMetrics: false });
    const logger = JsonLogger.forPipeline(p);
    const server = await MetricsServer.start({ port: 0, metrics, pipeline: p });
    const fServer = await MetricsServer.start({ port: 0, metrics: fMetrics, pipeline: f });
    const monitor = await createMonitor(p, 'process', {
      scriptedAgent: SCRIPTED_AGENT,
      rescanSeconds: { idle: 1, normal: 1, busy: 1 },
    });
    try {
      assert.ok(server.port > 0 && fServer.port > 0 && server.port !== fServer.port);
      assert.equal(server.url, `http://127.0.0.1:${server.port}`);

      // Before the run: every task is pending, nothing merged, the figures are all there.
      const before = await scrape(server.url);
      assert.equal(metric(before, 'pipeline_tasks', { status: 'pending' }), DEMO_TASKS.length);
      assert.equal(metric(before, 'pipeline_tasks', { status: 'done' }), 0);
      assert.equal(metric(before, 'pipeline_merges_total'), 0);
      assert.equal(metric(before, 'pipeline_agents_idle'), 5);
      assert.equal(metric(before, 'pipeline_orchestration_mode', { mode: 'parallel' }), 1);
      assert.equal(metric(before, 'pipeline_rollout_mode', { mode: 'production' }), 1);
      assert.equal(metric(before, 'pipeline_is_leader'), 1);
      const info = before.find((s) => s.name === 'pipeline_leader_info');
      assert.deepEqual(info && { pid: info.labels.pid, label: info.labels.label, value: info.value }, {
        pid: String(process.pid),
        label: 'metrics test leader',
        value: 1,
      });
      assert.ok(metric(before, 'pipeline_leader_uptime_seconds') >= 0);
      for (const name of [
        'process_cpu_user_seconds_total',
        'process_resident_memory_bytes',
        'nodejs_heap_size_used_bytes',
        'nodejs_eventloop_lag_seconds',
      ])
        assert.ok(has(before, name), `process metric ${name}`);
      for (const st of STAGES)
        assert.equal(metric(before, 'pipeline_tasks', { status: 'queued', stage: st }), 0, 'zeros are explicit');

      const res = await fetch(`${server.url}/metrics`);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4; charset=utf-8$/);
      await res.text();

      // Health and readiness: the leader is ready, the follower names the leader.
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(await health.text(), 'ok\n');
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200, await ready.clone().text());
      assert.match(await ready.text(), /^ready: this process leads/);
      assert.equal((await fetch(`${fServer.url}/healthz`)).status, 200);
      const notReady = await fetch(`${fServer.url}/readyz`);
      assert.equal(notReady.status, 503);
      const reason = await notReady.text();
      assert.match(reason, /^not the leader: led by metrics test leader \(pid \d+ on .+, since .+\)\n$/);
      assert.ok(reason.includes(`pid ${process.pid}`));
      const notReadyJson = await fetch(`${fServer.url}/readyz`, { headers: { accept: 'application/json' } });
      assert.equal(notReadyJson.status, 503);
      assert.match(notReadyJson.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await notReadyJson.json()) as {
        ready: boolean;
        reason: string;
        isLeader: boolean;
        leader: { pid: number; label: string } | null;
      };
      assert.equal(body.ready, false);
      assert.equal(body.isLeader, false);
      assert.equal(body.leader?.pid, process.pid);
      assert.equal(body.leader?.label, 'metrics test leader');

      // The run, scraped as it goes.
      await monitor.start();
      const idle = monitor.untilIdle();
      let finished = false;
      void idle.then(() => (finished = true));
      const scrapes: Sample[][] = [];
      const snapshots: MetricsSnapshot[] = [];
      while (!finished) {
        scrapes.push(await scrape(server.url));
        snapshots.push((await (await fetch(`${server.url}/snapshot.json`)).json()) as MetricsSnapshot);
        await sleep(250);
      }
      const r = await idle;
      assert.deepEqual(
        { blocked: r.blocked, waiting: r.waiting, done: r.done },
        { blocked: [], waiting: [], done: DEMO_TASKS.length },
      );
      await sleep(600); // one more interval of the series
      const after = await scrape(server.url);
      scrapes.push(after);
      snapshots.push((await (await fetch(`${server.url}/snapshot.json`)).json()) as MetricsSnapshot);
      assert.ok(scrapes.length >= 8, `scraped ${scrapes.length} times during the run`);

      // The figures moved as the run went, and never backwards.
      const done = scrapes.map((s) => metric(s, 'pipeline_tasks', { status: 'done' }));
      const merges = scrapes.map((s) => metric(s, 'pipeline_merges_total'));
      const implDurations = scrapes.map((s) =>
        metric(s, 'pipeline_stage_duration_seconds_count', { stage: 'implementation' }),
      );
      for (const series of [done, merges, implDurations]) {
        for (let i = 1; i < series.length; i++)
          assert.ok(series[i]! >= series[i - 1]!, `non-decreasing: ${series.join(',')}`);
      }
      assert.ok(new Set(done).size >= 3, `tasks done moved through several values: ${done.join(',')}`);
      assert.ok(
        new Set(implDurations).size >= 3,
        `implementation durations were observed as the run went: ${implDurations.join(',')}`,
      );
      assert.ok(
        scrapes.some((s) => metric(s, 'pipeline_agents_busy') > 0),
        'agents were seen busy',
      );
      assert.ok(
        scrapes.some((s) => metric(s, 'pipeline_tasks', { status: 'working' }) > 0),
        'tasks were seen working',
      );

      // Final figures.
      const n = DEMO_TASKS.length;
      assert.equal(metric(after, 'pipeline_tasks', { status: 'done' }), n);
      assert.equal(metric(after, 'pipeline_tasks', { status: 'done', stage: 'supervisor' }), n);
      assert.equal(metric(after, 'pipeline_tasks'), n);
      assert.equal(metric(after, 'pipeline_merges_total'), n);
      assert.equal(metric(after, 'pipeline_task_transitions_total', { event: 'merged' }), n);
      assert.equal(
        metric(after, 'pipeline_merge_duration_seconds_count'),
        n + metric(after, 'pipeline_merge_conflicts_total'),
      );
      for (const st of STAGES) {
        assert.ok(
          metric(after, 'pipeline_stage_duration_seconds_count', { stage: st, outcome: 'completed' }) >= n,
          `${st}: a duration per completed stage`,
        );
        assert.ok(metric(after, 'pipeline_stage_duration_seconds_sum', { stage: st }) > 0);
        assert.equal(
          metric(after, 'pipeline_stage_duration_seconds_bucket', { stage: st, outcome: 'completed', le: '+Inf' }),
          metric(after, 'pipeline_stage_duration_seconds_count', { stage: st, outcome: 'completed' }),
        );
      }
      // TASK-003 fails its first implementation attempt; TASK-004's first test check fails.
      assert.ok(metric(after, 'pipeline_task_retries_total', { stage: 'implementation' }) >= 1);
      assert.ok(metric(after, 'pipeline_task_retries_total', { stage: 'test' }) >= 1);
      assert.ok(metric(after, 'pipeline_stage_duration_seconds_count', { outcome: 'failed' }) >= 2);
      assert.equal(metric(after, 'pipeline_checks_total', { stage: 'test', result: 'failed' }), 1);
      assert.ok(metric(after, 'pipeline_checks_total', { stage: 'test', result: 'passed' }) >= n);
      assert.ok(metric(after, 'pipeline_check_duration_seconds_count', { stage: 'test' }) >= n + 1);
      // TASK-005's first review requests changes.
      assert.ok(
        metric(after, 'pipeline_stage_duration_seconds_count', { stage: 'supervisor', outcome: 'changes_requested' }) >=
          1,
      );
      const attempts = metric(after, 'pipeline_task_attempts_total');
      assert.ok(attempts >= n * STAGES.length + 3, `attempts ${attempts}`);
      assert.equal(attempts, metric(after, 'pipeline_agent_starts_total'));
      assert.equal(metric(after, 'pipeline_agent_exits_total'), attempts);
      assert.ok(metric(after, 'pipeline_agent_exits_total', { result: 'no_marker' }) >= 1);
      // Handoffs: every stage after the first is entered by a handoff.
      const handoffs = metric(after, 'pipeline_handoff_latency_seconds_count');
      assert.ok(handoffs >= n * (STAGES.length - 1), `handoffs ${handoffs}`);
      assert.ok(
        metric(after, 'pipeline_handoff_latency_seconds_count', { from_stage: 'architect', to_stage: 'test' }) >= n,
      );
      assert.ok(
        metric(after, 'pipeline_handoff_latency_seconds_count', {
          from_stage: 'supervisor',
          to_stage: 'implementation',
        }) >= 1,
      );
      assert.equal(metric(after, 'pipeline_agents_busy'), 0);
      assert.equal(metric(after, 'pipeline_agents_idle'), 5);
      assert.equal(metric(after, 'pipeline_agents', { role: 'implementer', status: 'idle' }), 2);
      assert.ok(metric(after, 'pipeline_events_total', { event: 'task:transition' }) > 0);

      // The snapshot's time series moved.
      const first = snapshots[0]!;
      const last = snapshots[snapshots.length - 1]!;
      assert.equal(last.intervalMs, 500);
      assert.deepEqual(last.stages, STAGES);
      assert.ok(last.series.length > first.series.length, 'the series grew');
      assert.ok(last.series.length >= 4);
      for (let i = 1; i < last.series.length; i++)
        assert.equal(last.series[i]!.t - last.series[i - 1]!.t, 500, 'one point per interval, no gaps');
      assert.equal(
        last.series.reduce((a, pt) => a + pt.merged, 0),
        n,
        'every merge is in the series',
      );
      assert.ok(
        last.series.some((pt) => pt.utilisation > 0 && pt.utilisation <= 1),
        'utilisation was measured',
      );
      assert.ok(
        last.series.some((pt) => Object.values(pt.queueDepth).some((d) => d > 0)),
        'queues were seen',
      );
      assert.deepEqual(Object.keys(last.series[0]!.queueDepth), STAGES);
      assert.equal(last.tasks.byStatus.done, n);
      assert.equal(last.counters.merged, n);
      assert.ok(
        last.recent.stages.length > 0 && last.recent.stages.every((d) => d.seconds >= 0 && STAGES.includes(d.stage)),
      );
      assert.ok(last.recent.handoffs.length > 0 && last.recent.handoffs.every((d) => d.toStage !== undefined));
      assert.equal(last.isLeader, true);
      assert.equal(last.leader?.pid, process.pid);
      assert.deepEqual(last.modes, { orchestration: 'parallel', rollout: 'production', pendingSwitch: null });

      // The follower caught up from the refreshed state: same tasks, same merges, durations from history.
      const fAfter = await eventually(
        async () => {
          const s = await scrape(fServer.url);
          return metric(s, 'pipeline_tasks', { status: 'done' }) === n ? s : null;
        },
        10_000,
        'the follower to see every task done',
      );
      assert.equal(metric(fAfter, 'pipeline_merges_total'), n);
      assert.equal(metric(fAfter, 'pipeline_is_leader'), 0);
      assert.equal(
        metric(fAfter, 'pipeline_leader_info', { pid: String(process.pid), label: 'metrics test leader' }),
        1,
      );
      assert.equal(metric(fAfter, 'pipeline_task_attempts_total'), attempts);
      for (const st of STAGES)
        assert.ok(metric(fAfter, 'pipeline_stage_duration_seconds_count', { stage: st, outcome: 'completed' }) >= n);
      assert.ok(metric(fAfter, 'pipeline_handoff_latency_seconds_count') >= n * (STAGES.length - 1));
      assert.ok(!has(fAfter, 'process_cpu_user_seconds_total'), 'process metrics were turned off for the follower');
      const fSnap = fMetrics.metricsSnapshot();
      assert.equal(
        fSnap.series.reduce((a, pt) => a + pt.merged, 0),
        n,
      );
      assert.equal(fSnap.isLeader, false);

      // The JSON log has the run, one parseable line per event.
      await logger.flush();
      const lines = (await readFile(join(dir, '.pipeline', 'logs', 'pipeline.log'), 'utf8'))
        .split('\n')
        .filter(Boolean);
      const records = lines.map((l) => JSON.parse(l) as LogRecord);
      assert.ok(records.length > 50);
      for (const rec of records) {
        assert.ok(typeof rec.time === 'string' && !Number.isNaN(Date.parse(rec.time)));
        assert.ok(['debug', 'info', 'warn', 'error'].includes(rec.level));
        assert.ok(rec.event && rec.message);
        assert.notEqual(rec.event, 'state:changed');
      }
      const took = records.filter((x) => x.event === 'task:transition' && x.data?.transition === 'assign');
      assert.equal(took.length, attempts);
      assert.ok(took.every((x) => x.task && x.agent));
      assert.ok(records.some((x) => x.event === 'agent:started' && x.task && x.agent));
      assert.ok(records.some((x) => x.event === 'check:finished' && x.level === 'warn' && x.task === 'TASK-004'));
      assert.equal(records.filter((x) => x.event === 'merge:finished' && x.level === 'info').length, n);
    } finally {
      await monitor.stop();
      await server.close();
      await fServer.close();
      metrics.dispose();
      fMetrics.dispose();
      await f.close();
      await p.close();
      await logger.close();
      await cleanup();
    }
  },
);
