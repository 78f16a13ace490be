import { access, copyFile, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Small file-system helpers for the state store: durable writes, and moving damaged files aside
 * instead of deleting them. Everything is async (`node:fs/promises`): the store runs inside the VS
 * Code extension host, where a synchronous call blocks every extension.
 */

export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const code = e.code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function isEnoent(e: unknown): boolean {
  return errnoCode(e) === 'ENOENT';
}

/**
 * Makes a directory entry (a create, rename or unlink) durable. Without it a rename can be lost in a
 * power cut even though the renamed file's data was synced. Windows cannot open a directory for
 * syncing and does not need it (NTFS journals metadata), so the error is ignored there.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    if (process.platform !== 'win32') throw e;
  } finally {
    await fh?.close();
  }
}

/**
 * Eight random hex digits. From the global Web Crypto object, which Node loads on first use: a
 * read-only command writes no temp file and so never loads node:crypto (a dozen modules to compile
 * at every start).
 */
function randomHex(): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(4))).toString('hex');
}

/** A temp-file name next to `path` that sweeps recognise by its `.tmp-` infix. */
export function tempNameFor(path: string): string {
  return `${path}.tmp-${process.pid}-${randomHex()}`;
}

/** Whether a directory entry is one of our temp files (see `tempNameFor`). */
export function isTempName(name: string): boolean {
  return /\.tmp-\d+-[0-9a-f]{8}$/.test(name);
}

/**
 * Writes `data` to `path` so that a crash leaves either the old file or the new one, never a mix:
 * temp file, fsync, then (after `beforeRename`, which may veto by throwing) rename and fsync the
 * directory. The temp file is removed when anything fails.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
  beforeRename?: () => Promise<void>,
): Promise<void> {
  const tmp = tempNameFor(path);
  const fh = await open(tmp, 'wx');
  let renamed = false;
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) await fh.writeFile(data);
    else for (const chunk of data) await fh.writeFile(chunk);
    await fh.sync();
    await fh.close();
    if (beforeRename) await beforeRename();
    await rename(tmp, path);
    renamed = true;
    await fsyncDir(dirname(path));
  } finally {
    if (!renamed) {
      await fh.close().catch(() => undefined);
      await unlinkQuiet(tmp);
    }
  }
}

export async function unlinkQuiet(path: string): Promise<void> {
  await unlink(path).catch((e: unknown) => {
    if (!isEnoent(e)) throw e;
  });
}

/** A file-name-safe timestamp: 2026-11-24T18-26-57-123Z. */
export function fileTimestamp(d = new Date()): string {
  return d.toISOString().replace(/[:.]/g, '-');
}

/** Whether a path exists; errors other than 'not found' are thrown, not taken for absence. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (isEnoent(e)) return false;
    throw e;
  }
}

/** Whether a path can be seen: any error (missing, no permission, a file on the way) counts as absent. */
export async function existsQuiet(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** A free name `<path>.<tag>-<timestamp>` (with a counter when two land in one millisecond). */
async function asideName(path: string, tag: string): Promise<string> {
  const base = `${path}.${tag}-${fileTimestamp()}`;
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? base : `${base}-${i}`;
    if (!(await exists(candidate))) return candidate;
  }
}

/**
 * Renames a damaged or unusable file out of the way, keeping every byte for a person to inspect.
 * Returns the new path.
 */
export async function moveAside(path: string, tag = 'corrupt'): Promise<string> {
  const target = await asideName(path, tag);
  await rename(path, target);
  await fsyncDir(dirname(path));
  return target;
}

/**
 * Copies a file aside (synced) before the caller cuts it, so that a truncation never destroys
 * anything. Returns the copy's path.
 */
export async function copyAside(path: string, tag = 'corrupt'): Promise<string> {
  const target = await asideName(path, tag);
  await copyFile(path, target);
  const fh = await open(target, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsyncDir(dirname(path));
  return target;
}

/** The bytes of a file from `offset` to its end (empty when it is no longer). */
export async function readFrom(path: string, offset: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(size - offset);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === buf.length ? buf : buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** Cuts a file to `size` bytes and syncs it. */
export async function truncateFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(size);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes the whole buffer at the handle's position (a write may take only part of it). */
export async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}
