import { setImmediate } from 'node:timers/promises';
import {
  type KernelSpec,
  LLAMA_MATRICES,
  llamaLayerLayout,
  obtainKernel,
  type Target,
} from '@stitch/compiler';
import { quantizeQ8_0 } from '../checkpoint/q8.js';
import { KernelOptionsInvalid, KernelShapeMismatch } from '../errors.js';
import type { KernelArray, KernelRuntime } from '../runtime.js';
import { type ThreadedKernel, threadedKernel } from '../threaded.js';
import type { LlamaWeights } from './weights.js';

/**
 * The layer stack in few native calls: the KV caches are [layers, seqLen, kvDim], shared with
 * `Llama`. `decode` appends one token; with the `prefill` option, `prefill` runs a whole prompt.
 */
export interface FusedDecode {
  /** Native calls one `decode` makes. */
  readonly calls: number;
  /** Weight bytes one `decode` reads (layer tensors, final norm, classifier, one embedding row). */
  readonly bytesPerToken: number;
  decode(token: number, position: number, kCache: Float32Array, vCache: Float32Array): Promise<Float32Array>;
  /**
   * Runs `tokens` at positions `position`, `position` + 1, … through the layer stack in one native
   * call (f32 weights, also with `quant`), writing their KV cache rows, then the classifier on the
   * last row: two calls per prompt. Logits of the last token.
   */
  prefill?(
    tokens: number[],
    position: number,
    kCache: Float32Array,
    vCache: Float32Array,
  ): Promise<Float32Array>;
}

export interface FusedOptions {
  target: Target;
  cacheDir?: string;
  /**
   * 'q8_0': the layer matrices and the classifier are quantized (as llama.cpp's q8_0; lossless for
   * weights loaded from q8_0 GGUF tensors) and read as int8. Needs dim and hiddenDim % 32 == 0.
   */
  quant?: 'q8_0';
  /**
   * Threads the classifier's rows are split across (its matvec is the largest single read of a
   * step); the layer stack stays one call on one thread. At most the runtime's budget.
   * @default 1
   */
  threads?: number;
  /**
   * Also compile the prompt's layer stack (`nn.llama_prefill`) and give the result `prefill`. With
   * `quant`, prefill keeps its own f32 copy of the layer weights and classifier.
   * @default false
   */
  prefill?: boolean;
}

/**
 * Compiles the whole layer stack's decode step as one kernel (`nn.llama_decode`) and the classifier
 * as a second: two native calls per token, intermediates kept in the kernel's own buffers. The
 * layer weights are copied once into the packed layout the kernel reads. With `prefill`, the same
 * stack over a prompt's rows (`nn.llama_prefill`) too: two calls per prompt.
 */
export async function fusedDecode(
  weights: LlamaWeights,
  runtime: KernelRuntime,
  options: FusedOptions,
): Promise<FusedDecode> {
  const c = weights.config;
  const { quant, threads = 1, prefill = false, ...compile } = options;
  if (weights.moe)
    throw new KernelOptionsInvalid(
      'the fused decode step has a dense FFN: decode a mixture of experts with kernelOps',
    );
  if (quant && (c.dim % 32 !== 0 || c.hiddenDim % 32 !== 0)) {
    throw new KernelOptionsInvalid(
      `q8_0 decode needs dim and hiddenDim to be multiples of 32, got ${c.dim}, ${c.hiddenDim}`,
    );
  }
  const shape = {
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    layers: c.layers,
    heads: c.heads,
    kvHeads: c.kvHeads,
    seqLen: c.seqLen,
    eps: c.eps ?? 1e-5,
    theta: c.theta ?? 10000,
  };
  const classifierKernel = (q8: boolean) =>
    threadedKernel(
      runtime,
      { op: q8 ? 'nn.matvec_q8' : 'nn.matvec', m: c.vocab, k: c.dim },
      { ...compile, threads },
    );
  const [decodeStack, classifier] = await Promise.all([
    stackKernel(runtime, { op: 'nn.llama_decode', ...shape, ...(quant ? { quant } : {}) }, weights, compile),
    classifierKernel(quant !== undefined),
  ]);
  const cls = quant ? quantizeQ8_0(weights.wcls) : null;
  const classifierArgs: KernelArray[] = cls ? [cls.q, cls.scales] : [weights.wcls];
  const classifierBytes = classifierArgs.reduce((n, a) => n + a.byteLength, 0);
  const checkToken = (symbol: string, token: number) => {
    if (!(Number.isInteger(token) && token >= 0 && token < c.vocab)) {
      throw new KernelShapeMismatch(symbol, `token id ${token} is outside the vocabulary [0, ${c.vocab})`);
    }
  };
  const logits = async (kernel: ThreadedKernel, args: KernelArray[], hidden: Float32Array) => {
    const out = new Float32Array(c.vocab);
    await kernel.run([...args, hidden, out]);
    return out;
  };
  const step: FusedDecode = {
    calls: 2,
    bytesPerToken: decodeStack.bytes + classifierBytes + 8 * c.dim,
    async decode(token, position, kCache, vCache) {
      checkToken('llama_decode', token);
      const x = weights.tokenEmbedding.slice(token * c.dim, (token + 1) * c.dim);
      const hidden = new Float32Array(c.dim);
      await decodeStack.run(x, position, kCache, vCache, hidden);
      return logits(classifier, classifierArgs, hidden);
    },
  };
  if (!prefill) return step;
  const [prefillStack, f32Classifier] = await Promise.all([
    stackKernel(runtime, { op: 'nn.llama_prefill', ...shape }, weights, compile),
    quant ? classifierKernel(false) : classifier,
  ]);
  step.prefill = async (tokens, position, kCache, vCache) => {
    if (tokens.length === 0)
      throw new KernelShapeMismatch('llama_prefill', 'a prompt needs at least one token');
    const x = new Float32Array(tokens.length * c.dim);
    tokens.forEach((token, i) => {
      checkToken('llama_prefill', token);
      x.set(weights.tokenEmbedding.subarray(token * c.dim, (token + 1) * c.dim), i * c.dim);
    });
    const hidden = new Float32Array(x.length);
    await prefillStack.run(x, position, kCache, vCache, hidden);
    return logits(f32Classifier, [weights.wcls], hidden.subarray(hidden.length - c.dim));
  };
  return step;
}

type StackSpec = Extract<KernelSpec, { op: 'nn.llama_decode' | 'nn.llama_prefill' }>;

/**
 * A layer-stack kernel and its weights, copied once into the packed layout it reads; `run` takes
 * the embedded rows, the first row's position, the caches and the output rows.
 */
async function stackKernel(
  runtime: KernelRuntime,
  spec: StackSpec,
  weights: LlamaWeights,
  compile: { target: Target; cacheDir?: string },
) {
  const c = weights.config;
  const kernel = runtime.load(await obtainKernel(spec, compile));
  const quant = spec.op === 'nn.llama_decode' && spec.quant !== undefined;
  const layout = llamaLayerLayout(spec);
  const packed = quant
    ? new Int8Array(c.layers * layout.weights)
    : new Float32Array(c.layers * layout.weights);
  const params = new Float32Array(c.layers * layout.params);
  for (let l = 0; l < c.layers; l++) {
    for (const norm of ['rmsAtt', 'rmsFfn'] as const) {
      (quant ? params : packed).set(
        weights[norm][l]!,
        l * (quant ? layout.params : layout.weights) + layout.offsets[norm],
      );
    }
    for (const m of LLAMA_MATRICES) {
      // A turn for the event loop per matrix: a 7B model's layers took about 13 s to copy in one go.
      await setImmediate();
      const at = l * layout.weights + layout.offsets[m];
      if (!quant) {
        packed.set(weights[m][l]!, at);
        continue;
      }
      const { q, scales } = quantizeQ8_0(weights[m][l]!);
      packed.set(q, at);
      params.set(scales, l * layout.params + layout.scales[m]);
    }
  }
  const stackWeights: KernelArray[] = quant ? [packed, params] : [packed];
  return {
    bytes: packed.byteLength + params.byteLength,
    run: (x: Float32Array, position: number, kCache: Float32Array, vCache: Float32Array, out: Float32Array) =>
      kernel.run([x, ...stackWeights, weights.rmsFinal, Int32Array.of(position), kCache, vCache, out]),
  };
}
