import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LOG_ROTATION, rotateLogFile, rotateLogIfFull } from '../../../src/engine/observability/jsonLogger';

/** The rotation every log shares (pipeline.log and the agents' logs): file → .1 → … → .maxFiles, oldest dropped. */

async function inDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-rotation-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void test('rotateLogFile shifts every rotated file up one and drops the oldest beyond maxFiles', async () => {
  await inDir(async (dir) => {
    const log = join(dir, 'agent.log');
    await writeFile(log, 'current\n');
    for (let i = 1; i <= 3; i++) await writeFile(`${log}.${i}`, `rotated ${i}\n`);
    await rotateLogFile(log, 3);
    assert.deepEqual((await readdir(dir)).sort(), ['agent.log.1', 'agent.log.2', 'agent.log.3']);
    assert.equal(await readFile(`${log}.1`, 'utf8'), 'current\n');
    assert.equal(await readFile(`${log}.2`, 'utf8'), 'rotated 1\n');
    assert.equal(await readFile(`${log}.3`, 'utf8'), 'rotated 2\n');
  });
});

void test('rotateLogIfFull rotates at maxBytes only; a missing file is not full', async () => {
  await inDir(async (dir) => {
    const log = join(dir, 'agent.log');
    assert.equal(await rotateLogIfFull(log, { maxBytes: 10 }), false);
    await writeFile(log, '123456789');
    assert.equal(await rotateLogIfFull(log, { maxBytes: 10 }), false);
    await writeFile(log, '1234567890');
    assert.equal(await rotateLogIfFull(log, { maxBytes: 10 }), true);
    assert.deepEqual(await readdir(dir), ['agent.log.1']);
    assert.deepEqual(LOG_ROTATION, { maxBytes: 5 * 1024 * 1024, maxFiles: 5 });
  });
});
