// Runs the compiled in-host suites inside real VS Code windows, each on a fresh test workspace,
// prints the extension host's log, and exits non-zero when a suite failed:
//   - out/test/vscode/suite/index.js: a trusted window on a repository with a pipeline, opened
//     through a .code-workspace file (so that adding an agent's worktree as a folder does not
//     reload the page);
//   - out/test/vscode/suite/reviewIndex.js: a trusted window on a repository whose supervisor stage
//     is a person (role human), with scripted agents for the other stages and one task;
//   - out/test/vscode/suite/interactiveIndex.js: a trusted window where an agent runs Claude Code's
//     own interface in its terminal (against a local model server), scripted agents the others;
//   - out/test/vscode/suite/untrustedIndex.js: a window with workspace trust on, on a plain
//     repository, which VS Code opens in restricted mode.
// Started by runVsCodeTests.mjs (`node --import tsx scripts/testHost/runInHostSuite.ts`) after it has
// installed the host and built the suites. Its last line adds up both suites' `N passed, N failed`.
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_STAGES } from '../../src/engine/model/configSchema';
import { createTestWorkspace, type TestWorkspaceOptions } from './testWorkspace';
import { artifactsDir, repoRoot, withVsCode } from './vscodeHost';

/**
 * Workbench chatter that says nothing about the tests, kept out of the console (the full log is in
 * test-artifacts/vscode/<suite>-workbench.log). The last two are expected on a machine with no internet.
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

const REVIEW_AGENTS = ['architect', 'tester', 'implementer'].map((role) => ({ id: role, role }));

interface Suite {
  name: string;
  entry: string;
  workspace: TestWorkspaceOptions;
  workspaceTrust: boolean;
  timeoutMs: number;
}

const SUITES: Suite[] = [
  { name: 'in-host', entry: 'index.js', workspace: { workspaceFile: true }, workspaceTrust: false, timeoutMs: 400_000 },
  {
    // A person as the supervisor stage: a task waits for its review, and the review commands answer.
    name: 'in-host-review',
    entry: 'reviewIndex.js',
    workspace: {
      stages: DEFAULT_STAGES.map((s) => (s.name === 'supervisor' ? { name: 'supervisor', role: 'human' } : s)),
      agents: REVIEW_AGENTS,
      tasks: [{ id: 'TASK-001', title: 'Greeting', paths: ['src/**'], description: 'Say hello.' }],
    },
    workspaceTrust: false,
    timeoutMs: 300_000,
  },
  {
    // Claude Code's own interface in an agent's terminal (interactive: true) takes the architect
    // stage against a local model server; scripted agents take the others.
    name: 'in-host-interactive',
    entry: 'interactiveIndex.js',
    workspace: {
      agents: ['tester', 'implementer', 'supervisor'].map((role) => ({ id: role, role })),
      tasks: [{ id: 'TASK-001', title: 'Greeting', paths: ['src/**'], description: 'Say hello.' }],
    },
    workspaceTrust: false,
    timeoutMs: 300_000,
  },
  {
    name: 'in-host-untrusted',
    entry: 'untrustedIndex.js',
    workspace: { pipeline: false },
    workspaceTrust: true,
    timeoutMs: 150_000,
  },
];

interface Outcome {
  code: number;
  passed: number;
  failed: number;
}

async function runSuite(suite: Suite): Promise<Outcome> {
  const started = Date.now();
  const workbenchLog = createWriteStream(join(artifactsDir, `${suite.name}-workbench.log`));
  const workspace = await createTestWorkspace(suite.workspace);
  let counts: { passed: number; failed: number } | undefined;
  try {
    console.log(`[vscode-tests] ${suite.name}: VS Code on ${workspace.open}`);
    const code = await withVsCode(
      {
        name: suite.name,
        workspace: workspace.open,
        extensionDevelopmentPath: repoRoot,
        extensionTestsPath: join(repoRoot, 'out', 'test', 'vscode', 'suite', suite.entry),
        workspaceTrust: suite.workspaceTrust,
        onLog: (level, message) => {
          // While tests run, the workbench logs the extension host's console through here, at the
          // level of the console method (log -> info).
          const line = level === 'info' ? message : `[${level}] ${message}`;
          workbenchLog.write(line + '\n');
          const m = /^(\d+) passed, (\d+) failed$/.exec(message);
          if (m) counts = { passed: Number(m[1]), failed: Number(m[2]) };
          if (!NOISE.some((pattern) => pattern.test(message))) console.log(line);
        },
      },
      (session) => session.waitForExit(suite.timeoutMs),
    );
    console.log(
      `[vscode-tests] ${suite.name} exited with code ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return { code, passed: counts?.passed ?? 0, failed: counts?.failed ?? (code === 0 ? 0 : 1) };
  } catch (err) {
    console.error(
      `[vscode-tests] ${suite.name} could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    return { code: 1, passed: counts?.passed ?? 0, failed: Math.max(1, counts?.failed ?? 0) };
  } finally {
    await workspace.dispose();
    await new Promise<void>((resolve) => workbenchLog.end(resolve));
  }
}

async function main(): Promise<number> {
  await mkdir(artifactsDir, { recursive: true });
  const only = process.argv.find((a) => a.startsWith('--suite='))?.slice('--suite='.length);
  const outcomes: Outcome[] = [];
  for (const suite of SUITES) if (!only || only === suite.name) outcomes.push(await runSuite(suite));
  const passed = outcomes.reduce((n, o) => n + o.passed, 0);
  const failed = outcomes.reduce((n, o) => n + (o.code !== 0 && o.failed === 0 ? 1 : o.failed), 0);
  // The closing count of both suites, in the form runVsCodeTests.mjs reads.
  console.log(`${passed} passed, ${failed} failed`);
  return outcomes.every((o) => o.code === 0) && outcomes.length > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(
      `[vscode-tests] in-host suites could not run: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
