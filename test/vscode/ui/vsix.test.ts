// UI test of what ships: `npm run package` builds agent-pipeline.vsix; its contents are what
// .vscodeignore lets through (the three bundles, media without source maps, the manifest, readme and
// licence; no sources, no node_modules); the VS Code server installs it with its own
// `--install-extension`, and a window opened on a workspace with a pipeline, with no extension
// development path, activates it: the activity-bar container shows the workspace's task and the
// palette runs its commands. Screenshot: test-artifacts/vscode/ui-vsix.png.
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createTestWorkspace } from '../../../scripts/testHost/testWorkspace';
import { repoRoot, withVsCode } from '../../../scripts/testHost/vscodeHost';
import { runFromCommandPalette, waitForWorkbench } from './commandPalette';
import { activityBarIcon, quickInput, screenshot, sideBarView, statusBarItem, treeRows } from './workbench';

const run = promisify(execFile);
const vsix = join(repoRoot, 'agent-pipeline.vsix');

/** The names in a zip file, read from its central directory (a .vsix is a zip). */
function zipEntries(zip: Buffer): string[] {
  const END = 0x06054b50;
  const ENTRY = 0x02014b50;
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== END) end--;
  if (end < 0) throw new Error('not a zip file: no end of central directory');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== ENTRY) throw new Error(`bad central directory entry ${i} at ${at}`);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    names.push(zip.toString('utf8', at + 46, at + 46 + nameLength));
    at += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(repoRoot, join(e.parentPath, e.name)));
}

void test('the packaged .vsix ships only what .vscodeignore lets through, installs, and activates on a workspace with a pipeline', async (t) => {
  try {
    await t.test('npm run package builds agent-pipeline.vsix', async () => {
      try {
        await run('npm', ['run', 'package'], {
          cwd: repoRoot,
          timeout: 180_000,
          env: { ...process.env, npm_config_update_notifier: 'false' },
        });
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        throw new Error(`npm run package failed:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
      }
    });

    await t.test(
      'the .vsix holds the bundles, media without source maps, the manifest, readme and licence',
      async () => {
        const names = zipEntries(await readFile(vsix));
        const media = (await filesUnder(join(repoRoot, 'media'))).filter((f) => !f.endsWith('.map'));
        const expected = [
          '[Content_Types].xml',
          'extension.vsixmanifest',
          ...[
            'package.json',
            'readme.md',
            'LICENSE.txt',
            'dist/extension.js',
            'dist/cli.js',
            'dist/cliMain.js',
            'dist/scriptedAgent.js',
            'dist/gitWorker.js',
            'dist/engineHost.js',
            ...media,
          ].map((f) => `extension/${f}`),
        ];
        assert.deepEqual([...names].sort(), expected.sort());
        t.diagnostic(`${names.length} files: ${names.join(', ')}`);
        const manifest = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { main: string };
        assert.ok(
          names.includes(`extension/${manifest.main.replace(/^\.\//, '')}`),
          'the entry point named by package.json "main" ships',
        );
      },
    );

    await t.test(
      'installed into VS Code, it activates: the container shows the task, the palette runs its commands',
      async () => {
        const workspace = await createTestWorkspace({
          tasks: [{ id: 'TASK-001', title: 'Seen through the packaged extension' }],
        });
        try {
          await withVsCode(
            { name: 'ui-vsix', workspace: workspace.open, installExtensions: [vsix] },
            async ({ page }) => {
              try {
                await waitForWorkbench(page);
                const title = await page.locator('.part.titlebar').innerText();
                assert.doesNotMatch(
                  title,
                  /Extension Development Host/,
                  'a normal window, not an extension development host',
                );
                await activityBarIcon(page, 'Agent Pipeline').click({ timeout: 30_000 });
                const tasks = sideBarView(page, 'Tasks');
                await treeRows(tasks, 'TASK-001 Seen through the packaged extension, pending').waitFor({
                  timeout: 30_000,
                });
                // The welcome of an initialised pipeline with no agents: its `when` clause reads the
                // agentPipeline.initialised context key the extension sets.
                await sideBarView(page, 'Agents').getByText('No agents yet.').waitFor();
                assert.equal(
                  (await statusBarItem(page).innerText()).trim(),
                  'parallel · production · 0/0 busy · 1 waiting',
                );
                await runFromCommandPalette(page, 'Agent Pipeline: Show Pipeline Status');
                await quickInput(page)
                  .rows.filter({ hasText: 'parallel · production · 1 task: 0 working, 1 waiting' })
                  .first()
                  .waitFor({ timeout: 15_000 });
                t.diagnostic(`screenshot: ${await screenshot(page, 'ui-vsix')}`);
                await page.keyboard.press('Escape');
              } catch (err) {
                await screenshot(page, 'ui-vsix-failure').catch(() => undefined);
                throw err;
              }
            },
          );
        } finally {
          await workspace.dispose();
        }
      },
    );
  } finally {
    // `npm run package` left a minified production build in dist/; put the development build back.
    await run(process.execPath, [join(repoRoot, 'scripts', 'build.mjs')], { cwd: repoRoot, timeout: 120_000 });
  }
});
