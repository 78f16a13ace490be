// UI test: a person as the supervisor stage, as that person sees it. The workspace's supervisor stage
// has the role human; scripted agents play the architect, the tester and the implementer, and there is
// one task. Started from the Tasks view, the task runs to the supervisor stage and waits there: its
// row says "awaiting your review" and a notification offers Review, which opens the task's changes in
// the multi-file diff editor with Approve and Request Changes in its title bar. Request Changes asks
// for the text and sends the task back to the implementer; when it is back, Approve merges it.
// Screenshots: test-artifacts/vscode/ui-review-*.png.
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { DEFAULT_STAGES } from '../../../src/engine/model/configSchema';
import { type Task } from '../../../src/engine/model/schema';
import { createTestWorkspace } from '../../../scripts/testHost/testWorkspace';
import { repoRoot, withVsCode } from '../../../scripts/testHost/vscodeHost';
import { waitForWorkbench } from './commandPalette';
import {
  activityBarIcon,
  notificationToasts,
  quickInput,
  screenshot,
  sideBarView,
  switchColorTheme,
  treeRows,
} from './workbench';

const run = promisify(execFile);

/** TASK-001 as the engine has it, read through the CLI (a reader beside the window that leads). */
async function engineTask(cwd: string): Promise<Task> {
  const { stdout } = await run(
    process.execPath,
    [join(repoRoot, 'dist', 'cli.js'), 'task', 'show', 'TASK-001', '--json'],
    {
      cwd,
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout) as Task;
}

/** Polls `check` until it holds; the deadline only turns a hang into a failure that says what. */
async function until(what: string, check: () => Promise<boolean>, ms = 180_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function reviewTab(page: Page) {
  return page.locator('.tabs-container .tab[aria-label^="Review TASK-001: Greeting"]');
}

function editorAction(page: Page, label: string) {
  return page.locator(`.editor-actions a.action-label[aria-label^="${label}"]`);
}

void test('a person reviews a task at the human stage: the tree, the notification, the review editor, its answers', async (t) => {
  const workspace = await createTestWorkspace({
    stages: DEFAULT_STAGES.map((s) => (s.name === 'supervisor' ? { name: 'supervisor', role: 'human' } : s)),
    agents: ['architect', 'tester', 'implementer'].map((role) => ({ id: role, role })),
    tasks: [{ id: 'TASK-001', title: 'Greeting', paths: ['src/**'], description: 'Say hello.' }],
  });
  try {
    await withVsCode(
      { name: 'ui-review', workspace: workspace.open, extensionDevelopmentPath: repoRoot },
      async ({ page }) => {
        const tasks = sideBarView(page, 'Tasks');
        const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
          await t.test(name, async () => {
            try {
              await fn();
            } catch (err) {
              const file = `ui-failure-${name
                .replace(/[^a-z0-9]+/gi, '-')
                .toLowerCase()
                .slice(0, 60)}`;
              await screenshot(page, file).catch(() => undefined);
              throw err;
            }
          });
        };

        await step('started from the Tasks view, the task comes to the human stage and awaits review', async () => {
          await waitForWorkbench(page);
          await switchColorTheme(page, 'Dark Modern', 'vs-dark');
          await activityBarIcon(page, 'Agent Pipeline').click({ timeout: 30_000 });
          await treeRows(tasks, 'TASK-001 Greeting, pending').waitFor({ timeout: 30_000 });
          await tasks.hover();
          await tasks.locator('.actions a.action-label[aria-label="Start Pipeline"]').click();
          await treeRows(tasks, 'Supervisor (human)').waitFor({ timeout: 180_000 });
          await treeRows(tasks, 'TASK-001 Greeting, awaiting your review').waitFor();
          const toast = notificationToasts(page).filter({ hasText: 'TASK-001 awaits your review: Greeting' });
          await toast.waitFor({ timeout: 30_000 });
          await toast.getByRole('button', { name: 'Review' }).waitFor();
          const task = await engineTask(workspace.path);
          assert.equal(task.status, 'queued');
          assert.equal(task.stage, 'supervisor');
          assert.equal(task.assigned_to, null, 'no agent took the human stage');
          // Away from the title bar's buttons, so that no tooltip covers the tree.
          await page.mouse.move(800, 400);
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-review-awaiting')}`);
        });

        await step("the notification's Review opens the changes with Approve and Request Changes", async () => {
          await notificationToasts(page)
            .filter({ hasText: 'TASK-001 awaits your review: Greeting' })
            .getByRole('button', { name: 'Review' })
            .click();
          await reviewTab(page).waitFor({ timeout: 30_000 });
          // The multi-file diff editor lists the files the agents changed, each with its two sides.
          const { stdout } = await run('git', ['diff', '--name-only', 'main...pipeline/TASK-001'], {
            cwd: workspace.path,
          });
          const files = stdout.split('\n').filter(Boolean);
          assert.ok(files.length > 0, 'the agents changed files');
          for (const f of files) {
            const name = f.split('/').at(-1)!;
            await page
              .locator('.multiDiffEditor')
              .getByText(name, { exact: true })
              .first()
              .waitFor({ timeout: 15_000 });
          }
          await editorAction(page, 'Approve').waitFor();
          await editorAction(page, 'Request Changes').waitFor();
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-review-diff')}`);
        });

        await step('Request Changes asks what to change and sends the task back to the implementer', async () => {
          const before = await engineTask(workspace.path);
          const implementations = (x: Task) =>
            x.history.filter((h) => h.event === 'assign' && h.stage === 'implementation').length;
          await editorAction(page, 'Request Changes').click();
          const q = quickInput(page);
          await q.title.filter({ hasText: 'Request Changes to TASK-001' }).waitFor({ timeout: 15_000 });
          await page.keyboard.type('Greet by name.');
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-review-request-changes')}`);
          await page.keyboard.press('Enter');
          await reviewTab(page).waitFor({ state: 'hidden', timeout: 15_000 });
          // The implementer takes it again, and it comes back to the person.
          let task = before;
          await until('TASK-001 to be reworked and await review again', async () => {
            task = await engineTask(workspace.path);
            return (
              implementations(task) > implementations(before) && task.status === 'queued' && task.stage === 'supervisor'
            );
          });
          assert.ok(
            task.history.some((h) => h.event === 'changes_requested' && h.note === 'Greet by name.'),
            'the request is in the history',
          );
          await treeRows(tasks, 'TASK-001 Greeting, awaiting your review').waitFor({ timeout: 30_000 });
        });

        await step('Approve in the review merges the task', async () => {
          // The row's own Review button this time.
          const row = treeRows(tasks, 'TASK-001 Greeting, awaiting your review');
          await row.hover();
          await row.locator('a.action-label[aria-label^="Review Task"]').click();
          await reviewTab(page).waitFor({ timeout: 30_000 });
          await editorAction(page, 'Approve').click();
          await reviewTab(page).waitFor({ state: 'hidden', timeout: 15_000 });
          await treeRows(tasks, 'Done 1').waitFor({ timeout: 60_000 });
          const task = await engineTask(workspace.path);
          assert.equal(task.status, 'done');
          const { stdout } = await run('git', ['rev-parse', 'main'], { cwd: workspace.path });
          assert.equal(stdout.trim(), task.merged_commit);
          t.diagnostic(`screenshot: ${await screenshot(page, 'ui-review-approved')}`);
        });
      },
    );
  } finally {
    await workspace.dispose();
  }
});
