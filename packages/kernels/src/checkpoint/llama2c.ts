// llama2.c checkpoints (run.c's format): a Config of 7 int32, then f32 tensors in its order.
import { writeFile } from 'node:fs/promises';
import { CheckpointInvalid } from '../errors.js';
import {
  configProblem,
  contextLimit,
  LAYER_KEYS,
  type LayerKey,
  type LlamaConfig,
  type LlamaWeights,
  type LoadOptions,
  MAX_VOCAB,
  shapes,
} from '../llama/weights.js';
import { allocFloats, fileSize, openCheckpoint, readExactly, readFloats } from './file.js';

const HEADER_BYTES = 7 * 4;

/**
 * Reads a llama2.c checkpoint (negative vocab_size: the classifier is stored after the layers),
 * tensor by tensor, so its size is bounded by memory alone; the context is cut to `maxContext`.
 */
/** The vocabulary size a llama2.c checkpoint's header states (its sign says whether wcls is shared). */
export async function llama2cVocab(path: string): Promise<number> {
  const file = await openCheckpoint(path);
  try {
    if ((await fileSize(path, file)) < HEADER_BYTES)
      throw new CheckpointInvalid(path, 'file is shorter than the header');
    const head = Buffer.alloc(HEADER_BYTES);
    await readExactly(path, file, head, 0, 'the header');
    const vocab = Math.abs(head.readInt32LE(20));
    if (vocab < 1 || vocab > MAX_VOCAB)
      throw new CheckpointInvalid(path, `header vocab ${vocab} is not 1..${MAX_VOCAB}`);
    return vocab;
  } finally {
    await file.close();
  }
}

export async function loadLlama2c(path: string, options: LoadOptions = {}): Promise<LlamaWeights> {
  const maxContext = contextLimit(options.maxContext);
  const fail = (detail: string): never => {
    throw new CheckpointInvalid(path, detail);
  };
  const file = await openCheckpoint(path);
  try {
    const size = await fileSize(path, file);
    if (size < HEADER_BYTES) fail('file is shorter than the header');
    const head = Buffer.alloc(HEADER_BYTES);
    await readExactly(path, file, head, 0, 'the header');
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
    const problem = configProblem(config, maxContext);
    if (problem) fail(`header ${ints.join(',')} is not a valid config: ${problem}`);
    const shared = vocabSigned! > 0;
    const expected = HEADER_BYTES + 4 * floatCount(config, shared);
    // Checked before reading, so a header cannot make us allocate more than the file holds.
    if (size !== expected) fail(`file has ${size} bytes, but its header ${ints.join(',')} needs ${expected}`);
    let at = HEADER_BYTES;
    const take = async (n: number, what: string) => {
      const out = allocFloats(path, n, what);
      await readFloats(path, file, out, at, what);
      at += 4 * n;
      return out;
    };
    const sh = shapes(config);
    const tokenEmbedding = await take(config.vocab * config.dim, 'token_embedding_table');
    const w = {} as Record<LayerKey, Float32Array[]>;
    for (const key of LAYER_KEYS) {
      w[key] = [];
      for (let l = 0; l < config.layers; l++) w[key].push(await take(sh[key], `${key} of layer ${l}`));
    }
    const rmsFinal = await take(config.dim, 'rms_final_weight');
    at += 4 * config.seqLen * (config.dim / config.heads); // freq_cis_real and _imag: RoPE is computed, not read
    const wcls = shared ? tokenEmbedding : await take(config.vocab * config.dim, 'wcls');
    // The file's context sized its RoPE tables; the KV cache holds what is kept of it.
    const kept = { ...config, seqLen: Math.min(config.seqLen, maxContext) };
    return { config: kept, synthetic: false, tokenEmbedding, ...w, rmsFinal, wcls };
  } finally {
    await file.close();
  }
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
