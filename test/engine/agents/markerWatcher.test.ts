import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MarkerWatcher } from '../../../src/engine/agents/markerWatcher';

/**
 * The task-file watcher: a hint, naming the file, for a file written, appended to or put in place by
 * rename in a watched directory, whatever else the directory holds; none after dispose.
 */

/** Resolves once `cond` holds, checking every 10 ms (file events come from another thread). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

void test('hints name the file written, appended to or renamed into a watched directory', async () => {
  const base = await mkdtemp(join(tmpdir(), 'pipeline-marker-watch-'));
  const dir = join(base, '.pipeline-task');
  await mkdir(dir);
  // A directory full of earlier attempts' files, as an agent's task directory gets in a long run.
  for (let i = 0; i < 300; i++) await writeFile(join(dir, `TASK-${i}.attempt-1.md`), 'old\n');
  const hints: string[] = [];
  const w = new MarkerWatcher((f) => hints.push(f));
  try {
    w.watchDir(dir);
    w.watchDir(dir); // Twice is once.
    const file = join(dir, 'TASK-900.attempt-1.md');
    await writeFile(file, '# task\n');
    await until(() => hints.includes(file), 'the new file is hinted');
    hints.length = 0;
    await appendFile(file, '\nPIPELINE: COMPLETED\n');
    await until(() => hints.includes(file), 'the append is hinted');
    // An editor's save: written aside, renamed over.
    const saved = join(dir, 'TASK-901.attempt-2.md');
    await writeFile(join(base, 'tmp.md'), 'saved\n');
    await rename(join(base, 'tmp.md'), saved);
    await until(() => hints.includes(saved), 'the renamed file is hinted');
    assert.ok(
      hints.every((h) => h.startsWith(dir)),
      'every hint names a file of the watched directory',
    );
    // Only the files that changed are named: nothing is read back from the directory.
    assert.ok(!hints.some((h) => h.endsWith('TASK-5.attempt-1.md')));
  } finally {
    w.dispose();
  }
  hints.length = 0;
  await writeFile(join(dir, 'TASK-902.attempt-1.md'), 'after\n');
  // Give a stray event its chance to arrive: none may (a negative check, so a fixed wait is safe).
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(hints, []);
  // A directory that does not exist is not watched, and the watcher is not broken by it.
  const w2 = new MarkerWatcher(() => undefined);
  w2.watchDir(join(base, 'missing'));
  w2.dispose();
  await rm(base, { recursive: true, force: true });
});
