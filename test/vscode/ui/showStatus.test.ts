// UI test: a person opens the command palette, runs "Agent Pipeline: Show Pipeline Status" and sees
// a notification. Screenshot: test-artifacts/vscode/ui-show-status.png.
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createTestWorkspace } from '../../../scripts/testHost/testWorkspace';
import { artifactsDir, repoRoot, withVsCode } from '../../../scripts/testHost/vscodeHost';
import { runFromCommandPalette, waitForWorkbench } from './commandPalette';

void test('"Agent Pipeline: Show Pipeline Status" from the command palette shows a notification', async (t) => {
  const workspace = await createTestWorkspace();
  try {
    await withVsCode({ name: 'ui-show-status', workspace: workspace.path, extensionDevelopmentPath: repoRoot }, async ({ page }) => {
      try {
        await waitForWorkbench(page);
        await runFromCommandPalette(page, 'Agent Pipeline: Show Pipeline Status');
        const toast = page.locator('.notifications-toasts .notification-toast').first();
        await toast.waitFor({ state: 'visible', timeout: 30_000 });
        const message = await toast.locator('.notification-list-item-message').innerText();
        t.diagnostic(`notification: ${message}`);
        assert.match(message, /pipeline/i);
        const screenshot = join(artifactsDir, 'ui-show-status.png');
        await page.screenshot({ path: screenshot, animations: 'disabled' });
        t.diagnostic(`screenshot: ${screenshot}`);
      } catch (err) {
        await page.screenshot({ path: join(artifactsDir, 'ui-show-status-failure.png') }).catch(() => undefined);
        throw err;
      }
    });
  } finally {
    await workspace.dispose();
  }
});
