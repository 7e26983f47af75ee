import { KernelOptionsInvalid } from '../errors.js';

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
  /** A mixture of experts in place of the dense FFN (w1, w2, w3 are then unused). */
  moe?: MoeWeights;
}

/**
 * A mixture-of-experts FFN per layer, as Mixtral: a router scores the experts for each token, the
 * `perToken` best run (SwiGLU each) and their outputs are mixed by the softmax of their scores.
 */
export interface MoeWeights {
  experts: number;
  perToken: number;
  /** [experts, dim] per layer. */
  router: Float32Array[];
  /** Per layer, per expert: w1 and w3 [hiddenDim, dim], w2 [dim, hiddenDim]. */
  w1: Float32Array[][];
  w2: Float32Array[][];
  w3: Float32Array[][];
}

/** Elements of each per-layer tensor. */
export function shapes(c: LlamaConfig) {
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
export type LayerKey = keyof ReturnType<typeof shapes>;
/** Per-layer tensors in llama2.c's file order. */
export const LAYER_KEYS: LayerKey[] = ['rmsAtt', 'wq', 'wk', 'wv', 'wo', 'rmsFfn', 'w1', 'w2', 'w3'];

/** A seeded pseudo-random stream in [0, 1) (mulberry32). */
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Deterministic pseudo-random weights (mulberry32 from `seed`), scaled so activations stay O(1). */
export function syntheticWeights(config: LlamaConfig, seed = 1): LlamaWeights {
  const next = mulberry32(seed);
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

/**
 * Deterministic pseudo-random experts (their own stream from `seed`, so the rest of a model made by
 * `syntheticWeights` stays as it was): `withExperts(syntheticWeights(c, s), syntheticExperts(c, …))`.
 */
export function syntheticExperts(
  config: LlamaConfig,
  experts: number,
  perToken: number,
  seed = 1,
): MoeWeights {
  if (
    !Number.isInteger(experts) ||
    experts < 2 ||
    experts > 256 ||
    !Number.isInteger(perToken) ||
    perToken < 1 ||
    perToken > experts
  )
    throw new KernelOptionsInvalid(`experts ${experts} must be 2..256 and perToken ${perToken} 1..experts`);
  const next = mulberry32(seed);
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
  const { dim, hiddenDim, layers } = config;
  const each = (n: number, scale: number) =>
    Array.from({ length: layers }, () => Array.from({ length: experts }, () => fill(n, scale)));
  return {
    experts,
    perToken,
    router: Array.from({ length: layers }, () => fill(experts * dim, 1 / Math.sqrt(dim))),
    w1: each(hiddenDim * dim, 1 / Math.sqrt(dim)),
    w2: each(dim * hiddenDim, 1 / Math.sqrt(hiddenDim)),
    w3: each(hiddenDim * dim, 1 / Math.sqrt(dim)),
  };
}

/** The model with a mixture of experts in place of its dense FFN. */
export function withExperts(weights: LlamaWeights, moe: MoeWeights): LlamaWeights {
  return { ...weights, moe };
}

/** Largest vocabulary a checkpoint may state. */
export const MAX_VOCAB = 1 << 20;

/** Upper bounds on a config read from a file: they keep a hostile header from sizing huge buffers. */
const LIMITS: Partial<Record<keyof LlamaConfig, number>> = {
  dim: 1 << 16,
  hiddenDim: 1 << 18,
  layers: 1 << 10,
  heads: 1 << 10,
  kvHeads: 1 << 10,
  vocab: MAX_VOCAB,
  seqLen: 1 << 20,
};

/**
 * Longest context a checkpoint loader keeps unless told otherwise (`maxContext`); llama.cpp's default
 * n_ctx. A file's context costs it nothing (GGUF's `llama.context_length` is a number), but every
 * sequence's KV cache holds that many positions: Llama 3.1 8B's 131072 would take 32 GiB each.
 */
export const DEFAULT_MAX_CONTEXT = 4096;

/** Most bytes one sequence's KV cache (keys and values, f32) may take. */
export const MAX_KV_CACHE_BYTES = 8 * 2 ** 30;

/** Options of the checkpoint loaders. */
export interface LoadOptions {
  /** Longest context to keep (the KV cache's positions): the file's, cut to this. @default 4096 */
  maxContext?: number;
}

/** `maxContext` checked (a positive integer), or the default. */
export function contextLimit(maxContext: number | undefined): number {
  if (maxContext === undefined) return DEFAULT_MAX_CONTEXT;
  if (!(Number.isInteger(maxContext) && maxContext >= 1)) {
    throw new KernelOptionsInvalid(
      `maxContext ${maxContext} is not a positive integer; pass the longest context to keep, e.g. ${DEFAULT_MAX_CONTEXT}`,
    );
  }
  return maxContext;
}

/** Bytes of one sequence's KV cache: layers × seqLen × kvDim floats, keys and values. */
export function kvCacheBytes(c: LlamaConfig): number {
  return 2 * 4 * c.layers * c.seqLen * (c.dim / c.heads) * c.kvHeads;
}

/** Why one sequence's KV cache of `c` is too large (past `MAX_KV_CACHE_BYTES`), or null. */
export function kvCacheProblem(c: LlamaConfig): string | null {
  const bytes = kvCacheBytes(c);
  if (bytes <= MAX_KV_CACHE_BYTES) return null;
  const gib = (b: number) => `${Number((b / 2 ** 30).toPrecision(3))} GiB`;
  return (
    `its KV cache (${c.layers} layers × ${c.seqLen} positions × ${(c.dim / c.heads) * c.kvHeads} ` +
    `floats, keys and values, f32) would take ${gib(bytes)} per sequence, over the limit of ` +
    gib(MAX_KV_CACHE_BYTES)
  );
}

/** Throws a typed error when one sequence's KV cache of `c` (`who`'s share of it) is past the bound. */
export function checkKvCache(c: LlamaConfig, who: string): void {
  const problem = kvCacheProblem(c);
  if (problem)
    throw new KernelOptionsInvalid(
      `${who}: ${problem}; use a shorter seqLen (checkpoint loaders cut it with maxContext)`,
    );
}

/**
 * `floats` of zeroed KV cache for `c` (`who`: the model, or a shard whose share `c` describes): a
 * typed error, not a RangeError, when the cache is past `MAX_KV_CACHE_BYTES` or cannot be allocated.
 */
export function allocKvCache(c: LlamaConfig, floats: number, who: string): Float32Array {
  checkKvCache(c, who);
  try {
    return new Float32Array(floats);
  } catch (cause) {
    throw new KernelOptionsInvalid(
      `${who}: its KV cache of ${4 * floats} bytes a side could not be allocated (${String(cause)}); ` +
        'use a shorter seqLen or a host with more memory',
    );
  }
}

/**
 * Why `c` is not a usable config (sizes out of range or inconsistent, or a KV cache too large for
 * its context cut to `maxContext`), or null when it is.
 */
export function configProblem(c: LlamaConfig, maxContext = c.seqLen): string | null {
  for (const [key, max] of Object.entries(LIMITS)) {
    const v = c[key as keyof LlamaConfig];
    if (!Number.isInteger(v) || v! < 1 || v! > max) return `${key} ${v} is not an integer in 1..${max}`;
  }
  if (c.dim % c.heads !== 0) return `dim ${c.dim} is not a multiple of heads ${c.heads}`;
  if (c.heads % c.kvHeads !== 0) return `heads ${c.heads} is not a multiple of kvHeads ${c.kvHeads}`;
  if ((c.dim / c.heads) % 2 !== 0) return `the head size ${c.dim / c.heads} is odd (RoPE rotates pairs)`;
  for (const key of ['theta', 'eps'] as const) {
    const v = c[key];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) return `${key} ${v} is not a positive number`;
  }
  const kv = kvCacheProblem({ ...c, seqLen: Math.min(c.seqLen, maxContext) });
  return kv && `${kv}; pass a smaller maxContext (the default is ${DEFAULT_MAX_CONTEXT})`;
}
