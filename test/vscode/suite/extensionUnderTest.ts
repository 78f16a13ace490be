// Finding the extension under test, its API, and driving VS Code's UI from inside the extension host,
// shared by the in-host tests. Every wait here has a time limit.
import * as vscode from 'vscode';
import type { Pipeline } from '../../../src/engine/pipeline';
import type { AgentPipelineApi } from '../../../src/extension';

/** `publisher.name` from package.json. */
export const EXTENSION_ID = 'agent-pipeline.agent-pipeline';

export function extensionUnderTest(): vscode.Extension<AgentPipelineApi> {
  const extension = vscode.extensions.getExtension<AgentPipelineApi>(EXTENSION_ID);
  if (!extension) throw new Error(`extension ${EXTENSION_ID} is not loaded`);
  return extension;
}

/** The API that `activate()` returned, once the start-up after activation is over. */
export async function pipelineApi(): Promise<AgentPipelineApi> {
  const api = await extensionUnderTest().activate();
  await waitFor(() => api.ready.then(() => true), 'the extension to finish starting up (api.ready)');
  return api;
}

/** The open engine; the workspace has a pipeline, so the session opens it during start-up. */
export async function openPipeline(): Promise<Pipeline> {
  const api = await pipelineApi();
  return api.session.open();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Deadlines here only turn a hang into a failure that names what did not happen: each is stretched
 * by this factor so a busy 2-core machine never meets one while the workbench still moves.
 */
const PATIENCE = Number(process.env.TEST_PATIENCE ?? '') || 3;

/**
 * Polls until `condition` holds (a pending promise counts as not yet), and fails naming `what`
 * after `timeoutMs`. The harness's per-test limit is the outer bound.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 15_000,
): Promise<void> {
  const limitMs = timeoutMs * PATIENCE;
  const deadline = Date.now() + limitMs;
  for (;;) {
    const result = condition();
    const ok = typeof result === 'boolean' ? result : await Promise.race([result, delay(50).then(() => false)]);
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${limitMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await delay(50);
  }
}

/** Resolves or rejects like `promise`, or rejects naming `what` after `timeoutMs`. */
export async function within<T>(promise: Thenable<T>, what: string, timeoutMs = 15_000): Promise<T> {
  const limitMs = timeoutMs * PATIENCE;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${limitMs} ms waiting for ${what}`)), limitMs);
  });
  try {
    return await Promise.race([Promise.resolve(promise), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const QUICK_INPUT_ACTIONS = {
  /** Accepts the active item of a quick pick, or the value of an input box. */
  accept: 'workbench.action.acceptSelectedQuickOpenItem',
  /** Closes the quick pick or input box, which the command sees as a cancel. */
  close: 'workbench.action.closeQuickOpen',
  /** Clears the notifications, which settles the promise of a non-modal message with actions. */
  dismissNotifications: 'notifications.clearAll',
} as const;

/**
 * Runs a command that asks through quick picks, input boxes or notifications, and answers each
 * question the same way until the command settles: `accept` takes the proposed answer (the first
 * item, the prefilled value), `close` cancels. A question that has not appeared yet makes the
 * action a no-op, so it is repeated until the command's promise settles or the time is up.
 */
export async function runAnswering<T>(
  command: string,
  args: unknown[],
  answer: keyof typeof QUICK_INPUT_ACTIONS,
  timeoutMs = 15_000,
): Promise<T | undefined> {
  let settled = false;
  const result = Promise.resolve(vscode.commands.executeCommand<T>(command, ...args)).finally(() => (settled = true));
  const deadline = Date.now() + timeoutMs;
  while (!settled) {
    if (Date.now() > deadline) {
      await vscode.commands.executeCommand(QUICK_INPUT_ACTIONS.close);
      throw new Error(
        `${command} did not finish within ${timeoutMs} ms while its questions were answered with "${answer}"`,
      );
    }
    await Promise.race([
      result.then(
        () => undefined,
        () => undefined,
      ),
      delay(150),
    ]);
    if (!settled) await vscode.commands.executeCommand(QUICK_INPUT_ACTIONS[answer]);
  }
  return result;
}

type WindowFunctions = {
  [
    K in keyof typeof vscode.window as (typeof vscode.window)[K] extends (...args: never[]) => unknown ? K : never
  ]: (typeof vscode.window)[K];
};

/**
 * Replaces functions of `vscode.window` while `fn` runs. The extension host gives a test module that
 * lives in the extension's folder the same API object as the extension, so the extension sees the
 * stand-ins: used for modal dialogs and native file dialogs, which the extension host cannot answer.
 */
export async function withWindowStubs<T>(stubs: Partial<WindowFunctions>, fn: () => Thenable<T>): Promise<T> {
  const target = vscode.window as unknown as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  for (const [name, stub] of Object.entries(stubs)) {
    saved.set(name, target[name]);
    target[name] = stub;
  }
  try {
    return await fn();
  } finally {
    for (const [name, original] of saved) target[name] = original;
  }
}

/**
 * Records the error messages shown while it is installed (the extension turns a failed command into
 * one), still showing them. `dispose()` puts the original back.
 */
export function recordErrorMessages(): { readonly messages: string[]; dispose(): void } {
  const target = vscode.window as unknown as Record<string, unknown>;
  const original = vscode.window.showErrorMessage;
  const messages: string[] = [];
  target.showErrorMessage = (message: string, ...rest: never[]) => {
    messages.push(message);
    return original(message, ...rest);
  };
  return {
    messages,
    dispose: () => {
      target.showErrorMessage = original;
    },
  };
}

/** The text of a tree item's label. */
export function labelOf(item: vscode.TreeItem): string | undefined {
  return typeof item.label === 'string' ? item.label : item.label?.label;
}

/** The text of a tooltip, plain or markdown. */
export function tooltipOf(item: { tooltip?: string | vscode.MarkdownString | undefined }): string | undefined {
  return typeof item.tooltip === 'string' ? item.tooltip : item.tooltip?.value;
}
