import { ContextExceeded, KernelShapeMismatch } from '../errors.js';
import type { FusedDecode } from './fused.js';
import { moeFfn } from './moe.js';
import { attentionInputs, type LlamaOps, type RankShapes, rankGeometry, swigluFfn } from './ops.js';
import { allocKvCache, type LlamaWeights } from './weights.js';

/**
 * A Llama decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) over a KV cache, written once
 * against `LlamaOps` so the compiled-kernel model and the TypeScript reference share the same code.
 */
export class Llama {
  /** [layers, seqLen, kvDim], one block for all layers (the fused step reads it whole). */
  private readonly kAll: Float32Array;
  private readonly vAll: Float32Array;
  private readonly kCache: Float32Array[];
  private readonly vCache: Float32Array[];
  private readonly kvDim: number;
  /** The whole model's heads and widths, as a rank of one. */
  private readonly shapes: RankShapes;
  /** Tokens in the KV cache. */
  position = 0;

  /**
   * With `fused`, `decode` runs its fused step (few native calls), and so does `prefill` if it has
   * one; `embed` (and prefill otherwise) use `ops`.
   */
  constructor(
    readonly weights: LlamaWeights,
    private readonly ops: LlamaOps,
    private readonly fused?: FusedDecode,
  ) {
    const c = weights.config;
    this.shapes = rankGeometry(c);
    this.kvDim = this.shapes.kvDim;
    const block = c.seqLen * this.kvDim;
    this.kAll = allocKvCache(c, c.layers * block, 'Llama');
    this.vAll = allocKvCache(c, c.layers * block, 'Llama');
    this.kCache = Array.from({ length: c.layers }, (_, l) => this.kAll.subarray(l * block, (l + 1) * block));
    this.vCache = Array.from({ length: c.layers }, (_, l) => this.vAll.subarray(l * block, (l + 1) * block));
  }

  /** Runs the prompt through the model from position 0, filling the KV cache; logits of the last token. */
  async prefill(tokens: number[]): Promise<Float32Array> {
    this.position = 0;
    if (this.fused?.prefill) {
      const seqLen = this.weights.config.seqLen;
      if (tokens.length > seqLen) throw new ContextExceeded(seqLen, tokens.length);
      const logits = await this.fused.prefill(tokens, 0, this.kAll, this.vAll);
      this.position = tokens.length;
      return logits;
    }
    const hidden = await this.forward(tokens, true);
    const dim = this.weights.config.dim;
    return this.logits(hidden.subarray(hidden.length - dim));
  }

  /** Appends one token at the current position; logits for the next one. */
  async decode(token: number): Promise<Float32Array> {
    if (!this.fused) return this.logits(await this.forward([token], true));
    const c = this.weights.config;
    if (this.position + 1 > c.seqLen) throw new ContextExceeded(c.seqLen, this.position + 1);
    const logits = await this.fused.decode(token, this.position, this.kAll, this.vAll);
    this.position++;
    return logits;
  }

  /** Greedy continuation of `prompt` by `steps` tokens. */
  async generate(prompt: number[], steps: number): Promise<number[]> {
    const out: number[] = [];
    for await (const token of this.stream(prompt, steps)) out.push(token);
    return out;
  }

  /** Yields up to `steps` tokens after `prompt` as each is chosen by `pick` (greedy by default). */
  async *stream(prompt: number[], steps: number, pick: (logits: Float32Array) => number = argmax) {
    let logits = await this.prefill(prompt);
    for (let i = 0; i < steps; i++) {
      const next = pick(logits);
      yield next;
      if (i + 1 < steps) logits = await this.decode(next);
    }
  }

  /** Sentence embedding: the final-normed hidden states of the tokens, mean-pooled. Leaves the cache alone. */
  async embed(tokens: number[]): Promise<Float32Array> {
    const saved = this.position;
    this.position = 0;
    const hidden = await this.forward(tokens, false);
    this.position = saved;
    const dim = this.weights.config.dim;
    const out = new Float32Array(dim);
    for (let r = 0; r < tokens.length; r++)
      for (let j = 0; j < dim; j++) out[j]! += hidden[r * dim + j]! / tokens.length;
    return out;
  }

  /**
   * One decode step for several sequences at once: each a `Llama` on the same weights and ops at its
   * own position, each given its next token. The linear layers run once over all rows (the weights
   * are read once per step, not once per sequence); attention runs per sequence over its own KV
   * cache. Row i of the result is what `seqs[i].decode(tokens[i])` returns (unfused kernels).
   */
  static async decodeBatch(seqs: Llama[], tokens: number[]): Promise<Float32Array[]> {
    const first = seqs[0];
    if (!first) return [];
    const c = first.weights.config;
    for (const seq of seqs) {
      if (seq.weights !== first.weights || seq.ops !== first.ops)
        throw new KernelShapeMismatch(
          'decodeBatch',
          'every sequence of a batch must share one weights and ops',
        );
      if (seq.position + 1 > c.seqLen) throw new ContextExceeded(c.seqLen, seq.position + 1);
    }
    const pos = Int32Array.from(seqs, (seq) => seq.position);
    const hidden = await first.layers(tokens, pos, async (l, q, k, v) => {
      const att = new Float32Array(q.length);
      const kvDim = first.kvDim;
      await Promise.all(
        seqs.map(async (seq, i) => {
          const at = seq.position * kvDim;
          seq.kCache[l]!.set(k.subarray(i * kvDim, (i + 1) * kvDim), at);
          seq.vCache[l]!.set(v.subarray(i * kvDim, (i + 1) * kvDim), at);
          const len = at + kvDim;
          const qi = q.subarray(i * c.dim, (i + 1) * c.dim);
          att.set(
            await first.ops.attentionDecode(
              qi,
              seq.kCache[l]!.subarray(0, len),
              seq.vCache[l]!.subarray(0, len),
            ),
            i * c.dim,
          );
        }),
      );
      return att;
    });
    for (const seq of seqs) seq.position++;
    const logits = await first.ops.linear(hidden, first.weights.wcls, c.dim, c.vocab);
    return seqs.map((_, i) => logits.subarray(i * c.vocab, (i + 1) * c.vocab));
  }

  /** The KV cache rows written so far (position × kvDim per layer, keys then values): what a hand-off moves. */
  exportKv(): { position: number; k: Float32Array; v: Float32Array } {
    const n = this.position * this.kvDim;
    const k = new Float32Array(this.weights.config.layers * n);
    const v = new Float32Array(k.length);
    for (let l = 0; l < this.kCache.length; l++) {
      k.set(this.kCache[l]!.subarray(0, n), l * n);
      v.set(this.vCache[l]!.subarray(0, n), l * n);
    }
    return { position: this.position, k, v };
  }

  /** Takes over a KV cache another model of the same shape exported; decoding goes on from its position. */
  importKv(kv: { position: number; k: Float32Array; v: Float32Array }): void {
    const c = this.weights.config;
    const n = kv.position * this.kvDim;
    if (!Number.isInteger(kv.position) || kv.position < 0 || kv.position >= c.seqLen)
      throw new ContextExceeded(c.seqLen, kv.position);
    if (
      !(kv.k instanceof Float32Array) ||
      !(kv.v instanceof Float32Array) ||
      kv.k.length !== c.layers * n ||
      kv.v.length !== c.layers * n
    )
      throw new KernelShapeMismatch(
        'importKv',
        `a KV cache at position ${kv.position} holds ${c.layers * n} floats per side`,
      );
    for (let l = 0; l < c.layers; l++) {
      this.kCache[l]!.set(kv.k.subarray(l * n, (l + 1) * n));
      this.vCache[l]!.set(kv.v.subarray(l * n, (l + 1) * n));
    }
    this.position = kv.position;
  }

  /** Hidden states after the final RMSNorm, rows = tokens. */
  private async forward(tokens: number[], cache: boolean): Promise<Float32Array> {
    const c = this.weights.config;
    const s = tokens.length;
    const start = this.position;
    if (start + s > c.seqLen) throw new ContextExceeded(c.seqLen, start + s);
    const pos = Int32Array.from(tokens, (_, i) => start + i);
    const ops = this.ops;
    const hidden = await this.layers(tokens, pos, async (l, q, k, v) => {
      if (s === 1 && cache) {
        this.kCache[l]!.set(k, start * this.kvDim);
        this.vCache[l]!.set(v, start * this.kvDim);
        const len = (start + 1) * this.kvDim;
        return ops.attentionDecode(q, this.kCache[l]!.subarray(0, len), this.vCache[l]!.subarray(0, len));
      }
      if (cache) {
        this.kCache[l]!.set(k, 0);
        this.vCache[l]!.set(v, 0);
      }
      return ops.attentionPrefill(q, k, v);
    });
    if (cache) this.position = start + s;
    return hidden;
  }

  /** The layer stack over rows of tokens at positions `pos`; `attend` does each layer's attention. */
  private async layers(
    tokens: number[],
    pos: Int32Array,
    attend: (layer: number, q: Float32Array, k: Float32Array, v: Float32Array) => Promise<Float32Array>,
  ): Promise<Float32Array> {
    const w = this.weights;
    const c = w.config;
    const ops = this.ops;
    let x = await ops.embedding(w.tokenEmbedding, Int32Array.from(tokens));
    for (let l = 0; l < c.layers; l++) {
      const { q, k, v } = await attentionInputs(ops, w, l, x, pos, c.dim, this.shapes);
      const att = await attend(l, q, k, v);
      x = await ops.add(x, await ops.linear(att, w.wo[l]!, c.dim, c.dim));
      const xf = await ops.rmsnorm(x, w.rmsFfn[l]!);
      const ffn = w.moe
        ? await moeFfn(ops, c, w.moe, l, xf)
        : await swigluFfn(ops, w.w1[l]!, w.w3[l]!, w.w2[l]!, xf, c.dim, c.hiddenDim);
      x = await ops.add(x, ffn);
    }
    return ops.rmsnorm(x, w.rmsFinal);
  }

  private logits(last: Float32Array): Promise<Float32Array> {
    const c = this.weights.config;
    return this.ops.linear(last, this.weights.wcls, c.dim, c.vocab);
  }
}

export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}
