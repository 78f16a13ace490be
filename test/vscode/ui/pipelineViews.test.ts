// UI test: what a person sees of a pipeline in VS Code. The workspace has four scripted agents and
// two tasks (one the prerequisite of the other) before VS Code opens. The steps share one window and
// run in order: the activity-bar container and its two views, a task expanded to its prerequisite,
// the status bar, Show Pipeline Status, Add Task answered question by question (title, description,
// priority, labels, paths, prerequisites), a run started from the Tasks view's title bar to every
// task merged, and the metrics panel in the dark and the light theme. Screenshots: test-artifacts/vscode/ui-*.png.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestWorkspace } from '../../../scripts/testHost/testWorkspace';
import { repoRoot, withVsCode } from '../../../scripts/testHost/vscodeHost';
import { runFromCommandPalette, waitForWorkbench } from './commandPalette';
import {
  activityBarIcon,
  clearNotifications,
  notificationToasts,
  quickInput,
  screenshot,
  sideBarView,
  statusBarItem,
  switchColorTheme,
  treeRows,
  webviewContent,
} from './workbench';

const AGENTS = [
  { id: 'architect', role: 'architect' },
  { id: 'tester', role: 'tester' },
  { id: 'implementer', role: 'implementer' },
  { id: 'supervisor', role: 'supervisor' },
];

void test('the Agent Pipeline views, palette commands, a run and the metrics panel, as a person sees them', async (t) => {
  const workspace = await createTestWorkspace({
    agents: AGENTS,
    tasks: [
      { id: 'TASK-001', title: 'Core module layout', paths: ['src/core/**'], description: 'Lay out the core module.' },
      {
        id: 'TASK-002',
        title: 'Input parser',
        prerequisites: ['TASK-001'],
        paths: ['src/parser/**'],
        description: 'Parse the input.',
      },
    ],
  });
  try {
    await withVsCode(
      { name: 'ui-pipeline', workspace: workspace.open, extensionDevelopmentPath: repoRoot },
      async ({ page }) => {
        const tasks = sideBarView(page, 'Tasks');
        const agents = sideBarView(page, 'Agents');
        const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
          await t.test(name, async () => {
            try {
              await fn();
            } catch (err) {
              await screenshot(
                page,
                `ui-failure-${name
                  .replace(/[^a-z0-9]+/gi, '-')
                  .toLowerCase()
                  .slice(0, 60)}`,
              ).catch(() => undefined);
              throw err;
            }
          });
        };

        await step('the activity-bar container shows the Tasks and Agents views', async () => {
          await waitForWorkbench(page);
          await switchColorTheme(page, 'Dark Modern', 'vs-dark');
          await activityBarIcon(page, 'Agent Pipeline').click({ timeout: 30_000 });
          await tasks.waitFor({ timeout: 30_000 });
          await agents.waitFor();
          // Tasks come once the extension has activated and opened the engine.
          await treeRows(tasks, 'TASK-001 Core module layout, pending').waitFor({ timeout: 30_000 });
          assert.equal(await treeRows(tasks, 'Ready to start').getAttribute('aria-expanded'), 'true');
          assert.equal(await treeRows(tasks, 'Waiting for prerequisites').getAttribute('aria-expanded'), 'true');
          await treeRows(agents, 'tester: tester, idle').waitFor({ timeout: 10_000 });
          assert.equal(await agents.locator('.monaco-list-row').count(), 4);
        });

        await step('a task group collapses and expands; a task expands to its prerequisites', async () => {
          const group = treeRows(tasks, 'Ready to start');
          await group.click();
          await page.waitForFunction(
            'document.querySelector(\'.monaco-list-row[aria-label^="Ready to start"]\')?.getAttribute("aria-expanded") === "false"',
          );
          assert.equal(await treeRows(tasks, 'TASK-001').count(), 0, 'TASK-001 is hidden in the collapsed group');
          await group.click();
          await treeRows(tasks, 'TASK-001').first().waitFor();
          const parser = treeRows(tasks, 'TASK-002 Input parser, pending');
          assert.equal(await parser.getAttribute('aria-expanded'), 'false');
          await parser.click();
          // The prerequisite shows under it, at the next level.
          const rows = treeRows(tasks, 'TASK-001 Core module layout');
          await rows.nth(1).waitFor();
          assert.match(await rows.nth(1).innerText(), /prerequisite · pending/);
          assert.equal(await rows.nth(1).getAttribute('aria-level'), '3');
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-tasks-tree')}`);
        });

        await step('the status bar shows the modes, the agents and the waiting tasks', async () => {
          const item = statusBarItem(page);
          await item.waitFor();
          assert.equal((await item.innerText()).trim(), 'parallel · production · 0/4 busy · 2 waiting');
          assert.match((await item.getAttribute('aria-label')) ?? '', /Agent Pipeline: stopped/);
        });

        await step('"Show Pipeline Status" from the palette opens a quick pick with the status line', async () => {
          await runFromCommandPalette(page, 'Agent Pipeline: Show Pipeline Status');
          const q = quickInput(page);
          const status = q.rows.filter({ hasText: 'parallel · production · 2 tasks' }).first();
          await status.waitFor({ timeout: 15_000 });
          assert.match(
            await status.innerText(),
            /parallel · production · 2 tasks: 0 working, 2 waiting, 0 blocked, 0 done/,
          );
          await q.rows.filter({ hasText: 'Start Pipeline' }).first().waitFor();
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-show-status')}`);
          await page.keyboard.press('Escape');
          await q.input.waitFor({ state: 'hidden' });
        });

        await step('"Add Task" asks title, description, priority, labels, paths and prerequisites', async () => {
          await runFromCommandPalette(page, 'Agent Pipeline: Add Task');
          const q = quickInput(page);
          await q.title.filter({ hasText: 'Add Task (1/6)' }).waitFor({ timeout: 15_000 });
          // An empty title is refused with a message.
          await page.keyboard.press('Enter');
          await q.message.filter({ hasText: 'A title is required.' }).waitFor();
          await page.keyboard.type('Output formatter');
          await page.waitForFunction(
            '!document.querySelector(".quick-input-message")?.textContent?.includes("A title is required.")',
          );
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-add-task')}`);
          await page.keyboard.press('Enter');
          await q.title.filter({ hasText: 'Add Task (2/6)' }).waitFor();
          await page.keyboard.type('Format the results for the terminal.');
          await page.keyboard.press('Enter');
          // Priority: a pick of the four, medium preselected; typing narrows it to high.
          await q.title.filter({ hasText: 'Add Task (3/6)' }).waitFor();
          await q.rows.filter({ hasText: 'critical' }).waitFor();
          assert.equal(await q.rows.count(), 4);
          await page.keyboard.type('high');
          await q.rows.first().filter({ hasText: 'high' }).waitFor();
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-add-task-priority')}`);
          await page.keyboard.press('Enter');
          // Labels: a label that is not a name is refused before the next question.
          await q.title.filter({ hasText: 'Add Task (4/6)' }).waitFor();
          await page.keyboard.type('pilot, Back End');
          await q.message.filter({ hasText: '"Back End": labels are lower-case letters' }).waitFor();
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-add-task-labels')}`);
          for (let i = 0; i < 'Back End'.length; i++) await page.keyboard.press('Backspace');
          await page.keyboard.type('backend');
          await page.waitForFunction(
            '!document.querySelector(".quick-input-message")?.textContent?.includes("labels are lower-case")',
          );
          await page.keyboard.press('Enter');
          await q.title.filter({ hasText: 'Add Task (5/6)' }).waitFor();
          await page.keyboard.type('src/format/**');
          await page.keyboard.press('Enter');
          // Prerequisites: a multi-select of the existing tasks; TASK-002 is ticked.
          await q.title.filter({ hasText: 'Add Task (6/6)' }).waitFor();
          const parser = q.rows.filter({ hasText: 'TASK-002' });
          await parser.waitFor();
          // Clicking a row of a multi-select ticks it.
          await parser.click();
          await q.rows.filter({ hasText: 'TASK-002' }).and(page.locator('[aria-checked="true"]')).waitFor();
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-add-task-prerequisites')}`);
          await page.keyboard.press('Enter');
          await notificationToasts(page)
            .filter({ hasText: 'Added TASK-003: Output formatter' })
            .waitFor({ timeout: 15_000 });
          // It waits for TASK-002, beside it.
          await treeRows(tasks, 'TASK-003 Output formatter, pending').waitFor({ timeout: 10_000 });
          assert.match(await treeRows(tasks, 'Waiting for prerequisites').innerText(), /Waiting for prerequisites\s*2/);
          assert.equal((await statusBarItem(page).innerText()).trim(), 'parallel · production · 0/4 busy · 3 waiting');
        });

        await step('"Start Pipeline" in the Tasks title bar runs every task to Done', async () => {
          await tasks.hover();
          await tasks.locator('.actions a.action-label[aria-label="Start Pipeline"]').click();
          const done = treeRows(tasks, 'Done 3');
          await done.waitFor({ timeout: 90_000 });
          assert.equal(
            await tasks.locator('.monaco-list-row[aria-level="1"]').count(),
            1,
            'Done is the only group left',
          );
          assert.equal(await done.getAttribute('aria-expanded'), 'false', 'Done starts collapsed');
          await done.click();
          const parser = treeRows(tasks, 'TASK-002 Input parser, done');
          await parser.waitFor();
          await parser.click();
          await treeRows(tasks, 'TASK-001 Core module layout, done').nth(1).waitFor();
          assert.match(
            await treeRows(tasks, 'TASK-001 Core module layout, done').nth(1).innerText(),
            /prerequisite · done/,
          );
          await page.waitForFunction(
            'document.getElementById("agent-pipeline.agent-pipeline.agentPipeline.status")?.innerText.trim() === "parallel · production · 0/4 busy · 0 waiting"',
          );
          // The running pipeline offers Stop, no longer Start.
          await tasks.hover();
          await tasks.locator('.actions a.action-label[aria-label="Stop Pipeline"]').waitFor();
          await notificationToasts(page)
            .filter({ hasText: /TASK-00\d \(.*\) merged/ })
            .first()
            .waitFor();
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-run-done')}`);
        });

        await step('the metrics panel draws its charts, in the dark theme', async () => {
          await clearNotifications(page);
          await runFromCommandPalette(page, 'Agent Pipeline: Show Metrics');
          await page.locator('.tabs-container .tab[aria-label^="Pipeline Metrics"]').waitFor({ timeout: 15_000 });
          const content = webviewContent(page);
          await content.locator('.uplot').nth(4).waitFor({ timeout: 30_000 });
          assert.equal(await content.locator('.uplot').count(), 5);
          assert.match(await content.locator('header').innerText(), /Tasks done\s*3 \/ 3/);
          assert.match(await content.locator('.inflight').innerText(), /Nothing in flight/);
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-metrics-dark')}`);
        });

        await step('the metrics panel follows the switch to the light theme', async () => {
          const content = webviewContent(page);
          await switchColorTheme(page, 'Light Modern', 'vs');
          await content.locator('body.vscode-light').waitFor({ timeout: 15_000 });
          await content.locator('.uplot').nth(4).waitFor();
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-metrics-light')}`);
        });
      },
    );
  } finally {
    await workspace.dispose();
  }
});
