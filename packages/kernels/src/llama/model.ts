import { ContextExceeded } from '../errors.js';
import type { FusedDecode } from './fused.js';
import type { LlamaOps } from './ops.js';
import type { LlamaWeights } from './weights.js';

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
  /** Tokens in the KV cache. */
  position = 0;

  /** With `fused`, `decode` runs its fused step (few native calls); prefill and embed use `ops`. */
  constructor(
    readonly weights: LlamaWeights,
    private readonly ops: LlamaOps,
    private readonly fused?: FusedDecode,
  ) {
    const c = weights.config;
    this.kvDim = (c.dim / c.heads) * c.kvHeads;
    const block = c.seqLen * this.kvDim;
    this.kAll = new Float32Array(c.layers * block);
    this.vAll = new Float32Array(c.layers * block);
    this.kCache = Array.from({ length: c.layers }, (_, l) => this.kAll.subarray(l * block, (l + 1) * block));
    this.vCache = Array.from({ length: c.layers }, (_, l) => this.vAll.subarray(l * block, (l + 1) * block));
  }

  /** Runs the prompt through the model from position 0, filling the KV cache; logits of the last token. */
  async prefill(tokens: number[]): Promise<Float32Array> {
    this.position = 0;
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

  /** Hidden states after the final RMSNorm, rows = tokens. */
  private async forward(tokens: number[], cache: boolean): Promise<Float32Array> {
    const w = this.weights;
    const c = w.config;
    const s = tokens.length;
    const start = this.position;
    if (start + s > c.seqLen) throw new ContextExceeded(c.seqLen, start + s);
    const pos = Int32Array.from(tokens, (_, i) => start + i);
    const ops = this.ops;
    let x = await ops.embedding(w.tokenEmbedding, Int32Array.from(tokens));
    for (let l = 0; l < c.layers; l++) {
      const xb = await ops.rmsnorm(x, w.rmsAtt[l]!);
      const [q0, k0, v] = await Promise.all([
        ops.linear(xb, w.wq[l]!, c.dim, c.dim),
        ops.linear(xb, w.wk[l]!, c.dim, this.kvDim),
        ops.linear(xb, w.wv[l]!, c.dim, this.kvDim),
      ]);
      const [q, k] = await Promise.all([ops.rope(q0, pos, c.heads), ops.rope(k0, pos, c.kvHeads)]);
      let att: Float32Array;
      if (s === 1 && cache) {
        this.kCache[l]!.set(k, start * this.kvDim);
        this.vCache[l]!.set(v, start * this.kvDim);
        const len = (start + 1) * this.kvDim;
        att = await ops.attentionDecode(
          q,
          this.kCache[l]!.subarray(0, len),
          this.vCache[l]!.subarray(0, len),
        );
      } else {
        if (cache) {
          this.kCache[l]!.set(k, 0);
          this.vCache[l]!.set(v, 0);
        }
        att = await ops.attentionPrefill(q, k, v);
      }
      x = await ops.add(x, await ops.linear(att, w.wo[l]!, c.dim, c.dim));
      const xf = await ops.rmsnorm(x, w.rmsFfn[l]!);
      const [gate, up] = await Promise.all([
        ops.linear(xf, w.w1[l]!, c.dim, c.hiddenDim),
        ops.linear(xf, w.w3[l]!, c.dim, c.hiddenDim),
      ]);
      x = await ops.add(x, await ops.linear(await ops.swiglu(gate, up), w.w2[l]!, c.hiddenDim, c.dim));
    }
    if (cache) this.position = start + s;
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
