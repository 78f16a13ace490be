// Small Playwright helpers for driving VS Code's workbench in UI tests.
import type { Locator, Page } from 'playwright-core';

/**
 * Waits until the workbench has rendered its parts and applied its color theme. The theme comes a
 * few seconds after the first paint (it is contributed by a built-in extension); until then the
 * window is drawn in fallback colors, and a screenshot would show those.
 */
export async function waitForWorkbench(page: Page, timeoutMs = 60_000): Promise<void> {
  await page
    .locator('.monaco-workbench[class*="vscode-theme-"] .part.statusbar')
    .waitFor({ state: 'visible', timeout: timeoutMs });
}

/**
 * Opens the command palette with F1. Keybindings are registered a moment after the workbench
 * renders, so a press that went unheard is repeated until the deadline.
 */
export async function openCommandPalette(page: Page, timeoutMs = 30_000): Promise<Locator> {
  const input = page.locator('.quick-input-widget .quick-input-box input');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ state: 'visible', timeout: 2000 });
      return input;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
  }
}

/**
 * Runs a command by its palette label ("Category: Title"), as a person would. A development
 * extension's commands appear a few seconds after the workbench, once the extension host has read
 * its manifest, so the palette is reopened until the command is listed or the deadline passes.
 */
export async function runFromCommandPalette(page: Page, label: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const input = await openCommandPalette(page);
    // F1 starts the palette with '>', which filling replaces.
    await input.fill(`>${label}`);
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: 2000 });
      await row.click();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`command "${label}" never appeared in the command palette`, { cause: err });
      await page.keyboard.press('Escape');
    }
  }
}
