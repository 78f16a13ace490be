import * as zlib from 'node:zlib';

/**
 * CRC-32 (the zlib / PNG polynomial), used to checksum journal lines and snapshots so recovery can
 * tell a whole record from a torn or damaged one.
 *
 * `zlib.crc32` is native and fast but only exists from Node 20.15 / 22.2; `engines` allows any Node
 * 20, so older runtimes get the table-driven version below. Both give the same numbers (the tests
 * check the fallback against known vectors).
 */

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/**
 * The portable implementation; exported for tests and for runtimes without `zlib.crc32`. `prev` is
 * the checksum of the bytes before `data`, so that a long stream is checksummed piece by piece.
 */
export function crc32Portable(data: Uint8Array, prev = 0): number {
  const t = (table ??= makeTable());
  let c = (prev ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

type Crc32Fn = (data: Uint8Array, prev?: number) => number;

const native: Crc32Fn | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (data, prev = 0) => zlib.crc32(data, prev) >>> 0
    : undefined;

/** CRC-32 of `data` as an unsigned 32-bit number; of the bytes before it and then `data`, given their `prev`. */
export const crc32: Crc32Fn = native ?? crc32Portable;

/** Whether the native implementation is in use (reported by the benchmark). */
export const crc32IsNative = native !== undefined;

/** Eight lower-case hex digits, the form the journal and snapshot headers use. */
export function crc32Hex(data: Uint8Array): string {
  return crc32(data).toString(16).padStart(8, '0');
}
