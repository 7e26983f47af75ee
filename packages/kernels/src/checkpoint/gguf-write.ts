// Writes a Llama model and its tokenizer as a GGUF v3 file (tests and benchmarks make small ones).
import { writeFile } from 'node:fs/promises';
import { LAYER_KEYS, type LlamaWeights } from '../llama/weights.js';
import { GgmlType, GgufValueType } from './gguf.js';
import { LAYER_TENSORS, SPM_SPACE } from './gguf-llama.js';
import { f32ToF16 } from './half.js';
import { quantizeQ8_0 } from './q8.js';
import type { Tokenizer } from './tokenizer.js';

const ALIGNMENT = 32;
type Meta = [key: string, type: number, value: unknown, elementType?: number];

class Writer {
  private readonly parts: Buffer[] = [];
  length = 0;
  push(b: Buffer) {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  value(type: number, v: unknown, elementType?: number) {
    if (type === GgufValueType.STRING) return this.string(v as string);
    if (type === GgufValueType.U32) return this.u32(v as number);
    const b = Buffer.alloc(4);
    if (type === GgufValueType.F32) b.writeFloatLE(v as number);
    else if (type === GgufValueType.I32) b.writeInt32LE(v as number);
    else if (type === GgufValueType.ARRAY) {
      const items = v as unknown[];
      this.u32(elementType!);
      this.u64(items.length);
      for (const item of items) this.value(elementType!, item);
      return;
    } else throw new Error(`writer: metadata type ${type} not needed`);
    this.push(b);
  }
  pad() {
    this.push(Buffer.alloc((ALIGNMENT - (this.length % ALIGNMENT)) % ALIGNMENT));
  }
  concat() {
    return Buffer.concat(this.parts);
  }
}

/** Bytes of `data` as a ggml tensor of `type` (q8_0: per 32 values an f16 scale and 32 int8, as llama.cpp). */
function encodeTensor(data: Float32Array, type: GgmlType): Buffer {
  if (type === GgmlType.F32) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (type === GgmlType.F16) {
    const out = Buffer.alloc(2 * data.length);
    for (let i = 0; i < data.length; i++) out.writeUInt16LE(f32ToF16(data[i]!), 2 * i);
    return out;
  }
  const { q, halves } = quantizeQ8_0(data);
  const out = Buffer.alloc((data.length / 32) * 34);
  for (let b = 0; b < halves.length; b++) {
    out.writeUInt16LE(halves[b]!, 34 * b);
    out.set(new Uint8Array(q.buffer, 32 * b, 32), 34 * b + 2);
  }
  return out;
}

/**
 * Writes `weights` as GGUF with `type` for the 2-D tensors (norms stay f32, as llama.cpp writes
 * them; q8_0 needs rows that are a multiple of 32, and other tensors fall back to f32).
 */
export async function writeGguf(
  path: string,
  weights: LlamaWeights,
  tokenizer: Tokenizer,
  type: 'f32' | 'f16' | 'q8_0' = 'f32',
): Promise<void> {
  const c = weights.config;
  const want = { f32: GgmlType.F32, f16: GgmlType.F16, q8_0: GgmlType.Q8_0 }[type];
  const tensors: [string, number[], Float32Array][] = [
    ['token_embd.weight', [c.dim, c.vocab], weights.tokenEmbedding],
  ];
  for (let l = 0; l < c.layers; l++) {
    for (const key of LAYER_KEYS) {
      const [name, dims] = LAYER_TENSORS[key];
      tensors.push([`blk.${l}.${name}.weight`, dims(c), weights[key][l]!]);
    }
  }
  tensors.push(['output_norm.weight', [c.dim], weights.rmsFinal]);
  if (weights.wcls !== weights.tokenEmbedding)
    tensors.push(['output.weight', [c.dim, c.vocab], weights.wcls]);
  const S = GgufValueType;
  const meta: Meta[] = [
    ['general.architecture', S.STRING, 'llama'],
    ['general.alignment', S.U32, ALIGNMENT],
    ['llama.context_length', S.U32, c.seqLen],
    ['llama.embedding_length', S.U32, c.dim],
    ['llama.block_count', S.U32, c.layers],
    ['llama.feed_forward_length', S.U32, c.hiddenDim],
    ['llama.attention.head_count', S.U32, c.heads],
    ['llama.attention.head_count_kv', S.U32, c.kvHeads],
    ['llama.rope.dimension_count', S.U32, c.dim / c.heads],
    ['llama.rope.freq_base', S.F32, c.theta ?? 10000],
    ['llama.attention.layer_norm_rms_epsilon', S.F32, c.eps ?? 1e-5],
    ['tokenizer.ggml.model', S.STRING, 'llama'],
    [
      'tokenizer.ggml.tokens',
      S.ARRAY,
      tokenizer.pieces.map((p) => Buffer.from(p).toString('utf8').replaceAll(' ', SPM_SPACE)),
      S.STRING,
    ],
    ['tokenizer.ggml.scores', S.ARRAY, [...tokenizer.scores], S.F32],
    ['tokenizer.ggml.bos_token_id', S.U32, tokenizer.bos],
    ['tokenizer.ggml.eos_token_id', S.U32, tokenizer.eos],
  ];
  const w = new Writer();
  w.u32(0x46554747);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [key, t, v, et] of meta) {
    w.string(key);
    w.u32(t);
    w.value(t, v, et);
  }
  const blobs = tensors.map(([, dims, data]) => {
    const t = dims.length === 1 || (want === GgmlType.Q8_0 && dims[0]! % 32 !== 0) ? GgmlType.F32 : want;
    return { t, bytes: encodeTensor(data, t) };
  });
  let offset = 0;
  tensors.forEach(([name, dims], i) => {
    w.string(name);
    w.u32(dims.length);
    for (const d of dims) w.u64(d);
    w.u32(blobs[i]!.t);
    w.u64(offset);
    offset += Math.ceil(blobs[i]!.bytes.length / ALIGNMENT) * ALIGNMENT;
  });
  w.pad();
  for (const { bytes } of blobs) {
    w.push(bytes);
    w.pad();
  }
  await writeFile(path, w.concat());
}
