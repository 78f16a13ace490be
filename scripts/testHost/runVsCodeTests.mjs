// Runs the tests that need a real VS Code: first the in-host suite (test/vscode/suite, run by the
// workbench in the extension host), then the UI tests (test/vscode/ui/*.test.ts, Playwright driving
// the page, run by Node's test runner). Installs the test host first when needed. Exits non-zero when
// either part fails. `--only=suite` or `--only=ui` runs one part. Screenshots and logs go to
// test-artifacts/.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { ensureTestHost } from './install.mjs';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const suiteEntry = join(repoRoot, 'out', 'test', 'vscode', 'suite', 'index.js');
const SUITE_TIMEOUT_MS = 180_000;
const UI_TIMEOUT_MS = 300_000;

const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
if (only !== undefined && only !== 'suite' && only !== 'ui') {
  console.error(`unknown --only=${only}: use --only=suite or --only=ui`);
  process.exit(2);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

// The child running now, so that an interrupt or a CI timeout reaches it and it can clean up.
let current;
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(signal, () => {
    if (current && current.exitCode === null && current.signalCode === null) {
      current.kill(signal);
      current.once('close', () => process.exit(code));
    } else {
      process.exit(code);
    }
  });
}

function runNode(args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: 'inherit' });
    current = child;
    const timer = setTimeout(() => {
      console.error(`[vscode-tests] node ${args.join(' ')} took longer than ${timeoutMs} ms: killing it`);
      child.kill('SIGTERM');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      console.error(`[vscode-tests] could not run node ${args.join(' ')}: ${err.message}`);
      resolve(1);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code ?? 1);
    });
  });
}

async function build() {
  // The extension itself, so the tests never run a stale dist/.
  const code = await runNode([join(repoRoot, 'scripts', 'build.mjs')], 120_000);
  if (code !== 0) throw new Error('building the extension failed');
  await esbuild.build({
    entryPoints: [join(repoRoot, 'test', 'vscode', 'suite', 'index.ts')],
    outfile: suiteEntry,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['vscode'],
    // Unminified, so a failure's stack (the extension host does not apply source maps) is readable.
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}

async function runSuite() {
  // The launcher is TypeScript (type-checked with the UI tests that share it), so it runs under tsx.
  return runNode(['--import', 'tsx', join(repoRoot, 'scripts', 'testHost', 'runInHostSuite.ts')], SUITE_TIMEOUT_MS + 60_000);
}

function uiTestFiles() {
  const dir = join(repoRoot, 'test', 'vscode', 'ui');
  return readdirSync(dir).filter((f) => f.endsWith('.test.ts')).sort().map((f) => join(dir, f));
}

async function runUiTests() {
  const started = Date.now();
  const files = uiTestFiles();
  if (files.length === 0) {
    console.error('[vscode-tests] no UI test files in test/vscode/ui');
    return 1;
  }
  // One VS Code at a time: each is a server, a browser and an extension host on a 2-core machine.
  const code = await runNode(['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${UI_TIMEOUT_MS}`, ...files], UI_TIMEOUT_MS + 30_000);
  console.log(`[vscode-tests] UI tests exited with code ${code} after ${seconds(started)}`);
  return code;
}

async function main() {
  await ensureTestHost();
  const buildStarted = Date.now();
  await build();
  console.log(`[vscode-tests] built the extension and the in-host suite in ${seconds(buildStarted)}`);

  let failed = false;
  if (only !== 'ui') {
    failed ||= (await runSuite()) !== 0;
  }
  if (only !== 'suite') {
    failed ||= (await runUiTests()) !== 0;
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[vscode-tests] FAILED: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
