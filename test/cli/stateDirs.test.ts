import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, fails, mentions, ok, requireCli, shown, startCli, status, until, withRepo } from './cliKit';

/**
 * The pipeline's directories in the wrong shape: the state directory a file, a journal file a
 * directory, the config missing, the state deleted, garbage in the inbox. Each gets an error or a
 * warning that names the path and what to do; nothing is deleted.
 */

requireCli();

const configOf = (dir: string) => join(dir, '.pipeline', 'config.json');
const stateDirOf = (dir: string) => join(dir, '.pipeline', 'state');

/** The newest non-empty journal segment: where the last commit went. */
async function lastSegment(dir: string): Promise<string> {
  const names = (await readdir(stateDirOf(dir))).filter((n) => /^journal-\d+-e\d+\.log$/.test(n)).sort();
  for (const n of names.reverse()) {
    if ((await readFile(join(stateDirOf(dir), n))).length > 0) return join(stateDirOf(dir), n);
  }
  assert.fail('no journal segment with records');
}

test('the state directory replaced by a file, or a journal file by a directory: an error naming the path and the fix, no stack trace', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'One');
    const seg = await lastSegment(dir);
    await rm(seg);
    await mkdir(seg);
    for (const args of [['status'], ['task', 'add', 'Two']]) {
      const err = await fails(dir, 1, ...args);
      mentions(err, seg, 'is a directory', 'fix:');
      assert.doesNotMatch(err, /unexpected error|EISDIR| {4}at /);
    }
    await rm(stateDirOf(dir), { recursive: true });
    await writeFile(stateDirOf(dir), 'a file');
    for (const args of [['status'], ['task', 'add', 'Two']]) {
      const err = await fails(dir, 1, ...args);
      mentions(err, stateDirOf(dir), 'is a file', 'fix:');
      assert.doesNotMatch(err, /unexpected error|EEXIST| {4}at /);
    }
  });
});

test('.pipeline/config.json missing: the error says so and how to recreate it; `pipeline init` does, keeping the tasks', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Kept');
    await rm(configOf(dir));
    const err = await fails(dir, 1, 'status');
    mentions(err, configOf(dir), 'is missing', 'pipeline init', 'keeps the state', 'git checkout');
    assert.doesNotMatch(err, /No pipeline found/);
    await ok(dir, 'init');
    assert.deepEqual(Object.keys((await status(dir)).tasks), ['TASK-001']);
  });
});

test('the state directory deleted after the pipeline wrote state: status warns naming it (also in --json)', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    await ok(dir, 'task', 'add', 'Gone');
    await rm(stateDirOf(dir), { recursive: true });
    const st = await cli(dir, ['status']);
    assert.equal(st.code, 0, shown(st));
    mentions(st.stdout, `warning: The state directory ${stateDirOf(dir)} is missing`, 'backup');
    const s = await status(dir);
    assert.ok(
      s.warnings.some((w) => w.includes(stateDirOf(dir))),
      s.warnings.join('\n'),
    );
    await assert.rejects(readdir(stateDirOf(dir)), 'a reader does not create the directory');
  });
});

test('an unreadable request in the inbox is moved aside, not deleted; the run, its log and status say where', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const inbox = join(dir, '.pipeline', 'inbox');
    const run = startCli(dir, ['run']);
    try {
      await run.waitFor(/Running:/);
      await writeFile(join(inbox, 'garbage.req.json'), 'not a request');
      const aside = await until('the garbage moved aside', 15_000, async () =>
        (await readdir(inbox)).find((n) => n.startsWith('garbage.req.json.corrupt-')),
      );
      assert.equal(await readFile(join(inbox, aside), 'utf8'), 'not a request');
      const said = `warning: Inbox request ${join(inbox, 'garbage.req.json')} is unreadable (not valid JSON); it was moved aside to ${join(inbox, aside)} and not applied.`;
      await run.waitFor(new RegExp(said.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      const log = await until('the warning in pipeline.log', 15_000, async () => {
        const text = await readFile(join(dir, '.pipeline', 'logs', 'pipeline.log'), 'utf8').catch(() => '');
        return text.includes(aside) ? text : undefined;
      });
      assert.match(log, /"level":"warn"/);
      const s = await status(dir);
      assert.ok(
        s.warnings.some((w) => w.includes(aside)),
        s.warnings.join('\n'),
      );
    } finally {
      await run.stop();
    }
  });
});
