import { isAscii } from 'node:buffer';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import * as zlib from 'node:zlib';

/**
 * `pipeline`'s executable (dist/cli.js): loads the CLI bundle (dist/cliMain.js) with a V8 code
 * cache, so that a command does not spend its first 100 ms (several times that on a busy machine)
 * compiling 1.5 MB of JavaScript, most of which it never runs. Node 22 does this by itself
 * (`module.enableCompileCache`); Node 20 needs it done here.
 *
 * The cache lives next to the bundle (dist/cliMain.js.cache), written by the first run after a build
 * (the build makes one), so it is exactly as trustworthy as the code beside it; where dist/ is not
 * writable there is simply no cache. V8 checks that the cache fits its own version and flags, but of
 * the source only its length, so the file also carries the checksum of the source it was made from
 * and of itself: a cache for another build, or a torn one, is never used.
 *
 * The build writes the bundle already wrapped as a CommonJS module's function, in ASCII alone
 * (scripts/build.mjs), so its text is compiled as read: one one-byte copy of the source, not a
 * decoded two-byte one plus a wrapped copy (8 MB of heap for a 2 MB bundle). A bundle that is not
 * ASCII (a watch build) is decoded as UTF-8, and one that is not wrapped is wrapped here.
 */

const MAGIC = 0x41504331; // "APC1"
const HEADER = 12;
/** How the build begins the bundle (CLI_WRAPPER in scripts/build.mjs). */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {';

interface CliModule {
  runCli(): void;
}

function crc(data: Uint8Array): number | undefined {
  const f = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  return f ? f(data) >>> 0 : undefined;
}

function readCache(path: string, sourceCrc: number): Buffer | undefined {
  try {
    const buf = readFileSync(path);
    if (buf.length <= HEADER || buf.readUInt32LE(0) !== MAGIC || buf.readUInt32LE(4) !== sourceCrc) return undefined;
    const data = buf.subarray(HEADER);
    return crc(data) === buf.readUInt32LE(8) ? data : undefined;
  } catch {
    return undefined;
  }
}

function writeCache(path: string, sourceCrc: number, data: Buffer): void {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(sourceCrc, 4);
  header.writeUInt32LE(crc(data) ?? 0, 8);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, Buffer.concat([header, data]));
    renameSync(tmp, path);
  } catch {
    // A read-only installation runs without a cache.
  }
}

/**
 * V8 grows its young generation (doubling it, up to 16 MB a half) when most of what it allocates
 * survives, which is what loading a large state is: every task and index entry lives to the end of
 * the command. The space grown then stays committed, so a read-only command on a 6 000-task state
 * peaked 10 MB higher for room it used once. Kept at its starting size, the young generation is
 * collected more often, each time as quickly (what survives is moved to the old generation either
 * way), and the process's peak follows the state it holds. A long-running command pays a few more,
 * equally short, scavenges. Set here, before the bundle is compiled, so that the code cache (which
 * V8 ties to its flags) is made and used under the same flags.
 */
function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

function load(): CliModule {
  keepYoungGenerationSmall();
  const file = join(__dirname, 'cliMain.js');
  const cachePath = `${file}.cache`;
  const bytes = readFileSync(file);
  const sourceCrc = crc(bytes);
  const cached = sourceCrc === undefined ? undefined : readCache(cachePath, sourceCrc);
  const text = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  const script = new Script(text.startsWith(WRAPPER_HEAD) ? text : Module.wrap(text), {
    filename: file,
    ...(cached ? { cachedData: cached } : {}),
  });
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(__dirname);
  const wrapper = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: Module,
    filename: string,
    dirname: string,
  ) => void;
  wrapper.call(mod.exports, mod.exports, createRequire(file), mod, file, __dirname);
  mod.loaded = true;
  if (sourceCrc !== undefined && (!cached || script.cachedDataRejected)) {
    // Made at exit, so it also holds the functions this command compiled.
    process.once('exit', () => writeCache(cachePath, sourceCrc, script.createCachedData()));
  }
  return mod.exports as CliModule;
}

load().runCli();
