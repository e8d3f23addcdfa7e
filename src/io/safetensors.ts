/**
 * The safetensors file format (https://github.com/huggingface/safetensors), read and written on the host.
 *
 *   bytes 0..8        N: the header's length in bytes, unsigned 64-bit little-endian
 *   bytes 8..8+N      the header: UTF-8 JSON, padded with spaces so that the data starts at a multiple of 8
 *                       { "__metadata__": { "key": "string value", ... },            (optional, strings only)
 *                         "<tensor name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, ... }
 *   bytes 8+N..       the data: each tensor's elements, row-major, little-endian, at [begin, end) relative to the
 *                     start of the data; the ranges are contiguous, do not overlap and cover the data exactly.
 *
 * nerfad writes F32, I32 and U32 tensors in name order and adds `nerfad.data_sha256` (SHA-256 of the data bytes)
 * to the metadata, so a corrupted file is detected on load (other tools ignore unknown metadata keys). Writing is
 * atomic: the bytes go to `<file>.tmp`, which is fsync'ed and renamed over the file, so a crash never leaves a
 * half-written checkpoint under the real name.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export type SafetensorsDType = 'F32' | 'I32' | 'U32';

export interface HostTensor {
  dtype: SafetensorsDType;
  shape: number[];
  data: Float32Array | Int32Array | Uint32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

const ITEM_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1 };
const SUPPORTED: readonly string[] = ['F32', 'I32', 'U32'];
const CHECKSUM_KEY = 'nerfad.data_sha256';
/** A sanity bound on the header (the reference implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(source: string, detail: string) {
    super(`${source}: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Serialises tensors (written in name order) and string metadata into safetensors bytes. */
export function encodeSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    if (name === '__metadata__') throw new Error('safetensors: "__metadata__" cannot name a tensor');
    if (!SUPPORTED.includes(t.dtype)) throw new Error(`safetensors: tensor '${name}' has unsupported dtype ${t.dtype}`);
    if (elementCount(t.shape) !== t.data.length) {
      throw new Error(`safetensors: tensor '${name}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    }
    const bytes = t.data.length * 4;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const data = new Uint8Array(offset);
  for (const name of names) {
    const t = tensors.get(name)!;
    const [begin] = (header[name] as { data_offsets: [number, number] }).data_offsets;
    data.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), begin);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') throw new Error(`safetensors: metadata '${key}' must be a string, got ${typeof value}`);
  }
  const meta = { ...metadata, [CHECKSUM_KEY]: createHash('sha256').update(data).digest('hex') };
  let json = JSON.stringify({ __metadata__: meta, ...header });
  const jsonBytes = new TextEncoder().encode(json);
  const padded = Math.ceil(jsonBytes.length / 8) * 8;
  json += ' '.repeat(padded - jsonBytes.length);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** Parses and validates safetensors bytes; `source` (the file name) starts every error message. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsFile {
  const fail = (detail: string): never => {
    throw new SafetensorsError(source, detail);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for a safetensors header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) {
    fail(`header length ${headerLength} exceeds the file's ${bytes.length} bytes (truncated or not a safetensors file)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!value || typeof value !== 'object') fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ '${k}' is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!info || typeof info !== 'object') fail(`tensor '${name}': header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string' || !(dtype in ITEM_BYTES)) fail(`tensor '${name}': unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
      fail(`tensor '${name}': shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isInteger(o) || o < 0) || offsets[0] > offsets[1]) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(offsets)} is not a [begin, end] pair`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = elementCount(shape as number[]) * ITEM_BYTES[dtype as string];
    if (end - begin !== expected) {
      fail(`tensor '${name}': ${end - begin} data bytes, but ${dtype} [${(shape as number[]).join(', ')}] needs ${expected}`);
    }
    if (end > dataLength) fail(`tensor '${name}': data [${begin}, ${end}) runs past the end of the data (${dataLength} bytes; truncated file?)`);
    entries.push({ name, dtype: dtype as string, shape: shape as number[], begin, end });
  }
  // The ranges must tile the data exactly: no gaps, no overlaps, nothing after the last one.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of byOffset) {
    if (e.begin !== cursor) {
      fail(`tensor '${e.name}': data starts at byte ${e.begin}, expected ${cursor} (ranges overlap or leave a gap)`);
    }
    cursor = e.end;
  }
  if (cursor !== dataLength) fail(`data section has ${dataLength} bytes, the tensors cover ${cursor} (trailing bytes or truncation)`);

  const data = bytes.subarray(dataStart);
  const checksum = metadata[CHECKSUM_KEY];
  if (checksum !== undefined && createHash('sha256').update(data).digest('hex') !== checksum) {
    fail('data checksum (nerfad.data_sha256) does not match: the file is corrupt');
  }
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    if (!SUPPORTED.includes(e.dtype)) {
      // Recorded as-is; the checkpoint loader names the tensor if it is wanted.
      tensors.set(e.name, { dtype: e.dtype as SafetensorsDType, shape: e.shape, data: new Float32Array(0) });
      continue;
    }
    // A fresh, aligned buffer (node's Buffer.slice would share memory with the file's pooled buffer).
    const copy = new Uint8Array(e.end - e.begin);
    copy.set(data.subarray(e.begin, e.end));
    const typed = e.dtype === 'F32' ? new Float32Array(copy.buffer) : e.dtype === 'I32' ? new Int32Array(copy.buffer) : new Uint32Array(copy.buffer);
    tensors.set(e.name, { dtype: e.dtype as SafetensorsDType, shape: e.shape, data: typed });
  }
  return { tensors, metadata };
}

/** Writes `bytes` to `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await open(tmp, 'w');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } catch (e) {
    await file.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await file.close();
  await rename(tmp, path);
  // Make the rename itself durable (not possible on every platform; best effort).
  try {
    const dir = await open(dirname(path), 'r');
    await dir.sync().catch(() => undefined);
    await dir.close();
  } catch {
    /* directories cannot be opened for sync on some systems */
  }
}

export async function saveSafetensors(path: string, tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string> = {}): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeSafetensors(bytes, path);
}
