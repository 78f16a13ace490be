// Runs the compiled in-host suite (out/test/vscode/suite/index.js) inside a real VS Code opened on a
// fresh test workspace, prints the extension host's log, and exits with the code the workbench
// reported. Started by runVsCodeTests.mjs (`node --import tsx scripts/testHost/runInHostSuite.ts`)
// after it has installed the host and built the suite.
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestWorkspace } from './testWorkspace';
import { artifactsDir, repoRoot, withVsCode } from './vscodeHost';

const SUITE_TIMEOUT_MS = 180_000;

/**
 * Workbench chatter that says nothing about the tests, kept out of the console (the full log is in
 * test-artifacts/vscode/in-host-workbench.log). The last two are expected on a machine with no internet.
 */
const NOISE = [
  /^Resolving connection token/,
  /^Resolved connection token/,
  /^Creating a socket/,
  /^Updating additional builtin extensions cache/,
  /^ChatSessionStore:/,
  /^\[Service Worker\] registration/,
  /ENOTFOUND open-vsx\.org/,
];

async function main(): Promise<number> {
  const started = Date.now();
  await mkdir(artifactsDir, { recursive: true });
  const workbenchLog = createWriteStream(join(artifactsDir, 'in-host-workbench.log'));
  const workspace = await createTestWorkspace();
  try {
    console.log(`[vscode-tests] in-host suite: VS Code on ${workspace.path}`);
    return await withVsCode(
      {
        name: 'in-host',
        workspace: workspace.path,
        extensionDevelopmentPath: repoRoot,
        extensionTestsPath: join(repoRoot, 'out', 'test', 'vscode', 'suite', 'index.js'),
        onLog: (level, message) => {
          // While tests run, the workbench logs the extension host's console through here, at the
          // level of the console method (log -> info).
          const line = level === 'info' ? message : `[${level}] ${message}`;
          workbenchLog.write(line + '\n');
          if (!NOISE.some((pattern) => pattern.test(message))) console.log(line);
        },
      },
      async (session) => {
        const code = await session.waitForExit(SUITE_TIMEOUT_MS);
        console.log(`[vscode-tests] in-host suite exited with code ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return code;
      },
    );
  } finally {
    await workspace.dispose();
    await new Promise<void>((resolve) => workbenchLog.end(resolve));
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`[vscode-tests] in-host suite could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
