// Runs the plain-Node test files with Node's own test runner (TypeScript through tsx's loader).
// Node 20's runner takes no globs, so the files are collected here. Arguments narrow the run to
// files whose path contains one of them: `npm run test:engine -- store`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureAgentClis } from './agentClis/install.mjs';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const files = collect('test')
  .filter((f) => !f.startsWith(join('test', 'vscode')))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// The agent CLIs' tests run the real CLIs at pinned versions: on a fresh machine they are installed
// first (from the npm registry, into .agent-clis/; a no-op once there), as runVsCodeTests.mjs
// installs the VS Code test host, so that `npm test` alone passes.
try {
  await ensureAgentClis({ log: (m) => console.log(m) });
} catch (e) {
  console.error(
    `Could not install the pinned agent CLIs that the tests run: ${e instanceof Error ? e.message : String(e)}`,
  );
  console.error('Install them with `node scripts/agentClis/install.mjs`, then run the tests again.');
  process.exit(1);
}
// Each file is one test to the runner. The time limit only catches a hang: it is set far above what a
// busy 2-core machine needs (the tests themselves wait for conditions, not for times).
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
