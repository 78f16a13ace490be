import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { initRepo } from '../../../src/engine/git/initRepo';
import type { LogRecord } from '../../../src/engine/observability/jsonLogger';
import { Pipeline } from '../../../src/engine/pipeline';
import { initHome } from '../../../src/engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../../../src/engine/model/configSchema';
import { assertBuilt, eventually, metric, REPO_ROOT, scrape, SCRIPTED_AGENT, tempRepoDir, TSX_LOADER } from './obsKit';

/**
 * The CLI: `pipeline run --metrics-port` serves while it leads; `pipeline metrics serve` follows
 * and says who leads; both are real child processes of the CLI's source.
 */

interface Child {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>;
}

function cli(cwd: string, args: string[]): Child {
  const proc = spawn(
    process.execPath,
    ['--import', pathToFileURL(TSX_LOADER).href, join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SCRIPTED_AGENT_DELAY_MS: '300' } },
  );
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (re, ms = 30_000) =>
      eventually(
        () => re.exec(out),
        ms,
        `${re} in the output of pipeline ${args.join(' ')} (stdout: ${out}; stderr: ${err})`,
      ),
  };
}

async function setUp(dir: string): Promise<void> {
  await initRepo(dir, { files: { 'README.md': '# sample\n' } });
  await initHome(dir, {
    targetBranch: 'main',
    stages: DEFAULT_STAGES,
    retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1000, jitter: 0 },
  });
  const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'setup' });
  try {
    const command = `{node} '${SCRIPTED_AGENT}' {taskFile}`;
    for (const role of ['architect', 'tester', 'implementer', 'supervisor'])
      await p.addAgent({ id: role, role, command });
    await p.addTasks([
      { spec: { id: 'TASK-001', title: 'One', paths: ['src/one/**'] }, source: 'test' },
      { spec: { id: 'TASK-002', title: 'Two', paths: ['src/two/**'] }, source: 'test' },
    ]);
  } finally {
    await p.close();
  }
}

void test(
  'pipeline run --metrics-port serves while it leads; pipeline metrics serve follows and names the leader',
  { timeout: 600_000 },
  async () => {
    assertBuilt();
    const { dir, cleanup } = await tempRepoDir('cli');
    const children: Child[] = [];
    try {
      await setUp(dir);
      const serve = cli(dir, ['metrics', 'serve', '--port', '0']);
      children.push(serve);
      const serveUrl = (await serve.waitFor(/on (http:\/\/127\.0\.0\.1:\d+)\/metrics .*following read-only/))[1]!;
      const alone = await fetch(`${serveUrl}/readyz`);
      assert.equal(alone.status, 503);
      assert.equal(await alone.text(), 'not the leader: no process leads the pipeline\n');
      assert.equal(metric(await scrape(serveUrl), 'pipeline_tasks', { status: 'pending' }), 2);

      const run = cli(dir, ['run', '--until-idle', '--metrics-port', '0']);
      children.push(run);
      const runUrl = (await run.waitFor(/Metrics: (http:\/\/127\.0\.0\.1:\d+)\/metrics/))[1]!;
      const ready = await fetch(`${runUrl}/readyz`);
      assert.equal(ready.status, 200, await ready.clone().text());
      await ready.text();
      assert.equal(metric(await scrape(runUrl), 'pipeline_is_leader'), 1);

      // The follower sees the leader as soon as it re-reads it.
      const reason = await eventually(
        async () => {
          const r = await fetch(`${serveUrl}/readyz`);
          const t = await r.text();
          return r.status === 503 && t.includes('led by pipeline run') ? t : null;
        },
        10_000,
        'the follower to name the leader',
      );
      assert.match(reason, new RegExp(`^not the leader: led by pipeline run \\(pid ${run.proc.pid} on `));

      const code = await run.exited;
      assert.equal(code, 0, `run: ${run.stdout()}\n${run.stderr()}`);
      assert.match(run.stdout(), /Idle: 2 task\(s\) completed/);

      const followed = await eventually(
        async () => {
          const s = await scrape(serveUrl);
          return metric(s, 'pipeline_tasks', { status: 'done' }) === 2 ? s : null;
        },
        10_000,
        'the follower to see both tasks done',
      );
      assert.equal(metric(followed, 'pipeline_merges_total'), 2);
      assert.ok(metric(followed, 'pipeline_stage_duration_seconds_count', { stage: 'implementation' }) >= 2);
      // The follower learns that the leader has gone when it next reads the lease.
      const after = await eventually(
        async () => {
          const r = await fetch(`${serveUrl}/readyz`);
          const t = await r.text();
          return r.status === 503 && !t.includes('led by') ? t : null;
        },
        10_000,
        'the follower to see that nobody leads',
      );
      assert.equal(after, 'not the leader: no process leads the pipeline\n');

      serve.proc.kill('SIGINT');
      assert.equal(await serve.exited, 0, serve.stderr());

      // `pipeline run` always logs.
      const lines = (await readFile(join(dir, '.pipeline', 'logs', 'pipeline.log'), 'utf8'))
        .split('\n')
        .filter(Boolean);
      const records = lines.map((l) => JSON.parse(l) as LogRecord);
      assert.ok(records.some((r) => r.event === 'merge:finished' && r.task === 'TASK-002'));
      assert.ok(records.some((r) => r.event === 'monitor:idle'));
    } finally {
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await cleanup();
    }
  },
);

void test(
  'pipeline run: a bad or busy metrics port is a clear error, and the lease is let go',
  { timeout: 600_000 },
  async () => {
    const { dir, cleanup } = await tempRepoDir('cli-port');
    const blocker = createServer();
    try {
      await setUp(dir);
      const bad = cli(dir, ['run', '--until-idle', '--metrics-port', 'abc']);
      assert.equal(await bad.exited, 2);
      assert.match(bad.stderr(), /"abc" is not a port number/);

      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const port = (blocker.address() as { port: number }).port;
      const busy = cli(dir, ['run', '--until-idle', '--metrics-port', String(port)]);
      assert.equal(await busy.exited, 1);
      assert.match(busy.stderr(), new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use`));
      assert.match(busy.stderr(), /fix: .*--metrics-port <port>/);

      const p = await Pipeline.open({ cwd: dir, role: 'lead', label: 'after' });
      await p.close();
    } finally {
      blocker.close();
      await cleanup();
    }
  },
);
