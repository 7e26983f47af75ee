import { readFile, writeFile } from 'node:fs/promises';
import { CheckpointInvalid } from '../errors.js';

/** Llama-architecture decoder dimensions. */
export interface LlamaConfig {
  dim: number;
  hiddenDim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  /** Longest context (KV cache capacity). */
  seqLen: number;
  /** @default 10000 */
  theta?: number;
  /** @default 1e-5 */
  eps?: number;
}

/** Weights in llama2.c layout: projection matrices are [out, in], one array per layer. */
export interface LlamaWeights {
  config: LlamaConfig;
  /** True when made by `syntheticWeights`: outputs are not from a trained model. */
  synthetic: boolean;
  tokenEmbedding: Float32Array;
  rmsAtt: Float32Array[];
  wq: Float32Array[];
  wk: Float32Array[];
  wv: Float32Array[];
  wo: Float32Array[];
  rmsFfn: Float32Array[];
  w1: Float32Array[];
  w2: Float32Array[];
  w3: Float32Array[];
  rmsFinal: Float32Array;
  wcls: Float32Array;
}

function shapes(c: LlamaConfig) {
  const kvDim = (c.dim / c.heads) * c.kvHeads;
  return {
    rmsAtt: c.dim,
    wq: c.dim * c.dim,
    wk: kvDim * c.dim,
    wv: kvDim * c.dim,
    wo: c.dim * c.dim,
    rmsFfn: c.dim,
    w1: c.hiddenDim * c.dim,
    w2: c.dim * c.hiddenDim,
    w3: c.hiddenDim * c.dim,
  };
}
type LayerKey = keyof ReturnType<typeof shapes>;
const LAYER_KEYS: LayerKey[] = ['rmsAtt', 'wq', 'wk', 'wv', 'wo', 'rmsFfn', 'w1', 'w2', 'w3'];

/** Deterministic pseudo-random weights (mulberry32 from `seed`), scaled so activations stay O(1). */
export function syntheticWeights(config: LlamaConfig, seed = 1): LlamaWeights {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const fill = (n: number, scale: number, offset = 0) =>
    Float32Array.from({ length: n }, () => offset + (next() * 2 - 1) * scale);
  const sh = shapes(config);
  const layer = (key: LayerKey) =>
    Array.from({ length: config.layers }, () =>
      key.startsWith('rms')
        ? fill(sh[key], 0.1, 1)
        : fill(sh[key], 1 / Math.sqrt(key === 'w2' ? config.hiddenDim : config.dim)),
    );
  const tokenEmbedding = fill(config.vocab * config.dim, 1);
  const w = Object.fromEntries(LAYER_KEYS.map((k) => [k, layer(k)])) as Record<LayerKey, Float32Array[]>;
  return {
    config,
    synthetic: true,
    tokenEmbedding,
    ...w,
    rmsFinal: fill(config.dim, 0.1, 1),
    wcls: tokenEmbedding,
  };
}

const HEADER_INTS = 7;

/** Reads a llama2.c checkpoint (7 int32 header, then f32 tensors; negative vocab = separate classifier). */
export async function loadLlama2c(path: string): Promise<LlamaWeights> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (cause) {
    const reason = (cause as { code?: unknown }).code ?? 'unreadable';
    throw new CheckpointInvalid(path, `cannot read the file (${String(reason)}); check the path`, { cause });
  }
  if (buf.length < HEADER_INTS * 4) throw new CheckpointInvalid(path, 'file is shorter than the header');
  const header = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + HEADER_INTS * 4));
  const [dim, hiddenDim, layers, heads, kvHeads, vocabSigned, seqLen] = header as unknown as number[];
  const config: LlamaConfig = {
    dim: dim!,
    hiddenDim: hiddenDim!,
    layers: layers!,
    heads: heads!,
    kvHeads: kvHeads!,
    vocab: Math.abs(vocabSigned!),
    seqLen: seqLen!,
  };
  if (
    Object.values(config).some((v) => !(v > 0)) ||
    config.dim % config.heads !== 0 ||
    config.heads % config.kvHeads !== 0
  ) {
    throw new CheckpointInvalid(path, `header ${Array.from(header).join(',')} is not a valid config`);
  }
  const floats = new Float32Array(
    buf.buffer.slice(
      buf.byteOffset + HEADER_INTS * 4,
      buf.byteOffset + buf.length - ((buf.length - HEADER_INTS * 4) % 4),
    ),
  );
  let off = 0;
  const take = (n: number) => {
    if (off + n > floats.length) throw new CheckpointInvalid(path, 'file ends before all tensors were read');
    const t = floats.slice(off, off + n);
    off += n;
    return t;
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
  const wcls = vocabSigned! > 0 ? tokenEmbedding : take(config.vocab * config.dim);
  return { config, synthetic: false, tokenEmbedding, ...w, rmsFinal, wcls };
}

/** Writes weights as a llama2.c checkpoint with a shared classifier (tests use it to make tiny ones). */
export async function writeLlama2c(path: string, weights: LlamaWeights): Promise<void> {
  const c = weights.config;
  const header = Int32Array.of(c.dim, c.hiddenDim, c.layers, c.heads, c.kvHeads, c.vocab, c.seqLen);
  const parts: Float32Array[] = [weights.tokenEmbedding];
  for (const key of LAYER_KEYS) parts.push(...weights[key]);
  parts.push(weights.rmsFinal, new Float32Array(c.seqLen * (c.dim / c.heads)));
  const chunks = [
    Buffer.from(header.buffer),
    ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)),
  ];
  await writeFile(path, Buffer.concat(chunks));
}
