// One esbuild script for everything that ships: the extension (CommonJS, `vscode` external) and the
// `pipeline` CLI (a Node executable). Type checking is its own step (`npm run typecheck`).
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';

const production = process.argv.includes('--production');

/**
 * zod's `z` namespace re-exports every locale's error messages (`z.locales`, about 360 kB, a fifth of
 * the CLI bundle, compiled by every `pipeline` command). The pipeline uses the default English ones
 * only (zod registers them itself), so the locale index becomes English alone.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/](classic|core)[\\/]/.test(args.importer)
        ? { path: args.path, namespace: 'zod-locales', pluginData: { dir: args.resolveDir } }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: "export { default as en } from '../locales/en.js';\n",
      resolveDir: args.pluginData.dir,
    }));
  },
};
/**
 * commander requires node:child_process when it loads, for subcommands that are programs of their
 * own (the pipeline has none); Node then compiles child_process, net and dgram at every start of
 * every command. Here commander gets the module on first use instead.
 */
const commanderLazyChildProcess = {
  name: 'commander-lazy-child-process',
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]commander[\\/]/.test(args.importer) ? { path: 'child_process', namespace: 'lazy-builtin' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, () => ({
      contents:
        "let real;\nmodule.exports = new Proxy({}, { get: (_, key) => (real ??= require('node:child_process'))[key] });\n",
      loader: 'js',
    }));
  },
};
const watch = process.argv.includes('--watch');

/**
 * dist/cliMain.js is the body of a CommonJS module wrapped as Node wraps one, written so by the build
 * rather than by the launcher at every start (src/cli/launcher.ts compiles the file's text as it is).
 */
const CLI_WRAPPER = { head: '(function (exports, require, module, __filename, __dirname) {', tail: '})' };

/**
 * Escapes every character outside ASCII in a bundle (esbuild leaves them in regular expressions and
 * comments): a single one makes V8 hold the whole 2 MB source as a two-byte string, twice the
 * memory, and the launcher reads an ASCII file as latin1 without decoding it. `\uXXXX` means the
 * same character in a string, a template, a regular expression and an identifier, and in a comment
 * it does not matter.
 */
async function asciiOnly(file) {
  const text = await readFile(file, 'utf8');
  const ascii = text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) await writeFile(file, ascii);
}

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  plugins: [zodEnglishOnly, commanderLazyChildProcess],
};

const targets = [
  // The extension is two bundles: the views, loaded at activation, and the engine host, loaded
  // right after (see src/extension.ts); so activation loads no zod, store, git or metrics code.
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, entryPoints: ['src/engineHost.ts'], outfile: 'dist/engineHost.js', external: ['vscode'] },
  // The CLI: a small launcher (the executable) that loads the bundle with a V8 code cache. The bundle
  // is written as the function the launcher compiles (see CLI_WRAPPER), so the launcher compiles the
  // file's text as it is, without a wrapped copy of 2 MB of source.
  {
    ...common,
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/cliMain.js',
    banner: { js: CLI_WRAPPER.head },
    footer: { js: CLI_WRAPPER.tail },
  },
  { ...common, entryPoints: ['src/cli/launcher.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  {
    ...common,
    entryPoints: ['src/scripted/scriptedAgent.ts'],
    outfile: 'dist/scriptedAgent.js',
    banner: { js: '#!/usr/bin/env node' },
  },
  // The git worker the extension runs its git work in (see src/engine/git/remoteWorkspace.ts).
  { ...common, entryPoints: ['src/engine/git/workspaceWorker.ts'], outfile: 'dist/gitWorker.js' },
  // The metrics panel's page: a browser bundle (with uPlot and its CSS) in media/out/, the only
  // place the webview may load from.
  {
    ...common,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    entryPoints: ['src/webview/metricsPage.ts'],
    outfile: 'media/out/metricsPage.js',
  },
];

if (watch) {
  for (const t of targets) {
    const ctx = await esbuild.context(t);
    await ctx.watch();
  }
} else {
  await Promise.all(targets.map((t) => esbuild.build(t)));
  await asciiOnly('dist/cliMain.js');
  await chmod('dist/cli.js', 0o755);
  // The first run after a build writes the CLI's code cache; this one makes it now, for every later run.
  await rm('dist/cliMain.js.cache', { force: true });
  execFileSync(process.execPath, ['dist/cli.js', '--version'], { stdio: 'ignore' });
  await chmod('dist/scriptedAgent.js', 0o755);
}
