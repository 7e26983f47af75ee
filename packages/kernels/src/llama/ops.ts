import type { KernelSpec, Target } from '@stitch/compiler';
import * as ref from '../reference.js';
import type { KernelRuntime } from '../runtime.js';
import { type ThreadedKernel, threadedKernel } from '../threaded.js';
import type { LlamaConfig, LlamaWeights } from './weights.js';

/** The tensor ops a Llama forward pass needs; one implementation on compiled kernels, one in plain TS. */
export interface LlamaOps {
  /** x[rows, in] · w[out, in]ᵀ */
  linear(x: Float32Array, w: Float32Array, inDim: number, outDim: number): Promise<Float32Array>;
  rmsnorm(x: Float32Array, w: Float32Array): Promise<Float32Array>;
  rope(x: Float32Array, pos: Int32Array, heads: number): Promise<Float32Array>;
  attentionPrefill(q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array>;
  attentionDecode(q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array>;
  add(a: Float32Array, b: Float32Array): Promise<Float32Array>;
  swiglu(gate: Float32Array, up: Float32Array): Promise<Float32Array>;
  embedding(table: Float32Array, ids: Int32Array): Promise<Float32Array>;
}

/**
 * The shapes one tensor-parallel rank of `tp` computes with: its share of the heads (query and KV)
 * and of the FFN, and the linear layers that follow (`[in, out]`). With tp = 1, the whole model.
 */
export function rankGeometry(c: LlamaConfig, tp = 1) {
  const hd = c.dim / c.heads;
  const heads = c.heads / tp;
  const kvHeads = c.kvHeads / tp;
  const qDim = heads * hd;
  const kvDim = kvHeads * hd;
  const hidden = c.hiddenDim / tp;
  const linears: [number, number][] = [
    [c.dim, qDim],
    [c.dim, kvDim],
    [qDim, c.dim],
    [c.dim, hidden],
    [hidden, c.dim],
  ];
  // Only the whole model makes logits; a rank returns its partial hidden state.
  if (tp === 1) linears.push([c.dim, c.vocab]);
  return { hd, heads, kvHeads, qDim, kvDim, hidden, linears };
}

/** A rank's attention and FFN shapes (from `rankGeometry`). */
export type RankShapes = Pick<
  ReturnType<typeof rankGeometry>,
  'heads' | 'kvHeads' | 'qDim' | 'kvDim' | 'hidden'
>;

/**
 * Attention's inputs for the rows `x` at positions `pos` in layer `l` of `w`: RMSNorm, then Q, K and
 * V, with RoPE on Q and K — for the whole model or one rank (`g`: its heads and widths).
 */
export async function attentionInputs(
  ops: LlamaOps,
  w: Pick<LlamaWeights, 'rmsAtt' | 'wq' | 'wk' | 'wv'>,
  l: number,
  x: Float32Array,
  pos: Int32Array,
  dim: number,
  g: RankShapes,
): Promise<{ q: Float32Array; k: Float32Array; v: Float32Array }> {
  const xb = await ops.rmsnorm(x, w.rmsAtt[l]!);
  const [q0, k0, v] = await Promise.all([
    ops.linear(xb, w.wq[l]!, dim, g.qDim),
    ops.linear(xb, w.wk[l]!, dim, g.kvDim),
    ops.linear(xb, w.wv[l]!, dim, g.kvDim),
  ]);
  const [q, k] = await Promise.all([ops.rope(q0, pos, g.heads), ops.rope(k0, pos, g.kvHeads)]);
  return { q, k, v };
}

/** The SwiGLU FFN `W2 · (silu(W1 · xf) ⊙ W3 · xf)` on normed rows, `hidden` wide (a rank's share, or all). */
export async function swigluFfn(
  ops: LlamaOps,
  w1: Float32Array,
  w3: Float32Array,
  w2: Float32Array,
  xf: Float32Array,
  dim: number,
  hidden: number,
): Promise<Float32Array> {
  const [gate, up] = await Promise.all([ops.linear(xf, w1, dim, hidden), ops.linear(xf, w3, dim, hidden)]);
  return ops.linear(await ops.swiglu(gate, up), w2, hidden, dim);
}

/** The same math in plain TypeScript (f64 accumulation): the oracle for the compiled model. */
export function referenceOps(c: LlamaConfig, tp = 1): LlamaOps {
  const g = rankGeometry(c, tp);
  const eps = c.eps ?? 1e-5;
  const theta = c.theta ?? 10000;
  return {
    linear: async (x, w, i, o) =>
      x.length === i ? ref.matvec(w, x, o, i) : ref.matmul(x, w, x.length / i, i, o, true),
    rmsnorm: async (x, w) => ref.rmsnorm(x, w, c.dim, eps),
    rope: async (x, pos, heads) => ref.rope(x, pos, heads, g.hd, theta),
    attentionPrefill: async (q, k, v) =>
      ref.attentionPrefill(q, k, v, q.length / g.qDim, g.heads, g.kvHeads, g.hd),
    attentionDecode: async (q, k, v) =>
      ref.attentionDecode(q, k, v, k.length / g.kvDim, g.heads, g.kvHeads, g.hd),
    add: async (a, b) => ref.add(a, b),
    swiglu: async (gate, u) => ref.swiglu(gate, u),
    embedding: async (t, ids) => ref.embedding(t, ids, c.dim),
  };
}

/** Every kernel spec the model (or one rank of it) uses: matvec for one token, matmul (rows dynamic) for prompts. */
function specs(c: LlamaConfig, tp: number): Record<string, KernelSpec> {
  const g = rankGeometry(c, tp);
  const eps = c.eps ?? 1e-5;
  const theta = c.theta ?? 10000;
  const hd = g.hd;
  const out: Record<string, KernelSpec> = {
    rmsnorm: { op: 'nn.rmsnorm', rows: null, dim: c.dim, eps },
    ropeQ: { op: 'nn.rope', seq: null, heads: g.heads, headDim: hd, theta },
    ropeK: { op: 'nn.rope', seq: null, heads: g.kvHeads, headDim: hd, theta },
    prefill: { op: 'nn.attention_prefill', seq: null, heads: g.heads, kvHeads: g.kvHeads, headDim: hd },
    decode: { op: 'nn.attention_decode', len: null, heads: g.heads, kvHeads: g.kvHeads, headDim: hd },
    add: { op: 'nn.add', rows: null, cols: c.dim },
    swiglu: { op: 'nn.swiglu', rows: null, cols: g.hidden },
    embedding: { op: 'nn.embedding', vocab: c.vocab, dim: c.dim, count: null },
  };
  for (const [i, o] of g.linears) {
    out[`mv${i}x${o}`] = { op: 'nn.matvec', m: o, k: i };
    out[`mm${i}x${o}`] = { op: 'nn.matmul', m: null, k: i, n: o, transposeB: true };
  }
  return out;
}

/**
 * Compiles (or loads from cache) every kernel for `target` and returns ops that run them. With
 * `threads` > 1 the linear layers (matvec, matmul) split their output rows across that many
 * threads; the other ops are too small per call to gain from it. With `tp` > 1, the kernels of one
 * tensor-parallel rank (its heads, its share of the FFN); with `experts`, the router's too.
 */
export async function kernelOps(
  c: LlamaConfig,
  runtime: KernelRuntime,
  options: { target: Target; cacheDir?: string; threads?: number; tp?: number; experts?: number },
): Promise<LlamaOps> {
  const { threads = 1, tp = 1, experts, ...compile } = options;
  const all = specs(c, tp);
  // A mixture of experts adds its router's projection; the experts are the dense FFN's shapes.
  if (experts !== undefined) {
    all[`mv${c.dim}x${experts}`] = { op: 'nn.matvec', m: experts, k: c.dim };
    all[`mm${c.dim}x${experts}`] = { op: 'nn.matmul', m: null, k: c.dim, n: experts, transposeB: true };
  }
  const g = rankGeometry(c, tp);
  const names = Object.keys(all);
  const loaded = await Promise.all(
    names.map((n) =>
      threadedKernel(runtime, all[n]!, { ...compile, threads: n.startsWith('m') ? threads : 1 }),
    ),
  );
  const k = Object.fromEntries(names.map((n, i) => [n, loaded[i]!])) as Record<string, ThreadedKernel>;
  const run = async (kernel: ThreadedKernel, inputs: (Float32Array | Int32Array)[], outLength: number) => {
    const out = new Float32Array(outLength);
    await kernel.run([...inputs, out]);
    return out;
  };
  return {
    linear: (x, w, i, o) =>
      x.length === i ? run(k[`mv${i}x${o}`]!, [w, x], o) : run(k[`mm${i}x${o}`]!, [x, w], (x.length / i) * o),
    rmsnorm: (x, w) => run(k.rmsnorm!, [x, w], x.length),
    rope: (x, pos, heads) => run(heads === g.heads ? k.ropeQ! : k.ropeK!, [x, pos], x.length),
    attentionPrefill: (q, kk, v) => run(k.prefill!, [q, kk, v], q.length),
    attentionDecode: (q, kk, v) => run(k.decode!, [q, kk, v], q.length),
    add: (a, b) => run(k.add!, [a, b], a.length),
    swiglu: (g, u) => run(k.swiglu!, [g, u], g.length),
    embedding: (t, ids) => run(k.embedding!, [t, ids], ids.length * c.dim),
  };
}
