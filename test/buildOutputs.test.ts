import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';

/**
 * What the build writes is never checked as source: `npm ci && npm run demo` (which builds) and then
 * `npm test` (which lints and checks the format) must pass on one checkout, in that order. And the
 * README's build row names every bundle the build script writes.
 */

const ROOT = join(__dirname, '..');
const buildScript = readFileSync(join(ROOT, 'scripts', 'build.mjs'), 'utf8');

/** The files esbuild writes, as the build script names them (`outfile: '…'`). */
const bundles = [...buildScript.matchAll(/outfile:\s*'([^']+)'/g)].map((m) => m[1]!);

/** Besides each bundle, esbuild writes its source map and, for a page that imports CSS, its stylesheet. */
function companions(bundle: string): string[] {
  const out = [`${bundle}.map`];
  if (bundle.startsWith('media/')) out.push(bundle.replace(/\.js$/, '.css'), bundle.replace(/\.js$/, '.css.map'));
  return out;
}

/** Whatever a build left in the checkout now (a test run after `npm run build` sees it all). */
function builtNow(): string[] {
  const out: string[] = [];
  for (const dir of ['dist', 'media/out']) {
    if (!existsSync(join(ROOT, dir))) continue;
    for (const name of readdirSync(join(ROOT, dir))) out.push(`${dir}/${name}`);
  }
  return out;
}

void test('the build script names its bundles (the check below reads them from it)', () => {
  assert.ok(bundles.length >= 7, `bundles found in scripts/build.mjs: ${bundles.join(', ')}`);
  for (const b of ['dist/extension.js', 'dist/cli.js', 'media/out/metricsPage.js']) assert.ok(bundles.includes(b), b);
});

void test('ESLint and Prettier ignore every file the build writes, so a build never fails the next lint or format check', async () => {
  const eslint = new ESLint({ cwd: ROOT });
  const files = [
    ...new Set([...bundles, ...bundles.flatMap(companions), 'dist/cliMain.js.cache', ...builtNow()]),
  ].sort();
  for (const f of files) {
    assert.ok(await eslint.isPathIgnored(join(ROOT, f)), `ESLint would lint ${f}, which the build writes`);
    // The ignore files the Prettier CLI reads by default (`npm run format:check`).
    const info = await prettier.getFileInfo(join(ROOT, f), {
      ignorePath: [join(ROOT, '.gitignore'), join(ROOT, '.prettierignore')],
    });
    assert.ok(info.ignored, `Prettier would check ${f}, which the build writes`);
  }
  // Source is still checked: the ignores are not so wide that they hide it.
  for (const f of ['src/cli/main.ts', 'src/webview/metricsPage.ts', 'scripts/build.mjs']) {
    assert.equal(await eslint.isPathIgnored(join(ROOT, f)), false, `ESLint should lint ${f}`);
    const info = await prettier.getFileInfo(join(ROOT, f), {
      ignorePath: [join(ROOT, '.gitignore'), join(ROOT, '.prettierignore')],
    });
    assert.equal(info.ignored, false, `Prettier should check ${f}`);
  }
});

void test("the README's build row names every bundle the build script writes", () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const row = readme.split('\n').find((l) => l.startsWith('| `npm run build` |'));
  assert.ok(row, 'README.md has a row for `npm run build` in its script table');
  // A page's stylesheet is a file esbuild writes beside its bundle, and the page needs it too.
  const pages = bundles.filter((b) => b.startsWith('media/')).map((b) => b.replace(/\.js$/, '.css'));
  for (const b of [...bundles, ...pages])
    assert.ok(row.includes(`\`${b}\``), `README's build row does not name ${b}:\n${row}`);
});
