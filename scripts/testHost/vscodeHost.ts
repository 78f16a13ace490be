// Starts a real VS Code for tests: the VS Code server installed by install.mjs, its web client in
// headless Debian chromium driven by playwright-core, and the extension loaded from the page URL's
// `payload` (the server ignores --extensionDevelopmentPath as a flag), or installed from a .vsix
// with the server's own `--install-extension` before it starts. With `extensionTestsPath`
// the workbench runs that module's `run()` in the extension host and reports the result through
// `codeAutomationExit`; without it, the page is VS Code with the extension, for UI tests.
// See shared/vscode-test-host.md for the facts this builds on.
//
// Every wait has a time limit, and `close()` undoes everything `launchVsCode` did (server process
// group, browser, temp dirs), also when the launch itself failed half way.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const repoRoot = resolve(__dirname, '..', '..');
/** Screenshots and logs of VS Code test runs (test-artifacts/ is gitignored); emptied at each run. */
export const artifactsDir = join(repoRoot, 'test-artifacts', 'vscode');
const testHostDir = join(repoRoot, '.test-host');

interface InstalledHost {
  serverMain: string;
  chromium: string;
}

/**
 * Where install.mjs put the server and found the browser, as its stamp file records. The installer
 * stays a plain ES module (CI runs it before anything is compiled), so the stamp is the interface.
 */
export function installedHost(): InstalledHost {
  const stampFile = join(testHostDir, 'stamp.json');
  let stamp: Partial<InstalledHost>;
  try {
    stamp = JSON.parse(readFileSync(stampFile, 'utf8')) as Partial<InstalledHost>;
  } catch {
    throw new Error(`VS Code test host not installed (no ${stampFile}): run node scripts/testHost/install.mjs`);
  }
  if (typeof stamp.serverMain !== 'string' || typeof stamp.chromium !== 'string')
    throw new Error(`${stampFile} is incomplete: run node scripts/testHost/install.mjs --force`);
  const host = { serverMain: resolve(testHostDir, stamp.serverMain), chromium: stamp.chromium };
  for (const file of [host.serverMain, host.chromium]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run node scripts/testHost/install.mjs --force`);
  }
  return host;
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** User settings that keep the window quiet and the same from run to run. */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  // No sliding toasts or panels: screenshots show the end state, and waits are shorter.
  'workbench.reduceMotion': 'on',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'update.mode': 'none',
  'telemetry.telemetryLevel': 'off',
  'security.workspace.trust.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
};

export interface LaunchOptions {
  /** Short name used for artifact files, e.g. `in-host` or `ui-show-status`. */
  name: string;
  /** Absolute path of the folder VS Code opens, or of a `.code-workspace` file. */
  workspace: string;
  /** Absolute path of the extension to load (the folder with its package.json), if any. */
  extensionDevelopmentPath?: string;
  /** .vsix files the server installs into its fresh extensions dir before it starts. */
  installExtensions?: string[];
  /** User settings on top of the quiet defaults, e.g. `workbench.colorTheme`. */
  userSettings?: Record<string, unknown>;
  /**
   * Keep workspace trust on (default off: the server runs with --disable-workspace-trust). The
   * workspace then opens in restricted mode, without the startup prompt.
   */
  workspaceTrust?: boolean;
  /** Absolute path of a compiled test module exporting `run(): Promise<void>`. */
  extensionTestsPath?: string;
  /** Where server and browser logs go. Default: test-artifacts/vscode/. */
  artifactsDir?: string;
  /** Receives the workbench's log, which carries the extension host's console while tests run. */
  onLog?: (level: string, message: string) => void;
  /** Limit for the server to answer and for the page to load, each. Default 60 s. */
  startTimeoutMs?: number;
  viewport?: { width: number; height: number };
}

export interface VsCodeSession {
  readonly page: Page;
  readonly url: string;
  readonly port: number;
  /**
   * Resolves with the code the workbench passes to `codeAutomationExit` (0 when the tests' `run()`
   * resolved). Rejects on timeout, when the server dies or when the page crashes.
   */
  waitForExit(timeoutMs: number): Promise<number>;
  /** Closes the browser, kills the server's process group and removes the temp dirs. Idempotent. */
  close(): Promise<void>;
}

/** Races a promise against a time limit; the error names what was awaited. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Last-resort cleanups for when this process is interrupted or exits without calling close():
// the server runs in its own process group, so nothing else would end it.
const emergencyCleanups = new Set<() => void>();
let signalHandlersInstalled = false;

function runEmergencyCleanups(): void {
  for (const cleanup of emergencyCleanups) {
    try {
      cleanup();
    } catch {
      // Best effort: the process is going away.
    }
  }
  emergencyCleanups.clear();
}

function installSignalHandlers(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  process.on('exit', runEmergencyCleanups);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(signal, () => {
      runEmergencyCleanups();
      process.exit(code);
    });
  }
}

/**
 * Signals the server's whole process group (the server, its extension hosts, their terminals).
 * Deliberately not skipped once the server itself has exited: its children may still be alive.
 */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

interface Server {
  process: ChildProcess;
  port: number;
  /** Settles when the server process exits, with a description of how. */
  exited: Promise<string>;
  tail(): string;
}

function serverDirArgs(dataDir: string): string[] {
  return ['--user-data-dir', join(dataDir, 'user-data'), '--extensions-dir', join(dataDir, 'extensions')];
}

/** Installs .vsix files with the server's CLI (it installs, prints, and exits) into the run's dirs. */
async function installVsix(serverMain: string, dataDir: string, vsix: string, log: WriteStream): Promise<void> {
  const child = spawn(
    process.execPath,
    [serverMain, '--accept-server-license-terms', ...serverDirArgs(dataDir), '--install-extension', vsix],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const onData = (chunk: Buffer): void => {
    log.write(chunk);
    output += chunk.toString();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const code = await withTimeout(
    new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    }),
    60_000,
    `the VS Code server to install ${vsix}`,
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  if (code !== 0 || !/successfully installed/i.test(output))
    throw new Error(`installing ${vsix} failed (exit ${code}):\n${output}`);
}

/** Starts the server; `onSpawned` learns of the process at once, so it can be stopped even if start-up fails. */
async function startServer(
  serverMain: string,
  dataDir: string,
  trust: boolean,
  log: WriteStream,
  timeoutMs: number,
  onSpawned: (p: ChildProcess, exited: Promise<string>) => void,
): Promise<Server> {
  const args = [
    serverMain,
    '--host',
    '127.0.0.1',
    // Port 0 lets the server pick a free port and print it: no race with other processes.
    '--port',
    '0',
    '--without-connection-token',
    '--accept-server-license-terms',
    '--disable-telemetry',
    ...(trust ? [] : ['--disable-workspace-trust']),
    ...serverDirArgs(dataDir),
  ];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let resolvePort: (port: number) => void = () => undefined;
  const portPromise = new Promise<number>((resolve) => (resolvePort = resolve));
  const onData = (chunk: Buffer): void => {
    log.write(chunk);
    output = (output + chunk.toString()).slice(-20_000);
    const m = /Extension host agent listening on (\d+)/.exec(output);
    if (m?.[1]) resolvePort(Number(m[1]));
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<string>((resolve) => {
    child.on('error', (err) => resolve(`could not start: ${err.message}`));
    child.on('exit', (code, signal) => resolve(signal ? `killed by ${signal}` : `exited with code ${code}`));
  });
  onSpawned(child, exited);
  const tail = (): string => output.split('\n').slice(-30).join('\n');
  const died = exited.then((how) => {
    throw new Error(`VS Code server ${how} before it was ready; its last output:\n${tail()}`);
  });

  const port = await withTimeout(Promise.race([portPromise, died]), timeoutMs, 'the VS Code server to listen');
  // Listening is not serving yet: wait until the web client is actually answered.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for the VS Code server on port ${port} to answer`);
    await Promise.race([new Promise((r) => setTimeout(r, 100)), died]);
  }
  return { process: child, port, exited, tail };
}

async function stopServer(server: ChildProcess, exited: Promise<string>): Promise<void> {
  killGroup(server, 'SIGTERM');
  try {
    await withTimeout(exited, 5000, 'the VS Code server to stop');
  } catch {
    killGroup(server, 'SIGKILL');
    await withTimeout(exited, 5000, 'the VS Code server to die').catch(() => undefined);
  }
  // The extension host and other helpers share the group; make sure none of them outlives the server.
  killGroup(server, 'SIGKILL');
}

/** The workbench URL that opens `workspace` (a folder or a .code-workspace file) with the extension (and its tests) loaded. */
export function workbenchUrl(
  port: number,
  workspace: string,
  extensionDevelopmentPath?: string,
  extensionTestsPath?: string,
): string {
  const remote = (path: string): string => `vscode-remote://127.0.0.1:${port}${path}`;
  const payload: [string, string][] = [];
  if (extensionDevelopmentPath !== undefined)
    payload.push(['extensionDevelopmentPath', remote(extensionDevelopmentPath)]);
  if (extensionTestsPath !== undefined) payload.push(['extensionTestsPath', remote(extensionTestsPath)]);
  const open = workspace.endsWith('.code-workspace') ? 'workspace' : 'folder';
  const query = payload.length ? `&payload=${encodeURIComponent(JSON.stringify(payload))}` : '';
  return `http://127.0.0.1:${port}/?${open}=${encodeURIComponent(workspace)}${query}`;
}

interface AutomationLogFile {
  relativePath: string;
  contents: string;
}

export async function launchVsCode(options: LaunchOptions): Promise<VsCodeSession> {
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const host = installedHost();
  const logsDir = options.artifactsDir ?? artifactsDir;
  mkdirSync(logsDir, { recursive: true });
  installSignalHandlers();

  const cleanups: (() => Promise<void>)[] = [];
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch((err: unknown) => console.error(`[vscode-host] cleanup failed: ${String(err)}`));
      }
    })();
    return closed;
  };

  try {
    const dataDir = await mkdtemp(join(tmpdir(), 'agent-pipeline-vscode-'));
    const removeDataDir = (): void => rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
    emergencyCleanups.add(removeDataDir);
    cleanups.push(async () => {
      removeDataDir();
      emergencyCleanups.delete(removeDataDir);
      await Promise.resolve();
    });
    mkdirSync(join(dataDir, 'user-data', 'User'), { recursive: true });
    const trust = options.workspaceTrust ?? false;
    const trustSettings = trust
      ? {
          'security.workspace.trust.enabled': true,
          'security.workspace.trust.startupPrompt': 'never',
          'security.workspace.trust.banner': 'never',
        }
      : {};
    const settings = { ...USER_SETTINGS, ...trustSettings, ...options.userSettings };
    await writeFile(join(dataDir, 'user-data', 'User', 'settings.json'), JSON.stringify(settings, null, 2));

    const serverLog = createWriteStream(join(logsDir, `${options.name}-server.log`));
    cleanups.push(() => new Promise<void>((resolve) => serverLog.end(resolve)));
    let serverProcess: ChildProcess | undefined;
    let serverExited: Promise<string> = Promise.resolve('not started');
    const killServerNow = (): void => {
      if (serverProcess) killGroup(serverProcess, 'SIGKILL');
    };
    emergencyCleanups.add(killServerNow);
    cleanups.push(async () => {
      if (serverProcess) await stopServer(serverProcess, serverExited);
      emergencyCleanups.delete(killServerNow);
    });
    for (const vsix of options.installExtensions ?? []) await installVsix(host.serverMain, dataDir, vsix, serverLog);
    const server = await startServer(host.serverMain, dataDir, trust, serverLog, startTimeoutMs, (p, exited) => {
      serverProcess = p;
      serverExited = exited;
    });

    const browser: Browser = await chromium.launch({
      executablePath: host.chromium,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: startTimeoutMs,
    });
    cleanups.push(() => withTimeout(browser.close(), 10_000, 'the browser to close'));
    const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 800 } });
    const page = await context.newPage();

    const browserLog = createWriteStream(join(logsDir, `${options.name}-browser.log`));
    cleanups.push(() => new Promise<void>((resolve) => browserLog.end(resolve)));
    page.on('console', (msg) => browserLog.write(`[${msg.type()}] ${msg.text()}\n`));
    page.on('pageerror', (err) => browserLog.write(`[pageerror] ${err.stack ?? err.message}\n`));

    let reportExit: (code: number) => void = () => undefined;
    const exitCode = new Promise<number>((resolve) => (reportExit = resolve));
    await page.exposeFunction('codeAutomationExit', async (code: number, logs?: AutomationLogFile[]) => {
      if (code !== 0 && Array.isArray(logs)) {
        // The workbench hands over its log files; keep them to explain the failure.
        const dir = join(logsDir, `${options.name}-logs`);
        for (const file of logs) {
          const target = join(dir, file.relativePath.replace(/\.\.(\/|\\)/g, ''));
          mkdirSync(join(target, '..'), { recursive: true });
          await writeFile(target, file.contents);
        }
      }
      reportExit(code);
    });
    await page.exposeFunction('codeAutomationLog', (level: string, message: string) => {
      options.onLog?.(level, String(message));
    });

    const url = workbenchUrl(
      server.port,
      options.workspace,
      options.extensionDevelopmentPath,
      options.extensionTestsPath,
    );
    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: startTimeoutMs });

    const crashed = new Promise<never>((_, reject) => {
      page.on('crash', () => reject(new Error('the VS Code page crashed')));
    });
    const serverDied = server.exited.then((how): never => {
      throw new Error(`VS Code server ${how} while the tests ran; its last output:\n${server.tail()}`);
    });
    // Whichever of these settles first decides; the others must not surface as unhandled rejections.
    crashed.catch(() => undefined);
    serverDied.catch(() => undefined);

    return {
      page,
      url,
      port: server.port,
      waitForExit: (timeoutMs) =>
        withTimeout(
          Promise.race([exitCode, crashed, serverDied]),
          timeoutMs,
          'the extension tests to finish (codeAutomationExit)',
        ),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Runs `fn` with a launched VS Code and always closes it afterwards. */
export async function withVsCode<T>(options: LaunchOptions, fn: (session: VsCodeSession) => Promise<T>): Promise<T> {
  const session = await launchVsCode(options);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}
