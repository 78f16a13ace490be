// Playwright helpers for the parts of VS Code's workbench the UI tests look at: the activity bar, the
// views and their trees, the status bar, quick inputs, notifications and webviews. The selectors are
// VS Code 1.100's; each helper names what it waited for when it times out.
import { join } from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';
import { artifactsDir } from '../../../scripts/testHost/vscodeHost';
import { runFromCommandPalette } from './commandPalette';

/** The id VS Code gives the status bar item: `<extension id>.<item id>`. */
const STATUS_ITEM = 'agent-pipeline.agent-pipeline.agentPipeline.status';

export function activityBarIcon(page: Page, title: string): Locator {
  return page.locator(`.activitybar a.action-label[aria-label="${title}"]`);
}

/** A view of the side bar, by its name ("Tasks"). */
export function sideBarView(page: Page, name: string): Locator {
  return page.locator('.part.sidebar .pane', { has: page.locator(`.pane-header[aria-label="${name} Section"]`) });
}

/** Rows of a view's tree whose accessible label starts with `label`. */
export function treeRows(view: Locator, label: string): Locator {
  return view.locator(`.monaco-list-row[aria-label^="${label}"]`);
}

export function statusBarItem(page: Page): Locator {
  return page.locator(`[id="${STATUS_ITEM}"]`);
}

export function quickInput(page: Page): { title: Locator; input: Locator; rows: Locator; message: Locator } {
  const widget = page.locator('.quick-input-widget');
  return {
    title: widget.locator('.quick-input-title'),
    input: widget.locator('.quick-input-box input'),
    rows: widget.locator('.quick-input-list .monaco-list-row'),
    message: widget.locator('.quick-input-message'),
  };
}

export function notificationToasts(page: Page): Locator {
  return page.locator('.notifications-toasts .notification-toast');
}

/** Clears every notification, so that none covers what a screenshot is for. */
export async function clearNotifications(page: Page): Promise<void> {
  await runFromCommandPalette(page, 'Notifications: Clear All Notifications');
  await notificationToasts(page).first().waitFor({ state: 'hidden', timeout: 10_000 });
}

/**
 * The document inside the (only) webview: VS Code puts each webview in an iframe, whose page loads
 * the extension's HTML into an inner iframe, `#active-frame`.
 */
export function webviewContent(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
}

/**
 * Switches the color theme through the theme picker, as a person would, and waits for the workbench
 * to wear it (`kind` is the workbench's class: `vs-dark` or `vs`). The web workbench of this VS Code
 * ignores `workbench.colorTheme` in the user settings the launcher writes (other settings apply),
 * so this is how a test gets a dark or a light window.
 */
export async function switchColorTheme(page: Page, theme: string, kind: 'vs-dark' | 'vs'): Promise<void> {
  await runFromCommandPalette(page, 'Preferences: Color Theme');
  const q = quickInput(page);
  await q.input.fill(theme);
  await q.rows.filter({ hasText: theme }).first().click();
  await page.locator(`.monaco-workbench.${kind}`).waitFor({ timeout: 15_000 });
  await q.input.waitFor({ state: 'hidden' });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, animations: 'disabled' });
  return path;
}
