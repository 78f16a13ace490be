// UI test: what a person sees in VS Code of agents at work and of a usage limit. Two Claude Code
// agents (the real, pinned CLI) run against our local Anthropic server, led by this test process
// while VS Code follows: one works on TASK-001 and is held in its `npm test` by a gate file; the
// other meets a usage limit on TASK-002 and is paused. The Agents tree shows the first one's current
// step and cost so far and the second one's "paused until HH:MM"; once TASK-001 is merged, the
// metrics panel shows what it cost; the status bar counts the paused agent and its tooltip says when
// it resumes; the merged task's tooltip in the Tasks tree says what it spent. Screenshots:
// test-artifacts/vscode/ui-agents-live.png, ui-status-paused.png, ui-task-cost.png, ui-metrics-cost.png.
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { repoRoot, withVsCode } from '../../../scripts/testHost/vscodeHost';
import { createMonitor } from '../../../src/cli/runtime';
import type { Monitor } from '../../../src/engine/monitor/monitor';
import { Pipeline } from '../../../src/engine/pipeline';
import { agentCliBinDir, agentCliPath } from '../../support/agentCliKit';
import { startAnthropicServer } from '../../support/modelServers/anthropicServer';
import type { ModelAction } from '../../support/modelServers/scriptedModel';
import { stageModel } from '../../support/modelServers/stageModel';
import { until } from '../../support/waiting';
import { sandbox, SCRIPTED_AGENT, type Sandbox } from '../../engine/monitor/monitorKit';
import { runFromCommandPalette, waitForWorkbench } from './commandPalette';
import {
  activityBarIcon,
  clearNotifications,
  screenshot,
  sideBarView,
  statusBarItem,
  treeRows,
  webviewContent,
} from './workbench';

void test('the Agents tree shows an agent at work with its step and cost, a paused agent, and the metrics panel the cost', async (t) => {
  agentCliPath('claude'); // fails with the install command when the CLI is missing
  const resetAt = Date.now() + 2 * 3_600_000;
  const limit: ModelAction = {
    kind: 'error',
    status: 429,
    headers: { 'x-should-retry': 'false', 'retry-after': '7200' },
    body: {
      type: 'error',
      error: {
        type: 'rate_limit_error',
        message: `Usage limit reached for this organization. Limit resets at ${new Date(resetAt).toISOString()}.`,
      },
    },
  };
  const stage = stageModel({
    testCommand: 'npm test',
    usage: { input: 1500, output: 60, cacheRead: 400, cacheWrite: 200 },
  });
  // TASK-002's agent meets the limit at its first request; TASK-001's works normally.
  const server = await startAnthropicServer((turn) =>
    turn.prompt.includes('TASK-002') ? { action: limit } : stage(turn),
  );
  const home = await mkdtemp(join(tmpdir(), 'ui-agents-live-home-'));
  const gate = join(home, 'gate');
  let sb: Sandbox | undefined;
  let p: Pipeline | undefined;
  let monitor: Monitor | undefined;
  const env = { ...process.env };
  try {
    sb = await sandbox({
      tasks: [
        { id: 'TASK-001', title: 'Add a greeting', description: 'Add `greet(name)` and its tests.' },
        { id: 'TASK-002', title: 'Add a farewell', description: 'Add `bye(name)` and its tests.' },
      ],
      agents: [
        ['claude-1', 'tester', 'claude'],
        ['claude-2', 'tester', 'claude'],
      ],
      config: {
        stages: [{ name: 'test', role: 'tester' }],
        reworkStage: 'test',
        conflictStages: ['test'],
        prices: { '*': { inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3, cacheWritePerMTok: 3.75 } },
      },
      files: {
        'README.md': '# Demo\n',
        'package.json': `${JSON.stringify({ name: 'demo', private: true, scripts: { test: 'node test/run.js' } }, null, 2)}\n`,
        'test/run.js': `const fs = require('fs');\n(function wait() {\n  if (fs.existsSync(${JSON.stringify(gate)})) console.log('demo tests: 3 passed');\n  else setTimeout(wait, 50);\n})();\n`,
      },
    });
    const dir = sb.dir;
    await withVsCode(
      { name: 'ui-agents-live', workspace: dir, extensionDevelopmentPath: repoRoot },
      async ({ page }) => {
        await waitForWorkbench(page);
        // The agents inherit this process's environment: our server, a fake key, the pinned CLI first
        // on PATH, a HOME of the test's own (set after VS Code started, which keeps its own).
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
        const leader = await Pipeline.open({ cwd: dir, role: 'lead', label: 'ui test leader' });
        p = leader;
        monitor = await createMonitor(leader, 'process', { scriptedAgent: SCRIPTED_AGENT });
        await monitor.start();
        // The leader's own view first: one agent in its test run, the other paused by the limit.
        const working = await until('an agent running npm test and the other one paused', 180_000, () => {
          const agents = Object.values(leader.state.agents);
          const atWork = agents.find((a) => leader.progress.get(a.id)?.step === 'Bash: npm test');
          const paused = agents.find((a) => a.status === 'paused');
          return atWork && paused ? { atWork: atWork.id, paused: paused.id } : undefined;
        });
        t.diagnostic(`${working.atWork} at work, ${working.paused} paused`);

        await activityBarIcon(page, 'Agent Pipeline').click();
        const agents = sideBarView(page, 'Agents');
        const busy = treeRows(agents, working.atWork);
        await busy.filter({ hasText: 'Bash: npm test' }).waitFor({ timeout: 30_000 });
        assert.match(await busy.innerText(), /tester · working · TASK-00\d · \d+[sm]\S* · Bash: npm test · \$0\.\d{4}/);
        const parked = treeRows(agents, working.paused);
        await parked.filter({ hasText: 'paused until' }).waitFor({ timeout: 30_000 });
        // A reset later than midnight carries its date ("Dec 2 00:22").
        assert.match(await parked.innerText(), /tester · paused until (?:[A-Z][a-z]{2} \d{1,2} )?\d\d:\d\d/);
        // Its task is back in its queue, and the Tasks tree says why it waits.
        const requeued = treeRows(sideBarView(page, 'Tasks'), 'TASK-002');
        await requeued.filter({ hasText: 'paused by a usage limit' }).waitFor({ timeout: 30_000 });
        // The side bar is narrow by default; widened, the step and the cost fit beside the name.
        const bar = await page.locator('.part.sidebar').boundingBox();
        if (bar) {
          const x = bar.x + bar.width - 1;
          const y = bar.y + bar.height / 2;
          await page.mouse.move(x, y);
          await page.mouse.down();
          await page.mouse.move(x + 320, y, { steps: 8 });
          await page.mouse.up();
          // Away from the sash and the view's title bar, whose hovers would cover the trees.
          await page.mouse.move(bar.x + bar.width + 400, bar.y + bar.height - 40);
        }
        await busy.filter({ hasText: 'Bash: npm test' }).waitFor();
        t.diagnostic(`screenshot: ${await screenshot(page, 'ui-agents-live')}`);

        // The status bar counts the paused agent; its tooltip says when it resumes and why.
        const status = statusBarItem(page);
        await status.filter({ hasText: '1 paused' }).waitFor({ timeout: 30_000 });
        // Each icon is an element of its own, which innerText puts on a line of its own.
        assert.match((await status.innerText()).replace(/\s+/g, ' '), /1\/2 busy · 1 paused · \d+ waiting/);
        await status.hover();
        const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'paused until' }).first();
        await hover.waitFor({ timeout: 30_000 });
        assert.match(
          await hover.innerText(),
          new RegExp(`${working.paused} paused until (?:[A-Z][a-z]{2} \\d{1,2} )?\\d\\d:\\d\\d: .*(429|limit)`, 'i'),
        );
        t.diagnostic(`screenshot: ${await screenshot(page, 'ui-status-paused')}`);
        await page.mouse.move(bar ? bar.x + bar.width + 400 : 600, bar ? bar.y + 40 : 200);
        await hover.waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);

        // The agent at work finishes; its attempt's cost is recorded and the panel shows it.
        await writeFile(gate, '');
        // Its spending is recorded once its command has ended, which may be just after the merge.
        await until(
          'TASK-001 merged and its spending recorded',
          180_000,
          () =>
            (leader.state.tasks['TASK-001']?.status === 'done' && leader.state.tasks['TASK-001'].usage) || undefined,
        );
        const cost = leader.state.tasks['TASK-001']!.usage!.costUsd;
        assert.ok(cost > 0, 'the attempt had a cost');

        // The merged task's tooltip in the Tasks tree says what it spent (the Done group opened first).
        // A redraw of the tree closes a hover: first the state settles, which it does once the other
        // agent, free again, has met the same limit on TASK-002 (both paused for two hours).
        await until('both agents paused', 180_000, () =>
          Object.values(leader.state.agents).every((a) => a.status === 'paused') ? true : undefined,
        );
        const tasks = sideBarView(page, 'Tasks');
        const doneGroup = treeRows(tasks, 'Done');
        await doneGroup.waitFor({ timeout: 30_000 });
        if ((await doneGroup.getAttribute('aria-expanded')) !== 'true') await doneGroup.click();
        const merged = treeRows(tasks, 'TASK-001').first();
        const spent = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'spent' }).first();
        const tooltipText = await until('the tooltip of TASK-001 with its spending', 60_000, async () => {
          await page.mouse.move(0, 0);
          await merged.hover();
          await spent.waitFor({ timeout: 5_000 }).catch(() => undefined);
          return spent.innerText({ timeout: 1_000 }).catch(() => undefined);
        });
        assert.match(tooltipText, /spent \$0\.\d{4} over 1 attempt \(\d/);
        t.diagnostic(`screenshot: ${await screenshot(page, 'ui-task-cost')}`);
        await page.mouse.move(bar ? bar.x + bar.width + 400 : 600, bar ? bar.y + bar.height - 40 : 400);
        await spent.waitFor({ state: 'hidden', timeout: 10_000 }).catch(() => undefined);
        await clearNotifications(page);
        await runFromCommandPalette(page, 'Agent Pipeline: Show Metrics');
        const content = webviewContent(page);
        const header = content.locator('header');
        await header.filter({ hasText: 'Total cost' }).waitFor({ timeout: 30_000 });
        await until('the panel to show the recorded cost', 30_000, async () =>
          /Total cost\s*\$0\.\d{4}/.test(await header.innerText()) &&
          !/Total cost\s*\$0\.0000/.test(await header.innerText())
            ? true
            : undefined,
        );
        assert.match(await content.locator('.cost').innerText(), /test\s+\$0\.\d{4}/);
        // The pointer off the workbench's buttons, so no hover covers the figures.
        await page.mouse.move(bar ? bar.x + bar.width + 700 : 900, bar ? bar.y + bar.height - 20 : 700);
        await until('no hover over the panel', 30_000, async () =>
          (await page
            .locator('.monaco-hover:visible, .workbench-hover:visible, .monaco-hover-content:visible')
            .count()) === 0
            ? true
            : undefined,
        );
        t.diagnostic(`screenshot: ${await screenshot(page, 'ui-metrics-cost')}`);
      },
    );
  } finally {
    await writeFile(gate, '').catch(() => undefined);
    await monitor?.stop().catch(() => undefined);
    await p?.close().catch(() => undefined);
    for (const k of Object.keys(process.env)) if (!(k in env)) delete process.env[k];
    Object.assign(process.env, env);
    await server.close();
    await sb?.cleanup();
    await rm(home, { recursive: true, force: true });
  }
});
