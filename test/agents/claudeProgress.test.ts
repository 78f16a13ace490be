import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { StatusReport } from '../../src/engine/statusReport';
import { agentCliBinDir, agentCliPath } from '../support/agentCliKit';
import { startAnthropicServer } from '../support/modelServers/anthropicServer';
import { stageModel } from '../support/modelServers/stageModel';
import { CLI, runUntilIdle, sandbox, until, type Sandbox } from '../engine/monitor/monitorKit';

/**
 * The real Claude Code CLI as a pipeline agent, run by the monitor against our local Anthropic
 * server: while it works, `pipeline status` (another process, reading the leader's progress file)
 * shows its current step and the tokens and cost so far; the run's printer gets each step in order;
 * once it is done, `status --json` and the task's record hold what the server reported, summed over
 * the model's requests. The project's test command waits for a gate file, so the test looks at the
 * agent mid-step without guessing a time.
 */

const execFileP = promisify(execFile);

async function status(dir: string): Promise<StatusReport> {
  const { stdout } = await execFileP(process.execPath, [CLI, 'status', '--json'], { cwd: dir, encoding: 'utf8' });
  return JSON.parse(stdout) as StatusReport;
}

async function statusText(dir: string): Promise<string> {
  const { stdout } = await execFileP(process.execPath, [CLI, 'status'], { cwd: dir, encoding: 'utf8' });
  return stdout;
}

void test('claude in the pipeline: status shows its step and spending while it works, and the totals after', async (t) => {
  agentCliPath('claude'); // fails with the install command when the CLI is missing
  const usage = { input: 1500, output: 60, cacheRead: 400, cacheWrite: 200 };
  const server = await startAnthropicServer(stageModel({ testCommand: 'npm test', usage }));
  const home = await mkdtemp(join(tmpdir(), 'claude-progress-home-'));
  const gate = join(home, 'gate');
  // The agents inherit this process's environment: our server, a fake key, the pinned CLI first on
  // PATH, a HOME of the test's own, nothing sent anywhere else.
  Object.assign(process.env, {
    PATH: [agentCliBinDir, process.env.PATH ?? '/usr/bin:/bin'].join(delimiter),
    HOME: home,
    ANTHROPIC_BASE_URL: server.url,
    ANTHROPIC_API_KEY: 'sk-ant-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
  });
  let sb: Sandbox | undefined;
  try {
    sb = await sandbox({
      tasks: [{ id: 'TASK-001', title: 'Add a greeting', description: 'Add `greet(name)` and its tests.' }],
      agents: [['agent-1', 'tester', 'claude']],
      config: {
        stages: [{ name: 'test', role: 'tester' }],
        reworkStage: 'test',
        conflictStages: ['test'],
        // Claude Code gives its cost only at the end; meanwhile the tokens so far are priced from here.
        prices: { '*': { inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3, cacheWritePerMTok: 3.75 } },
      },
      files: {
        'README.md': '# Demo\n',
        'package.json': `${JSON.stringify({ name: 'demo', private: true, scripts: { test: 'node test/run.js' } }, null, 2)}\n`,
        'test/run.js': `const fs = require('fs');\n(function wait() {\n  if (fs.existsSync(${JSON.stringify(gate)})) console.log('demo tests: 3 passed');\n  else setTimeout(wait, 50);\n})();\n`,
      },
    });
    const dir = sb.dir;
    const lines: string[] = [];
    let during: StatusReport | undefined;
    let text = '';
    const r = await runUntilIdle(dir, {
      timeoutMs: 180_000,
      during: async (p) => {
        p.events.on('agent:progress', (e) => {
          if (e.line) lines.push(e.line);
        });
        // Another process's view, from the leader's progress file: the agent is in its test run.
        during = await until(
          'status showing the agent running npm test',
          120_000,
          async () => {
            const s = await status(dir);
            return s.progress['agent-1']?.step === 'Bash: npm test' ? s : undefined;
          },
          200,
        );
        text = await statusText(dir);
        await writeFile(gate, '');
      },
    });
    t.diagnostic(`${server.requests.length} model requests; steps: ${lines.join(' | ')}`);
    assert.deepEqual(r.idle.blocked, []);
    assert.equal(r.state.tasks['TASK-001']?.status, 'done');

    // While it worked: its task, stage and attempt, three steps so far, and the three requests'
    // tokens (output a placeholder until the run's totals), priced from the config.
    const now = during!.progress['agent-1']!;
    assert.deepEqual(
      [now.taskId, now.stage, now.attempt, now.steps, now.step],
      ['TASK-001', 'test', 1, 3, 'Bash: npm test'],
    );
    assert.match(now.session ?? '', /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...now.usage, costUsd: 0 },
      {
        input: 3 * usage.input,
        output: 3,
        cacheRead: 3 * usage.cacheRead,
        cacheWrite: 3 * usage.cacheWrite,
        costUsd: 0,
      },
    );
    const soFar = (3 * usage.input * 3 + 3 * 15 + 3 * usage.cacheRead * 0.3 + 3 * usage.cacheWrite * 3.75) / 1e6;
    assert.ok(Math.abs(now.usage!.costUsd - soFar) < 1e-12, `${now.usage!.costUsd} vs ${soFar}`);
    assert.equal(during!.agents['agent-1']?.status, 'working');
    assert.match(
      text,
      /agent-1\s+tester\s+working\s+TASK-001 test attempt 1: Bash: npm test \(4\.5k in · 3 out · 1\.8k cache, \$0\.0\d+\)/,
    );

    // Each step was announced in order, as it happened.
    assert.deepEqual(lines, [
      'agent-1 TASK-001 (test): Read .pipeline-task/TASK-001.attempt-1.md',
      'agent-1 TASK-001 (test): Write work/TASK-001/test.md',
      'agent-1 TASK-001 (test): Bash: npm test',
      `agent-1 TASK-001 (test): Bash: git add -A && git commit -q -m "TASK-001 test: tester's work"`,
      `agent-1 TASK-001 (test): Bash: printf '\\n%s\\n' '## Status: COMPLETED ✅' >> '.pipeline-task/TASK-001.attempt-1.md'`,
    ]);

    // After: nobody is at work; the attempt's record and status --json hold the server's tokens,
    // every request's, and Claude Code's own cost.
    const n = server.requests.length;
    const after = await status(dir);
    assert.deepEqual(after.progress, {});
    const attempts = r.state.tasks['TASK-001'].usage!.attempts;
    assert.equal(attempts.length, 1);
    assert.deepEqual([attempts[0]!.stage, attempts[0]!.agent, attempts[0]!.session], ['test', 'agent-1', now.session]);
    assert.ok(attempts[0]!.models.every((m) => m.costSource === 'cli'));
    const cost = attempts[0]!.models.reduce((s, m) => s + (m.costUsd ?? 0), 0);
    const total = {
      input: usage.input * n,
      output: usage.output * n,
      cacheRead: usage.cacheRead * n,
      cacheWrite: usage.cacheWrite * n,
      costUsd: cost,
    };
    assert.deepEqual(after.usage.total, total);
    assert.deepEqual(after.usage.byStage, { test: total });
    assert.deepEqual(after.usage.byAgent, { 'agent-1': total });
    assert.deepEqual(after.usage.merged, { tasks: 1, costUsd: cost });
    assert.equal(after.usage.unpriced, 0);
    assert.ok(cost > 0);
    assert.match(await statusText(dir), /^spent: +\$0\.\d{4} \(9\.0k in · 360 out · 3\.6k cache\)$/m);
  } finally {
    await writeFile(gate, '').catch(() => undefined);
    await server.close();
    await sb?.cleanup();
    await rm(home, { recursive: true, force: true });
  }
});
