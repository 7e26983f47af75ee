// The Llama architecture in GGUF: metadata keys, tensor names and shapes, and the tokenizer stored
// in `tokenizer.ggml.*`. Shared by the loader and the writer so the two cannot drift apart.
import type { FileHandle } from 'node:fs/promises';
import { CheckpointInvalid } from '../errors.js';
import {
  configProblem,
  contextLimit,
  LAYER_KEYS,
  type LayerKey,
  type LlamaConfig,
  type LlamaWeights,
  type LoadOptions,
} from '../llama/weights.js';
import { openCheckpoint } from './file.js';
import { type GgufHeader, type GgufValue, readGgufHeader, readGgufTensor } from './gguf.js';
import { Tokenizer } from './tokenizer.js';

/** GGUF tensor name of each per-layer tensor, and its ggml dims [in, out] (dims[0] contiguous). */
export const LAYER_TENSORS: Record<LayerKey, [string, (c: LlamaConfig) => number[]]> = {
  rmsAtt: ['attn_norm', (c) => [c.dim]],
  wq: ['attn_q', (c) => [c.dim, c.dim]],
  wk: ['attn_k', (c) => [c.dim, kvDim(c)]],
  wv: ['attn_v', (c) => [c.dim, kvDim(c)]],
  wo: ['attn_output', (c) => [c.dim, c.dim]],
  rmsFfn: ['ffn_norm', (c) => [c.dim]],
  w1: ['ffn_gate', (c) => [c.dim, c.hiddenDim]],
  w2: ['ffn_down', (c) => [c.hiddenDim, c.dim]],
  w3: ['ffn_up', (c) => [c.dim, c.hiddenDim]],
};
const kvDim = (c: LlamaConfig) => (c.dim / c.heads) * c.kvHeads;

/** SentencePiece writes a space as U+2581; llama2.c's pieces (and ours) use a plain space. */
export const SPM_SPACE = '\u2581';

export interface GgufCheckpoint {
  weights: LlamaWeights;
  tokenizer: Tokenizer;
  header: GgufHeader;
}

/**
 * Loads a GGUF Llama checkpoint: config from `llama.*` (the context cut to `maxContext`), tensors
 * dequantized to f32, its tokenizer.
 */
export async function loadGguf(path: string, options: LoadOptions = {}): Promise<GgufCheckpoint> {
  const maxContext = contextLimit(options.maxContext);
  const file = await openCheckpoint(path);
  try {
    const header = await readGgufHeader(path, file);
    const config = llamaConfig(path, header, maxContext);
    const weights = await readWeights(path, file, header, config);
    return { weights, tokenizer: tokenizerFromMetadata(path, header.metadata, config.vocab), header };
  } finally {
    await file.close();
  }
}

/** A GGUF checkpoint's tokenizer, from its header alone (its vocabulary is the embedding's rows). */
export async function ggufTokenizer(path: string): Promise<Tokenizer> {
  const file = await openCheckpoint(path);
  try {
    const header = await readGgufHeader(path, file);
    const embd = header.tensors.find((t) => t.name === 'token_embd.weight');
    if (embd?.dims.length !== 2)
      throw new CheckpointInvalid(path, 'tensor token_embd.weight is missing or not 2-D');
    return tokenizerFromMetadata(path, header.metadata, embd.dims[1]!);
  } finally {
    await file.close();
  }
}

function llamaConfig(path: string, header: GgufHeader, maxContext: number): LlamaConfig {
  const fail = (detail: string): never => {
    throw new CheckpointInvalid(path, detail);
  };
  const md = header.metadata;
  const arch = md.get('general.architecture');
  if (arch !== 'llama') fail(`general.architecture is ${JSON.stringify(arch)}, not "llama"`);
  const num = (key: string, fallback?: number): number => {
    const v = md.get(`llama.${key}`) ?? fallback;
    if (v === undefined) fail(`metadata llama.${key} is missing`);
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number') fail(`metadata llama.${key} is not a number`);
    return n as number;
  };
  const embd = header.tensors.find((t) => t.name === 'token_embd.weight');
  if (embd?.dims.length !== 2) fail('tensor token_embd.weight is missing or not 2-D');
  const heads = num('attention.head_count');
  const config: LlamaConfig = {
    dim: num('embedding_length'),
    hiddenDim: num('feed_forward_length'),
    layers: num('block_count'),
    heads,
    kvHeads: num('attention.head_count_kv', heads),
    vocab: embd!.dims[1]!,
    seqLen: num('context_length'),
    theta: num('rope.freq_base', 10000),
    eps: num('attention.layer_norm_rms_epsilon', 1e-5),
  };
  const problem = configProblem(config, maxContext);
  if (problem) fail(`llama.* metadata is not a valid config: ${problem}`);
  // llama.context_length costs the file nothing; the KV cache is sized by what is kept of it.
  config.seqLen = Math.min(config.seqLen, maxContext);
  const ropeDims = num('rope.dimension_count', config.dim / config.heads);
  if (ropeDims !== config.dim / config.heads)
    fail(`partial RoPE (${ropeDims} of ${config.dim / config.heads}) is not supported`);
  return config;
}

async function readWeights(
  path: string,
  file: FileHandle,
  header: GgufHeader,
  c: LlamaConfig,
): Promise<LlamaWeights> {
  const byName = new Map(header.tensors.map((t) => [t.name, t]));
  const tensor = async (name: string, dims: number[]) => {
    const t = byName.get(name);
    if (!t) throw new CheckpointInvalid(path, `tensor ${name} is missing`);
    if (t.dims.join('x') !== dims.join('x')) {
      throw new CheckpointInvalid(
        path,
        `tensor ${name} has dims ${t.dims.join('x')}, expected ${dims.join('x')}`,
      );
    }
    return readGgufTensor(path, file, header, t);
  };
  const tokenEmbedding = await tensor('token_embd.weight', [c.dim, c.vocab]);
  const w = {} as Record<LayerKey, Float32Array[]>;
  for (const key of LAYER_KEYS) {
    const [name, dims] = LAYER_TENSORS[key];
    w[key] = [];
    for (let l = 0; l < c.layers; l++) w[key].push(await tensor(`blk.${l}.${name}.weight`, dims(c)));
  }
  const rmsFinal = await tensor('output_norm.weight', [c.dim]);
  const wcls = byName.has('output.weight') ? await tensor('output.weight', [c.dim, c.vocab]) : tokenEmbedding;
  return { config: c, synthetic: false, tokenEmbedding, ...w, rmsFinal, wcls };
}

/** The SentencePiece-style tokenizer from `tokenizer.ggml.{model,tokens,scores,bos_token_id,eos_token_id}`. */
export function tokenizerFromMetadata(path: string, md: Map<string, GgufValue>, vocab: number): Tokenizer {
  const fail = (detail: string): never => {
    throw new CheckpointInvalid(path, detail);
  };
  const model = md.get('tokenizer.ggml.model');
  if (model !== 'llama')
    fail(`tokenizer.ggml.model is ${JSON.stringify(model)}; only "llama" (SentencePiece BPE) is supported`);
  const tokens = md.get('tokenizer.ggml.tokens');
  const scores = md.get('tokenizer.ggml.scores');
  if (!Array.isArray(tokens) || tokens.length !== vocab || tokens.some((t) => typeof t !== 'string')) {
    fail(`tokenizer.ggml.tokens must be ${vocab} strings (the embedding's vocabulary)`);
  }
  if (!Array.isArray(scores) || scores.length !== vocab || scores.some((s) => typeof s !== 'number')) {
    fail(`tokenizer.ggml.scores must be ${vocab} numbers`);
  }
  const id = (key: string, fallback: number): number => {
    const v = md.get(`tokenizer.ggml.${key}`) ?? fallback;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= vocab) {
      const shown = typeof v === 'bigint' ? `${v}` : JSON.stringify(v);
      fail(`tokenizer.ggml.${key} ${shown} is not a token id (an integer in 0..${vocab - 1})`);
    }
    return n as number;
  };
  const pieces = (tokens as string[]).map((t) => Buffer.from(t.replaceAll(SPM_SPACE, ' '), 'utf8'));
  return new Tokenizer(
    pieces,
    Float32Array.from(scores as number[]),
    id('bos_token_id', 1),
    id('eos_token_id', 2),
  );
}
