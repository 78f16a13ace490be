import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { ROOT, requireCli } from './cliKit';

/**
 * The CLI's launcher (dist/cli.js, src/cli/launcher.ts) loads the bundle with a V8 code cache kept
 * beside it. A cache is used only when it was made from the very bundle beside it and is whole;
 * anything else (another build's, a torn or foreign file) is ignored and replaced, and the CLI runs
 * the same either way. Each case runs a copy of the built launcher and bundle in a directory of its own.
 */

requireCli();
const run = promisify(execFile);
const MAGIC = 0x41504331;

async function copyOfCli(): Promise<{ dir: string; cache: string; version: () => Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pipeline-launcher-'));
  await copyFile(join(ROOT, 'dist', 'cli.js'), join(dir, 'cli.js'));
  await copyFile(join(ROOT, 'dist', 'cliMain.js'), join(dir, 'cliMain.js'));
  return {
    dir,
    cache: join(dir, 'cliMain.js.cache'),
    version: async () => (await run(process.execPath, [join(dir, 'cli.js'), '--version'])).stdout.trim(),
  };
}

/** The header the launcher writes: magic, the bundle's checksum, the cache data's checksum. */
function header(buf: Buffer): { magic: number; sourceCrc: number; dataCrc: number; dataOk: boolean } {
  return {
    magic: buf.readUInt32LE(0),
    sourceCrc: buf.readUInt32LE(4),
    dataCrc: buf.readUInt32LE(8),
    dataOk: crc32(buf.subarray(12)) >>> 0 === buf.readUInt32LE(8),
  };
}

void test('the first run writes a code cache made from the bundle beside it; later runs use it', async () => {
  const c = await copyOfCli();
  try {
    assert.equal(await c.version(), '0.1.0');
    const first = await readFile(c.cache);
    const h = header(first);
    assert.equal(h.magic, MAGIC);
    assert.equal(h.sourceCrc, crc32(await readFile(join(c.dir, 'cliMain.js'))) >>> 0);
    assert.ok(h.dataOk, 'the cache data matches its checksum');
    // A run that accepts the cache leaves it as it is.
    assert.equal(await c.version(), '0.1.0');
    assert.ok((await readFile(c.cache)).equals(first), 'an accepted cache is not rewritten');
  } finally {
    await rm(c.dir, { recursive: true, force: true });
  }
});

void test('a cache of another bundle, a torn one or a foreign file is not used, and is replaced', async () => {
  const c = await copyOfCli();
  try {
    await c.version();
    const good = await readFile(c.cache);
    const otherBuild = Buffer.from(good);
    otherBuild.writeUInt32LE((good.readUInt32LE(4) + 1) >>> 0, 4);
    const torn = good.subarray(0, Math.floor(good.length / 2));
    const flipped = Buffer.from(good);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 10) ^ 0xff, flipped.length - 10);
    for (const [what, bytes] of [
      ['another build', otherBuild],
      ['torn', torn],
      ['a damaged byte', flipped],
      ['foreign', Buffer.from('not a cache at all')],
    ] as const) {
      await writeFile(c.cache, bytes);
      assert.equal(await c.version(), '0.1.0', `${what}: the CLI runs`);
      const after = header(await readFile(c.cache));
      assert.equal(after.magic, MAGIC, `${what}: replaced`);
      assert.equal(after.sourceCrc, good.readUInt32LE(4), `${what}: replaced by one of this bundle`);
      assert.ok(after.dataOk, `${what}: the new cache is whole`);
    }
  } finally {
    await rm(c.dir, { recursive: true, force: true });
  }
});

void test('the build writes the bundle in ASCII alone, wrapped as the module function the launcher compiles', async () => {
  const bytes = await readFile(join(ROOT, 'dist', 'cliMain.js'));
  const outside = bytes.findIndex((b) => b > 0x7f);
  assert.equal(outside, -1, `dist/cliMain.js has a byte outside ASCII at ${outside}`);
  assert.ok(bytes.toString('latin1').startsWith('(function (exports, require, module, __filename, __dirname) {'));
});

void test('a bundle that is not ASCII or not wrapped (a watch build) is decoded and wrapped by the launcher', async () => {
  const c = await copyOfCli();
  try {
    const text = (await readFile(join(c.dir, 'cliMain.js'), 'latin1'))
      .replace(/^\(function \(exports, require, module, __filename, __dirname\) \{/, '')
      .replace(/\}\)\n\/\/# sourceMappingURL=cliMain\.js\.map\n?$/, '');
    assert.ok(!text.startsWith('(function'), 'the copy is unwrapped');
    // A character outside ASCII, in a string the CLI prints: decoded as UTF-8, it reads as written.
    await writeFile(
      join(c.dir, 'cliMain.js'),
      `${text.replace('.version("0.1.0")', '.version("0.1.0 \u2192 ok")')}\n`,
      'utf8',
    );
    assert.equal(await c.version(), '0.1.0 \u2192 ok');
    assert.equal(await c.version(), '0.1.0 \u2192 ok', 'and again with its code cache');
  } finally {
    await rm(c.dir, { recursive: true, force: true });
  }
});
