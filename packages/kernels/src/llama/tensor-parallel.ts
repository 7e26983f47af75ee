// Megatron-style tensor parallelism for the Llama decoder: each rank holds its share of the heads
// (Wq, Wk, Wv rows; Wo columns) and of the FFN (W1, W3 rows; W2 columns), so per layer a rank turns
// the full hidden state into a partial one, twice (attention, then FFN), and the sum over ranks of
// those partials is exactly the unsplit layer's output (up to the order of float additions). The
// sums are the two all-reduces per layer; whoever holds the ranks' partials performs them.
import { setImmediate } from 'node:timers/promises';
import { ContextExceeded, KernelOptionsInvalid, KernelShapeMismatch } from '../errors.js';
import { moeFfn } from './moe.js';
import { attentionInputs, type LlamaOps, rankGeometry, swigluFfn } from './ops.js';
import {
  allocKvCache,
  checkKvCache,
  type LlamaConfig,
  type LlamaWeights,
  type MoeWeights,
} from './weights.js';

/** Why the model cannot be split `tp` ways (heads, KV heads and FFN must divide), or null. */
export function tensorParallelProblem(c: LlamaConfig, tp: number): string | null {
  if (!Number.isInteger(tp) || tp < 1 || tp > 64) return `tp ${tp} is not an integer in 1..64`;
  if (c.kvHeads % tp !== 0) return `${c.kvHeads} KV heads do not split ${tp} ways`;
  if (c.heads % tp !== 0) return `${c.heads} heads do not split ${tp} ways`;
  if (c.hiddenDim % tp !== 0) return `an FFN of ${c.hiddenDim} does not split ${tp} ways`;
  return null;
}

/** One rank's slices of the layers `[layerStart, layerEnd)`; arrays are indexed from `layerStart`. */
export interface LlamaShardWeights
  extends Pick<
    LlamaWeights,
    'config' | 'rmsAtt' | 'wq' | 'wk' | 'wv' | 'wo' | 'rmsFfn' | 'w1' | 'w2' | 'w3'
  > {
  tp: number;
  rank: number;
  layerStart: number;
  layerEnd: number;
}

/** Rows `[from, from + n)` of a row-major [rows, cols] matrix (no copy). */
const rows = (w: Float32Array, cols: number, from: number, n: number) =>
  w.subarray(from * cols, (from + n) * cols);

/**
 * Floats `columns` copies between turns of the event loop (16 MiB): a rank's share of a 7B model's
 * Wo and W2 is copied, not viewed, and at tp 2 its slicing took about 2.9 s in one go.
 */
const COPY_FLOATS_PER_TURN = 4 << 20;

/** Columns `[from, from + n)` of a row-major [rows, cols] matrix, as a [rows, n] copy. */
async function columns(w: Float32Array, cols: number, from: number, n: number): Promise<Float32Array> {
  const r = w.length / cols;
  const out = new Float32Array(r * n);
  const perTurn = Math.max(1, Math.floor(COPY_FLOATS_PER_TURN / n));
  for (let i = 0; i < r; i++) {
    if (i % perTurn === 0) await setImmediate();
    out.set(w.subarray(i * cols + from, i * cols + from + n), i * n);
  }
  return out;
}

/**
 * Rank `rank` of `tp`'s slices of the layers `[start, end)` (default: all). Async because the copies
 * give the event loop a turn at least every 16 MiB: a node slices on the loop that answers its
 * heartbeats and its other actors.
 */
export async function shardWeights(
  w: LlamaWeights,
  tp: number,
  rank: number,
  layers: readonly [number, number] = [0, w.config.layers],
): Promise<LlamaShardWeights> {
  const c = w.config;
  const problem = tensorParallelProblem(c, tp);
  if (problem) throw new KernelOptionsInvalid(`tensor parallelism: ${problem}`);
  const [start, end] = layers;
  if (!Number.isInteger(rank) || rank < 0 || rank >= tp)
    throw new KernelOptionsInvalid(`rank ${rank} is not in 0..${tp - 1}`);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > c.layers || start >= end)
    throw new KernelOptionsInvalid(`layers [${start}, ${end}) are not a range of the model's ${c.layers}`);
  const g = rankGeometry(c, tp);
  const pick = <T>(all: T[], f: (x: T) => Float32Array) => all.slice(start, end).map(f);
  const copies = async (all: Float32Array[], f: (x: Float32Array) => Promise<Float32Array>) => {
    const out: Float32Array[] = [];
    for (const x of all.slice(start, end)) out.push(await f(x));
    return out;
  };
  return {
    config: c,
    tp,
    rank,
    layerStart: start,
    layerEnd: end,
    rmsAtt: pick(w.rmsAtt, (x) => x),
    wq: pick(w.wq, (x) => rows(x, c.dim, rank * g.qDim, g.qDim)),
    wk: pick(w.wk, (x) => rows(x, c.dim, rank * g.kvDim, g.kvDim)),
    wv: pick(w.wv, (x) => rows(x, c.dim, rank * g.kvDim, g.kvDim)),
    wo: await copies(w.wo, (x) => columns(x, c.dim, rank * g.qDim, g.qDim)),
    rmsFfn: pick(w.rmsFfn, (x) => x),
    w1: pick(w.w1, (x) => rows(x, c.dim, rank * g.hidden, g.hidden)),
    w2: await copies(w.w2, (x) => columns(x, c.hiddenDim, rank * g.hidden, g.hidden)),
    w3: pick(w.w3, (x) => rows(x, c.dim, rank * g.hidden, g.hidden)),
  };
}

/** One sequence's keys and values for a rank's heads, per layer of its range. */
export interface ShardKv {
  k: Float32Array[];
  v: Float32Array[];
}

/**
 * One rank of a tensor-parallel Llama over a range of layers: its partial of each layer's attention
 * (against the sequence's KV cache for its heads) and of each layer's FFN. `ops` are the rank's
 * kernels (`kernelOps(config, …, { tp })` or `referenceOps(config, tp)`).
 */
export class LlamaShard {
  readonly #g;

  constructor(
    readonly weights: LlamaShardWeights,
    private readonly ops: LlamaOps,
  ) {
    this.#g = rankGeometry(weights.config, weights.tp);
    // Refused here, not at the first sequence: this rank's share of one sequence's KV cache.
    checkKvCache(this.#kvShare(), 'LlamaShard');
  }

  /** The config whose KV cache is this rank's: its layers, its KV heads. */
  #kvShare(): LlamaConfig {
    const { config, tp, layerStart, layerEnd } = this.weights;
    return { ...config, layers: layerEnd - layerStart, kvHeads: config.kvHeads / tp };
  }

  /** An empty KV cache for one sequence (the rank's heads, its layers, the model's context). */
  newKv(): ShardKv {
    const { seqLen } = this.weights.config;
    const n = this.weights.layerEnd - this.weights.layerStart;
    const share = this.#kvShare();
    const block = () =>
      Array.from({ length: n }, () => allocKvCache(share, seqLen * this.#g.kvDim, 'LlamaShard'));
    return { k: block(), v: block() };
  }

  /**
   * This rank's share of `Wo · attention(rmsnorm(x))` for the rows of `x` at positions `pos`
   * (consecutive: a prompt from position 0, or one new token), writing their keys and values.
   */
  async attention(kv: ShardKv, layer: number, x: Float32Array, pos: Int32Array): Promise<Float32Array> {
    const { config: c } = this.weights;
    const g = this.#g;
    const l = this.#local(layer);
    const s = pos.length;
    if (x.length !== s * c.dim)
      throw new KernelShapeMismatch(
        'LlamaShard.attention',
        `${s} rows of ${c.dim} expected, got ${x.length} floats`,
      );
    const start = pos[0] ?? 0;
    if (s > 1 && start !== 0)
      throw new KernelShapeMismatch(
        'LlamaShard.attention',
        'several rows are a prompt, which starts at position 0',
      );
    if (start + s > c.seqLen) throw new ContextExceeded(c.seqLen, start + s);
    const ops = this.ops;
    const w = this.weights;
    const { q, k, v } = await attentionInputs(ops, w, l, x, pos, c.dim, g);
    kv.k[l]!.set(k, start * g.kvDim);
    kv.v[l]!.set(v, start * g.kvDim);
    const att =
      s === 1
        ? await ops.attentionDecode(
            q,
            kv.k[l]!.subarray(0, (start + 1) * g.kvDim),
            kv.v[l]!.subarray(0, (start + 1) * g.kvDim),
          )
        : await ops.attentionPrefill(q, k, v);
    return ops.linear(att, w.wo[l]!, g.qDim, c.dim);
  }

  /** This rank's share of `W2 · (silu(W1 · rmsnorm(x)) ⊙ W3 · rmsnorm(x))`. */
  async ffn(layer: number, x: Float32Array): Promise<Float32Array> {
    const { config: c } = this.weights;
    const g = this.#g;
    const l = this.#local(layer);
    if (x.length % c.dim !== 0)
      throw new KernelShapeMismatch('LlamaShard.ffn', `rows of ${c.dim} expected, got ${x.length} floats`);
    const ops = this.ops;
    const w = this.weights;
    const xf = await ops.rmsnorm(x, w.rmsFfn[l]!);
    return swigluFfn(ops, w.w1[l]!, w.w3[l]!, w.w2[l]!, xf, c.dim, g.hidden);
  }

  #local(layer: number): number {
    const { layerStart, layerEnd } = this.weights;
    if (!Number.isInteger(layer) || layer < layerStart || layer >= layerEnd)
      throw new KernelShapeMismatch(
        'LlamaShard',
        `layer ${layer} is not in this shard's [${layerStart}, ${layerEnd})`,
      );
    return layer - layerStart;
  }
}

/** The all-reduce of one layer block: the residual `x` plus every rank's partial, summed in rank order. */
export async function allReduce(
  ops: LlamaOps,
  x: Float32Array,
  partials: readonly Float32Array[],
): Promise<Float32Array> {
  let out = x;
  for (const p of partials) {
    if (p.length !== x.length)
      throw new KernelShapeMismatch(
        'allReduce',
        `a partial of ${p.length} floats for a state of ${x.length}`,
      );
    out = await ops.add(out, p);
  }
  return out;
}

/** Where one layer block of the stack runs: returns `x` after that block's all-reduce (residual included). */
export type LayerBlock = (
  layer: number,
  block: 'attention' | 'ffn',
  x: Float32Array,
  pos: Int32Array,
) => Promise<Float32Array>;

/**
 * The parts of a tensor-parallel forward pass that are not split: the embedding, the walk through
 * the layers (each block done by `block`, wherever the ranks are), the final norm and the logits.
 * `ops` are the whole model's kernels.
 */
export class TensorParallelLlama {
  /** Tokens the ranks hold in their KV caches. */
  position = 0;

  constructor(
    readonly weights: LlamaWeights,
    private readonly ops: LlamaOps,
    private readonly block: LayerBlock,
  ) {}

  /** The prompt through every layer from position 0; logits of its last token. */
  async prefill(tokens: number[]): Promise<Float32Array> {
    this.position = 0;
    const hidden = await this.layers(tokens, 0, this.weights.config.layers);
    this.position = tokens.length;
    return this.logitsOfLast(hidden);
  }

  /** One token at the current position; logits for the next. */
  async decode(token: number): Promise<Float32Array> {
    const c = this.weights.config;
    if (this.position + 1 > c.seqLen) throw new ContextExceeded(c.seqLen, this.position + 1);
    const hidden = await this.layers([token], 0, c.layers);
    this.position++;
    return this.logitsOfLast(hidden);
  }

  /** `tokens` embedded at positions from `this.position`, through layers `[from, to)`. */
  async layers(tokens: number[], from: number, to: number, x?: Float32Array): Promise<Float32Array> {
    const pos = Int32Array.from(tokens, (_, i) => this.position + i);
    let h = x ?? (await this.ops.embedding(this.weights.tokenEmbedding, Int32Array.from(tokens)));
    for (let l = from; l < to; l++) {
      h = await this.block(l, 'attention', h, pos);
      h = await this.block(l, 'ffn', h, pos);
    }
    return h;
  }

  /** Final RMSNorm and the vocabulary projection of the last row of `hidden`. */
  async logitsOfLast(hidden: Float32Array): Promise<Float32Array> {
    const c = this.weights.config;
    const last = await this.ops.rmsnorm(hidden.subarray(hidden.length - c.dim), this.weights.rmsFinal);
    return this.ops.linear(last, this.weights.wcls, c.dim, c.vocab);
  }
}

/**
 * One rank of an expert-parallel mixture of experts over a range of layers: its share of the
 * experts (`experts / ep` of them; the router is every rank's, so all route a token alike), and the
 * FFN's norm. Attention is not split by experts: whoever merges the ranks' outputs runs it.
 */
export class ExpertShard {
  readonly #moe: MoeWeights;
  readonly #from: number;

  constructor(
    readonly weights: LlamaWeights,
    readonly ep: number,
    readonly rank: number,
    readonly layers: readonly [number, number],
    private readonly ops: LlamaOps,
  ) {
    const moe = weights.moe;
    if (!moe)
      throw new KernelOptionsInvalid(
        'expert parallelism needs a mixture of experts; these weights have a dense FFN',
      );
    if (!Number.isInteger(ep) || ep < 1 || moe.experts % ep !== 0)
      throw new KernelOptionsInvalid(`${moe.experts} experts do not split ${ep} ways`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= ep)
      throw new KernelOptionsInvalid(`rank ${rank} is not in 0..${ep - 1}`);
    const [start, end] = layers;
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(end) ||
      start < 0 ||
      end > weights.config.layers ||
      start >= end
    )
      throw new KernelOptionsInvalid(
        `layers [${start}, ${end}) are not a range of the model's ${weights.config.layers}`,
      );
    const n = moe.experts / ep;
    this.#from = rank * n;
    // The experts it computes with: this rank's share, sliced out per layer of its range.
    const mine = (all: Float32Array[][]) =>
      all.map((layer, l) => (l >= start && l < end ? layer.slice(this.#from, this.#from + n) : []));
    this.#moe = { ...moe, w1: mine(moe.w1), w2: mine(moe.w2), w3: mine(moe.w3) };
  }

  /** This rank's experts' share of the layer's mixture-of-experts output for the rows of `x`. */
  async ffn(layer: number, x: Float32Array): Promise<Float32Array> {
    const c = this.weights.config;
    if (!Number.isInteger(layer) || layer < this.layers[0] || layer >= this.layers[1])
      throw new KernelShapeMismatch(
        'ExpertShard',
        `layer ${layer} is not in this shard's [${this.layers[0]}, ${this.layers[1]})`,
      );
    if (x.length % c.dim !== 0)
      throw new KernelShapeMismatch('ExpertShard.ffn', `rows of ${c.dim} expected, got ${x.length} floats`);
    const xf = await this.ops.rmsnorm(x, this.weights.rmsFfn[layer]!);
    const n = this.#moe.experts / this.ep;
    return moeFfn(this.ops, c, this.#moe, layer, xf, this.#from, this.#from + n, this.#from);
  }
}
