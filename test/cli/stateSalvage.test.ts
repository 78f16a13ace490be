import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, fails, mentions, ok, requireCli, shown, startCli, stateFiles, status, withRepo } from './cliKit';

/**
 * A damaged journal as a user meets it: one damaged record costs that record only; status shows the
 * rest and says what was lost (in --json too); nothing leads over the loss until `pipeline repair`,
 * which keeps the damaged file and logs what it made permanent. And the journal's files do not pile
 * up with short-lived writers.
 */

requireCli();

const stateDirOf = (dir: string) => join(dir, '.pipeline', 'state');

/** The newest non-empty journal segment: where the last commit went. */
async function lastSegment(dir: string): Promise<string> {
  const names = (await readdir(stateDirOf(dir))).filter((n) => /^journal-\d+-e\d+\.log$/.test(n)).sort();
  for (const n of names.reverse()) {
    if ((await readFile(join(stateDirOf(dir), n))).length > 0) return join(stateDirOf(dir), n);
  }
  assert.fail('no journal segment with records');
}

async function asideFiles(dir: string): Promise<string[]> {
  return (await readdir(stateDirOf(dir))).filter((n) => n.includes('.corrupt-')).sort();
}

/** Flips one bit inside the title of the line that adds task `id`; returns the damaged bytes. */
async function damageTaskAdded(file: string, id: string): Promise<Buffer> {
  const buf = await readFile(file);
  const at = buf.indexOf(`"id":"${id}","title":"`);
  assert.ok(at > 0, `${id} is added in ${file}`);
  const pos = at + `"id":"${id}","title":"`.length + 1;
  buf[pos] = buf[pos]! ^ 0x01;
  await writeFile(file, buf);
  return buf;
}

test('one damaged record in the journal a run wrote: status shows every other task and warns (also in --json); no process leads until `pipeline repair`, which keeps the file and reports the loss', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    const run = startCli(dir, ['run']);
    try {
      await run.waitFor(/Running:/);
      for (let i = 1; i <= 9; i++) await ok(dir, 'task', 'add', `Task ${i}`);
    } finally {
      await run.stop();
    }
    const seg = await lastSegment(dir);
    const damaged = await damageTaskAdded(seg, 'TASK-007');

    const st = await cli(dir, ['status']);
    assert.equal(st.code, 0, shown(st));
    mentions(st.stdout, seg, 'lost', 'TASK-007', 'pipeline repair');
    const s = await status(dir);
    assert.deepEqual(
      Object.keys(s.tasks),
      ['TASK-001', 'TASK-002', 'TASK-003', 'TASK-004', 'TASK-005', 'TASK-006', 'TASK-008', 'TASK-009'],
      'every task after the damaged record is there',
    );
    assert.ok(s.warnings.length > 0 && s.warnings.some((w) => w.includes('TASK-007')), s.warnings.join('\n'));

    // Nothing leads over the loss: writes fail clearly, and change no file.
    const before = await stateFiles(dir, true);
    for (const args of [
      ['task', 'add', 'Ten'],
      ['run', '--until-idle'],
    ]) {
      mentions(await fails(dir, 1, ...args), 'damaged', 'pipeline repair --dry-run', 'fix:');
    }
    assert.deepEqual(await readFile(seg), damaged);

    const dry = await ok(dir, 'repair', '--dry-run');
    mentions(dry, 'Lost', 'TASK-007', 'A repair would do this', 'moved aside');
    assert.deepEqual(await stateFiles(dir, true), before, 'a dry run changes nothing');

    mentions(await ok(dir, 'repair'), 'Repaired:', 'moved aside');
    const aside = await asideFiles(dir);
    assert.equal(aside.length, 1, aside.join(', '));
    assert.deepEqual(await readFile(join(stateDirOf(dir), aside[0]!)), damaged, 'the damaged file is kept whole');
    const log = await readFile(join(dir, '.pipeline', 'logs', 'pipeline.log'), 'utf8');
    assert.match(log, /"event":"state:repaired"/);

    const after = await status(dir);
    assert.deepEqual(after.warnings, []);
    assert.equal(Object.keys(after.tasks).length, 8);
    await ok(dir, 'task', 'add', 'Ten');
    assert.equal(Object.keys((await status(dir)).tasks).length, 9);
    mentions(await ok(dir, 'repair'), 'Nothing to repair');
  });
});

test('forty task adds while nothing leads do not leave forty journal files', async () => {
  await withRepo({ init: true }, async ({ dir }) => {
    for (let i = 1; i <= 40; i++) await ok(dir, 'task', 'add', `Task ${i}`);
    const names = await readdir(stateDirOf(dir));
    assert.ok(names.length <= 20, `${names.length} files: ${names.join(', ')}`);
    const s = await status(dir);
    assert.equal(Object.keys(s.tasks).length, 40);
    assert.deepEqual(s.warnings, []);
  });
});
