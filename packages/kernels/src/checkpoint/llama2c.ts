// llama2.c checkpoints (run.c's format): a Config of 7 int32, then f32 tensors in its order.
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { CheckpointInvalid } from '../errors.js';
import {
  configProblem,
  LAYER_KEYS,
  type LayerKey,
  type LlamaConfig,
  type LlamaWeights,
  shapes,
} from '../llama/weights.js';

const HEADER_BYTES = 7 * 4;

/** Reads a llama2.c checkpoint (negative vocab_size: the classifier is stored after the layers). */
export async function loadLlama2c(path: string): Promise<LlamaWeights> {
  const fail = (detail: string): never => {
    throw new CheckpointInvalid(path, detail);
  };
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (cause) {
    const reason = (cause as { code?: unknown }).code ?? 'unreadable';
    throw new CheckpointInvalid(path, `cannot read the file (${String(reason)}); check the path`, { cause });
  }
  if (size < HEADER_BYTES) fail('file is shorter than the header');
  const fh = await open(path, 'r');
  const head = Buffer.alloc(HEADER_BYTES);
  try {
    await fh.read(head, 0, HEADER_BYTES, 0);
  } finally {
    await fh.close();
  }
  const ints = Array.from({ length: 7 }, (_, i) => head.readInt32LE(4 * i));
  const [dim, hiddenDim, layers, heads, kvHeads, vocabSigned, seqLen] = ints as [number, ...number[]];
  const config: LlamaConfig = {
    dim,
    hiddenDim: hiddenDim!,
    layers: layers!,
    heads: heads!,
    kvHeads: kvHeads!,
    vocab: Math.abs(vocabSigned!),
    seqLen: seqLen!,
  };
  const problem = configProblem(config);
  if (problem) fail(`header ${ints.join(',')} is not a valid config: ${problem}`);
  const shared = vocabSigned! > 0;
  const expected = HEADER_BYTES + 4 * floatCount(config, shared);
  // Checked before reading, so a header cannot make us allocate more than the file holds.
  if (size !== expected) fail(`file has ${size} bytes, but its header ${ints.join(',')} needs ${expected}`);
  const buf = await readFile(path);
  if (buf.length !== expected) fail('file changed while it was read');
  const floats = new Float32Array(
    buf.buffer.slice(buf.byteOffset + HEADER_BYTES, buf.byteOffset + buf.length),
  );
  let off = 0;
  const take = (n: number) => {
    off += n;
    return floats.subarray(off - n, off);
  };
  const sh = shapes(config);
  const tokenEmbedding = take(config.vocab * config.dim);
  const w = {} as Record<LayerKey, Float32Array[]>;
  for (const key of LAYER_KEYS) {
    const all = take(sh[key] * config.layers);
    w[key] = Array.from({ length: config.layers }, (_, l) => all.subarray(l * sh[key], (l + 1) * sh[key]));
  }
  const rmsFinal = take(config.dim);
  take(config.seqLen * (config.dim / config.heads)); // freq_cis_real and _imag: RoPE is computed, not read
  const wcls = shared ? tokenEmbedding : take(config.vocab * config.dim);
  return { config, synthetic: false, tokenEmbedding, ...w, rmsFinal, wcls };
}

function floatCount(c: LlamaConfig, shared: boolean): number {
  const sh = shapes(c);
  const layer = LAYER_KEYS.reduce((s, k) => s + sh[k], 0);
  const cls = shared ? 0 : c.vocab * c.dim;
  return c.vocab * c.dim + c.layers * layer + c.dim + c.seqLen * (c.dim / c.heads) + cls;
}

/** Writes weights as a llama2.c checkpoint; the classifier is shared when it is the embedding table. */
export async function writeLlama2c(path: string, weights: LlamaWeights): Promise<void> {
  const c = weights.config;
  const shared = weights.wcls === weights.tokenEmbedding;
  const header = Int32Array.of(
    c.dim,
    c.hiddenDim,
    c.layers,
    c.heads,
    c.kvHeads,
    shared ? c.vocab : -c.vocab,
    c.seqLen,
  );
  const parts: Float32Array[] = [weights.tokenEmbedding];
  for (const key of LAYER_KEYS) parts.push(...weights[key]);
  parts.push(weights.rmsFinal, new Float32Array(c.seqLen * (c.dim / c.heads)));
  if (!shared) parts.push(weights.wcls);
  const chunks = [
    Buffer.from(header.buffer),
    ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)),
  ];
  await writeFile(path, Buffer.concat(chunks));
}
