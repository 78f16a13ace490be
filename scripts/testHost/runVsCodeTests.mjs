// Runs the tests that need a real VS Code: first the in-host suites (test/vscode/suite, run by the
// workbench in the extension host), then the UI tests (test/vscode/ui/*.test.ts, Playwright driving
// the page, run by Node's test runner). Installs the test host first when needed. Exits non-zero when
// either part fails, and ends with one `vscode: N passed, N failed` line for both. `--only=suite` or
// `--only=ui` runs one part; `--build-only` only builds. Screenshots and logs go to test-artifacts/vscode/, emptied first.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { ensureTestHost } from './install.mjs';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const suiteDir = join(repoRoot, 'test', 'vscode', 'suite');
const artifactsDir = join(repoRoot, 'test-artifacts', 'vscode');
/** The in-host suites (runInHostSuite.ts gives each its own limit), with start-up and shutdown. */
const SUITE_TIMEOUT_MS = 900_000;
const UI_TIMEOUT_MS = 600_000;

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
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(signal, () => {
    if (current && current.exitCode === null && current.signalCode === null) {
      current.kill(signal);
      current.once('close', () => process.exit(code));
    } else {
      process.exit(code);
    }
  });
}

/**
 * Runs `node args` with its output passed through (and also kept, for counting results), killed
 * after `timeoutMs`. Resolves with its exit code and output.
 */
function runNode(args, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    current = child;
    let output = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      output += chunk.toString();
    });
    const timer = setTimeout(() => {
      console.error(`[vscode-tests] node ${args.join(' ')} took longer than ${timeoutMs} ms: killing it`);
      child.kill('SIGTERM');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      console.error(`[vscode-tests] could not run node ${args.join(' ')}: ${err.message}`);
      resolve({ code: 1, output });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

/**
 * The pass and fail counts a part printed: the harness's `N passed, N failed` line, or the summary
 * of Node's test runner (`# pass N` in TAP, `ℹ pass N` in its spec reporter). A part that failed
 * without counting (it crashed, or could not start) counts as one failure.
 */
function countResults({ code, output }) {
  const plain = [...output.matchAll(/^(\d+) passed, (\d+) failed/gm)].at(-1);
  let passed = plain ? Number(plain[1]) : undefined;
  let failed = plain ? Number(plain[2]) : undefined;
  if (passed === undefined) {
    const pass = [...output.matchAll(/^(?:#|ℹ) pass (\d+)$/gm)].at(-1);
    const fail = [...output.matchAll(/^(?:#|ℹ) fail (\d+)$/gm)].at(-1);
    if (pass && fail) {
      passed = Number(pass[1]);
      failed = Number(fail[1]);
    }
  }
  if (passed === undefined || failed === undefined) return { passed: 0, failed: code === 0 ? 0 : 1 };
  return { passed, failed: code !== 0 && failed === 0 ? 1 : failed };
}

async function build() {
  // The extension itself, so the tests never run a stale dist/.
  const { code } = await runNode([join(repoRoot, 'scripts', 'build.mjs')], 120_000);
  if (code !== 0) throw new Error('building the extension failed');
  await esbuild.build({
    // One entry per in-host suite: the trusted window's, the human review window's, the interactive
    // agent's and the untrusted window's.
    entryPoints: [
      join(suiteDir, 'index.ts'),
      join(suiteDir, 'reviewIndex.ts'),
      join(suiteDir, 'interactiveIndex.ts'),
      join(suiteDir, 'untrustedIndex.ts'),
    ],
    outdir: join(repoRoot, 'out', 'test', 'vscode', 'suite'),
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
  return runNode(['--import', 'tsx', join(repoRoot, 'scripts', 'testHost', 'runInHostSuite.ts')], SUITE_TIMEOUT_MS);
}

function uiTestFiles() {
  const dir = join(repoRoot, 'test', 'vscode', 'ui');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(dir, f));
}

async function runUiTests() {
  const started = Date.now();
  const files = uiTestFiles();
  if (files.length === 0) {
    console.error('[vscode-tests] no UI test files in test/vscode/ui');
    return { code: 1, output: '' };
  }
  // One VS Code at a time: each is a server, a browser and an extension host on a 2-core machine.
  const result = await runNode(
    ['--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${UI_TIMEOUT_MS}`, ...files],
    UI_TIMEOUT_MS + 30_000,
  );
  console.log(`[vscode-tests] UI tests exited with code ${result.code} after ${seconds(started)}`);
  return result;
}

async function main() {
  // `--build-only`: the extension and the in-host suites, for another launcher (runElectron.ts).
  if (process.argv.includes('--build-only')) {
    await build();
    return 0;
  }
  await ensureTestHost();
  // Only this run's screenshots and logs, so none of them is mistaken for a fresh one.
  await rm(artifactsDir, { recursive: true, force: true });
  const buildStarted = Date.now();
  await build();
  console.log(`[vscode-tests] built the extension and the in-host suites in ${seconds(buildStarted)}`);

  const parts = [];
  if (only !== 'ui') parts.push(countResults(await runSuite()));
  if (only !== 'suite') parts.push(countResults(await runUiTests()));
  const passed = parts.reduce((n, p) => n + p.passed, 0);
  const failed = parts.reduce((n, p) => n + p.failed, 0);
  // One closing line for both parts, in the plain form CI reads.
  console.log(`vscode: ${passed} passed, ${failed} failed`);
  return failed > 0 || passed === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`[vscode-tests] FAILED: ${err?.stack ?? err}`);
    console.log('vscode: 0 passed, 1 failed');
    process.exit(1);
  },
);
