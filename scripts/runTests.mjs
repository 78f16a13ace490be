// Runs the plain-Node test files with Node's own test runner (TypeScript through tsx's loader).
// Node 20's runner takes no globs, so the files are collected here. Arguments narrow the run to
// files whose path contains one of them: `npm run test:engine -- store`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

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
// Each file is one test to the runner. The time limit only catches a hang: it is set far above what a
// busy 2-core machine needs (the tests themselves wait for conditions, not for times).
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
