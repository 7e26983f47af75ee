// GGUF (v2/v3) header and tensor reader. Files are untrusted: every count, length, dimension and
// offset is checked against limits and against the file's size before anything is allocated.
import type { FileHandle } from 'node:fs/promises';
import { CheckpointInvalid } from '../errors.js';
import { allocBytes, allocFloats, fileSize, MAX_READ_BYTES, readExactly, readFloats } from './file.js';
import { f16ToF32 } from './half.js';

/** ggml tensor types this reader dequantizes. */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** GGUF metadata value types (the `gguf_type` enum). */
export const GgufValueType = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
  I64: 11,
  F64: 12,
} as const;

/** 64-bit integers are bigints, every other number a number; arrays hold one element type. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the contiguous (fastest) axis. */
  dims: number[];
  type: GgmlType;
  /** Byte offset from the start of the data section. */
  offset: number;
  bytes: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Absolute file offset of the data section. */
  dataOffset: number;
  fileSize: number;
}

const MAGIC = 0x46554747; // "GGUF" little-endian
const MAX_HEADER_BYTES = 512 * 2 ** 20;
const MAX_TENSORS = 1 << 16;
const MAX_KV = 1 << 16;
const MAX_STRING = 1 << 24;
/**
 * Elements of all metadata arrays together. Each costs 8 to 30 bytes of heap (a JS value, or a string
 * and its pointer), so this bounds the parsed metadata at about 128 MiB; real tokenizers need about
 * 1M (a 256k vocabulary's tokens, scores and token types, plus BPE merges).
 */
export const MAX_METADATA_ARRAY_ELEMENTS = 1 << 22;
const MAX_ELEMENTS = 2 ** 40;
const Q8_0_BLOCK = 32;
const Q8_0_BYTES = 34;

class Truncated extends Error {}

/** Reads a little-endian byte buffer; running past its end throws `Truncated` (the caller reads more). */
class Cursor {
  pos = 0;
  /** Elements of the metadata arrays read so far. */
  private arrayElements = 0;
  private readonly view: DataView;
  constructor(
    private readonly buf: Buffer,
    private readonly fail: (detail: string) => never,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): number {
    if (this.pos + n > this.buf.length) throw new Truncated();
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u32 = () => this.view.getUint32(this.need(4), true);
  u64(what: string, max: number): number {
    const v = this.view.getBigUint64(this.need(8), true);
    if (v > BigInt(max)) this.fail(`${what} is ${v}, above the limit of ${max}`);
    return Number(v);
  }
  string(): string {
    const len = this.u64('a string length', MAX_STRING);
    const at = this.need(len);
    return this.buf.toString('utf8', at, at + len);
  }
  value(type: number, key: string, depth = 0): GgufValue {
    const v = this.view;
    switch (type) {
      case GgufValueType.U8:
        return v.getUint8(this.need(1));
      case GgufValueType.I8:
        return v.getInt8(this.need(1));
      case GgufValueType.U16:
        return v.getUint16(this.need(2), true);
      case GgufValueType.I16:
        return v.getInt16(this.need(2), true);
      case GgufValueType.U32:
        return v.getUint32(this.need(4), true);
      case GgufValueType.I32:
        return v.getInt32(this.need(4), true);
      case GgufValueType.F32:
        return v.getFloat32(this.need(4), true);
      case GgufValueType.BOOL:
        return v.getUint8(this.need(1)) !== 0;
      case GgufValueType.STRING:
        return this.string();
      case GgufValueType.U64:
        return v.getBigUint64(this.need(8), true);
      case GgufValueType.I64:
        return v.getBigInt64(this.need(8), true);
      case GgufValueType.F64:
        return v.getFloat64(this.need(8), true);
      case GgufValueType.ARRAY: {
        if (depth > 0) this.fail('nested metadata arrays are not supported');
        const elementType = this.u32();
        const n = this.u64(`the array length of ${key}`, Number.MAX_SAFE_INTEGER);
        // Refused before any element is read, so a large count allocates nothing.
        this.arrayElements += n;
        if (this.arrayElements > MAX_METADATA_ARRAY_ELEMENTS) {
          this.fail(
            `metadata arrays have more than ${MAX_METADATA_ARRAY_ELEMENTS} elements in all (key ${key} ` +
              `brings them to ${this.arrayElements}), more than any tokenizer needs; the file is damaged or not a model`,
          );
        }
        const out: GgufValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(elementType, key, depth + 1));
        return out;
      }
      default:
        return this.fail(`unknown metadata value type ${type}`);
    }
  }
}

function tensorBytes(type: number, dims: number[], fail: (d: string) => never): number {
  const n = dims.reduce((p, d) => p * d, 1);
  if (n > MAX_ELEMENTS) fail(`a tensor has ${n} elements, above the limit of ${MAX_ELEMENTS}`);
  if (type === GgmlType.F32) return 4 * n;
  if (type === GgmlType.F16) return 2 * n;
  if (type === GgmlType.Q8_0) {
    if (dims[0]! % Q8_0_BLOCK !== 0) fail(`a q8_0 tensor's rows (${dims[0]}) are not a multiple of 32`);
    return (n / Q8_0_BLOCK) * Q8_0_BYTES;
  }
  return fail(`tensor type ${type} is not supported (only f32 = 0, f16 = 1, q8_0 = 8)`);
}

function parse(buf: Buffer, fileSize: number, fail: (d: string) => never): GgufHeader {
  const c = new Cursor(buf, fail);
  if (c.u32() !== MAGIC) fail('not a GGUF file (bad magic)');
  const version = c.u32();
  if (version !== 2 && version !== 3) fail(`GGUF version ${version} is not supported (2 or 3)`);
  const tensorCount = c.u64('the tensor count', MAX_TENSORS);
  const kvCount = c.u64('the metadata count', MAX_KV);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string();
    if (metadata.has(key)) fail(`metadata key ${key} appears twice`);
    metadata.set(key, c.value(c.u32(), key));
  }
  const alignment = metadata.get('general.alignment') ?? 32;
  if (typeof alignment !== 'number' || !Number.isInteger(alignment) || alignment < 1 || alignment > 1 << 20) {
    fail(`general.alignment ${String(alignment)} is not a positive integer ≤ 2^20`);
  }
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string();
    if (names.has(name)) fail(`tensor ${name} appears twice`);
    names.add(name);
    const rank = c.u32();
    if (rank < 1 || rank > 4) fail(`tensor ${name} has ${rank} dimensions (1 to 4 allowed)`);
    const dims = Array.from({ length: rank }, () => c.u64(`a dimension of ${name}`, MAX_ELEMENTS));
    if (dims.some((d) => d < 1)) fail(`tensor ${name} has an empty dimension`);
    const type = c.u32();
    const offset = c.u64(`the offset of ${name}`, Number.MAX_SAFE_INTEGER);
    if (offset % alignment !== 0) fail(`tensor ${name}'s offset ${offset} is not aligned to ${alignment}`);
    tensors.push({ name, dims, type: type as GgmlType, offset, bytes: tensorBytes(type, dims, fail) });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  for (const t of tensors) {
    if (dataOffset + t.offset + t.bytes > fileSize) {
      fail(`tensor ${t.name} (${t.bytes} bytes at ${t.offset}) lies past the end of the file`);
    }
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    if (prev.offset + prev.bytes > byOffset[i]!.offset)
      fail(`tensors ${prev.name} and ${byOffset[i]!.name} overlap`);
  }
  return { version, metadata, tensors, dataOffset, fileSize };
}

/** Reads and validates the header: metadata, tensor table, and that every tensor lies inside the file. */
export async function readGgufHeader(path: string, file: FileHandle): Promise<GgufHeader> {
  const fail = (detail: string): never => {
    throw new CheckpointInvalid(path, detail);
  };
  const total = await fileSize(path, file);
  // Parse what has been read; on running out, read twice as much (the header is usually < 1 MiB).
  for (let size = Math.min(total, 1 << 20); ; size = Math.min(total, size * 2, MAX_HEADER_BYTES)) {
    const buf = Buffer.alloc(size);
    await readExactly(path, file, buf, 0, 'the header');
    try {
      return parse(buf, total, fail);
    } catch (e) {
      if (!(e instanceof Truncated)) throw e;
      if (size === total) fail('the file ends inside the header');
      if (size === MAX_HEADER_BYTES) fail(`the header is larger than ${MAX_HEADER_BYTES} bytes`);
    }
  }
}

/**
 * Reads one tensor and dequantizes it to f32 (same element order: dims[0] fastest), in reads of at
 * most `chunkBytes` (default 1 GiB): f32 straight into the result, f16 and q8_0 through a staging
 * buffer of that size.
 */
/** Bytes of f16 or q8_0 read and converted at a time. */
const DEQUANT_CHUNK_BYTES = 16 * 2 ** 20;

export async function readGgufTensor(
  path: string,
  file: FileHandle,
  header: GgufHeader,
  t: GgufTensorInfo,
  options: { chunkBytes?: number } = {},
): Promise<Float32Array> {
  const what = `tensor ${t.name}`;
  const n = t.dims.reduce((p, d) => p * d, 1);
  const out = allocFloats(path, n, what);
  const at = header.dataOffset + t.offset;
  const chunkBytes = options.chunkBytes ?? MAX_READ_BYTES;
  if (t.type === GgmlType.F32) {
    await readFloats(path, file, out, at, what, chunkBytes);
    return out;
  }
  // Whole f16 values or q8_0 blocks per chunk, each read (a turn of the event loop) before its
  // conversion: a 1 GiB chunk of q8_0 takes about 4.5 s to convert in one go, 16 MiB about 70 ms.
  const [unit, perUnit] = t.type === GgmlType.F16 ? [2, 1] : [Q8_0_BYTES, Q8_0_BLOCK];
  const step = Math.max(unit, Math.floor(Math.min(chunkBytes, DEQUANT_CHUNK_BYTES, t.bytes) / unit) * unit);
  const raw = allocBytes(path, step, what);
  for (let done = 0; done < t.bytes; done += step) {
    const chunk = raw.subarray(0, Math.min(step, t.bytes - done));
    await readExactly(path, file, chunk, at + done, what);
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const first = (done / unit) * perUnit;
    if (t.type === GgmlType.F16) {
      for (let i = 0; i < chunk.length / 2; i++) out[first + i] = f16ToF32(view.getUint16(2 * i, true));
    } else {
      for (let b = 0; b < chunk.length / Q8_0_BYTES; b++) {
        const d = f16ToF32(view.getUint16(b * Q8_0_BYTES, true));
        const o = first + b * Q8_0_BLOCK;
        for (let j = 0; j < Q8_0_BLOCK; j++) out[o + j] = d * view.getInt8(b * Q8_0_BYTES + 2 + j);
      }
    }
  }
  return out;
}
