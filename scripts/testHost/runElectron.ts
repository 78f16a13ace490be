// Runs the in-host suite (out/test/vscode/suite/index.js) through @vscode/test-electron: it downloads
// a desktop VS Code into .vscode-test/ and starts it with the extension under development. For a
// machine that can reach update.code.visualstudio.com; the offline test host (runVsCodeTests.mjs)
// is what `npm test` and CI use. Needs a display (or `xvfb-run -a npm run test:electron`).
import { runTests } from '@vscode/test-electron';
import { join } from 'node:path';
import { createTestWorkspace } from './testWorkspace';
import { repoRoot } from './vscodeHost';

async function main(): Promise<number> {
  const workspace = await createTestWorkspace({ workspaceFile: true });
  try {
    return await runTests({
      extensionDevelopmentPath: repoRoot,
      extensionTestsPath: join(repoRoot, 'out', 'test', 'vscode', 'suite', 'index.js'),
      launchArgs: [workspace.open, '--disable-extensions', '--skip-welcome', '--skip-release-notes'],
      ...(process.env.VSCODE_VERSION ? { version: process.env.VSCODE_VERSION } : {}),
    });
  } finally {
    await workspace.dispose();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`test:electron failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
