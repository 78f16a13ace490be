import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import picomatch from 'picomatch';
import { initHome } from '../../src/engine/home/pipelineInit';
import { DEFAULT_STAGES } from '../../src/engine/model/configSchema';

/**
 * The extension keeps VS Code's file watcher out of the folders of `.pipeline/` that hold one
 * machine's run (the state's journal, logs, exit files, the lease, the inbox, evidence): they change
 * several times a second while agents work, and every event reaches every extension's watchers (the
 * built-in git extension reads its settings and schedules a `git status` on each). These are exactly
 * the folders `pipeline init` keeps out of git, so the user's Source Control view is the same; the
 * configuration, which a team shares, stays watched.
 */

interface Manifest {
  contributes: { configurationDefaults?: Record<string, unknown> };
}

void test('files.watcherExclude leaves out the git-ignored folders of .pipeline/, and only those', async () => {
  const manifest = JSON.parse(await readFile(join(__dirname, '..', '..', 'package.json'), 'utf8')) as Manifest;
  const excludes = manifest.contributes.configurationDefaults?.['files.watcherExclude'] as
    Record<string, boolean> | undefined;
  assert.ok(excludes, 'package.json contributes a default for files.watcherExclude');
  const patterns = Object.entries(excludes)
    .filter(([, on]) => on)
    .map(([p]) => p);
  const excluded = picomatch(patterns, { dot: true });

  const dir = await mkdtemp(join(tmpdir(), 'watcher-exclude-'));
  try {
    await initHome(dir, {
      targetBranch: 'main',
      stages: DEFAULT_STAGES,
      retry: { maxAttempts: 3, baseDelayMs: 200, maxDelayMs: 1000, jitter: 0 },
    });
    const ignored = (await readFile(join(dir, '.pipeline', '.gitignore'), 'utf8'))
      .split('\n')
      .filter((l) => l.endsWith('/'))
      .map((l) => l.slice(0, -1));
    assert.ok(ignored.includes('logs') && ignored.includes('state'), `.pipeline/.gitignore: ${ignored.join(', ')}`);
    for (const folder of ignored) {
      // At the root of the workspace folder, and in a repository opened inside a bigger folder.
      assert.ok(excluded(`.pipeline/${folder}/a-file`), `.pipeline/${folder}/ is not watched`);
      assert.ok(excluded(`sub/repo/.pipeline/${folder}/deep/a-file`), `…/.pipeline/${folder}/ is not watched`);
    }
    for (const watched of [
      '.pipeline/config.json',
      '.pipeline/.gitignore',
      'src/logs/x.ts',
      'state/x',
      '.pipeline-task/T.md',
    ])
      assert.equal(excluded(watched), false, `${watched} stays watched`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
