import { LLAMA_MATRICES, llamaLayerLayout, obtainKernel, type Target } from '@stitch/compiler';
import { quantizeQ8_0 } from '../checkpoint/q8.js';
import { KernelOptionsInvalid, KernelShapeMismatch } from '../errors.js';
import type { KernelArray, KernelRuntime } from '../runtime.js';
import { threadedKernel } from '../threaded.js';
import type { LlamaWeights } from './weights.js';

/** One decode step in few native calls: the KV caches are [layers, seqLen, kvDim], shared with `Llama`. */
export interface FusedDecode {
  /** Native calls one `decode` makes. */
  readonly calls: number;
  /** Weight bytes one `decode` reads (layer tensors, final norm, classifier, one embedding row). */
  readonly bytesPerToken: number;
  decode(token: number, position: number, kCache: Float32Array, vCache: Float32Array): Promise<Float32Array>;
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
}

/**
 * Compiles the whole layer stack's decode step as one kernel (`nn.llama_decode`) and the classifier
 * as a second: two native calls per token, intermediates kept in the kernel's own buffers. The
 * layer weights are copied once into the packed layout the kernel reads.
 */
export async function fusedDecode(
  weights: LlamaWeights,
  runtime: KernelRuntime,
  options: FusedOptions,
): Promise<FusedDecode> {
  const c = weights.config;
  const { quant, threads = 1, ...compile } = options;
  if (weights.moe)
    throw new KernelOptionsInvalid(
      'the fused decode step has a dense FFN: decode a mixture of experts with kernelOps',
    );
  if (quant && (c.dim % 32 !== 0 || c.hiddenDim % 32 !== 0)) {
    throw new KernelOptionsInvalid(
      `q8_0 decode needs dim and hiddenDim to be multiples of 32, got ${c.dim}, ${c.hiddenDim}`,
    );
  }
  const spec = {
    op: 'nn.llama_decode',
    dim: c.dim,
    hiddenDim: c.hiddenDim,
    layers: c.layers,
    heads: c.heads,
    kvHeads: c.kvHeads,
    seqLen: c.seqLen,
    eps: c.eps ?? 1e-5,
    theta: c.theta ?? 10000,
    ...(quant ? { quant } : {}),
  } as const;
  const [stackArtifact, classifier] = await Promise.all([
    obtainKernel(spec, compile),
    threadedKernel(
      runtime,
      { op: quant ? 'nn.matvec_q8' : 'nn.matvec', m: c.vocab, k: c.dim },
      {
        ...compile,
        threads,
      },
    ),
  ]);
  const stack = runtime.load(stackArtifact);
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
  const cls = quant ? quantizeQ8_0(weights.wcls) : null;
  const classifierArgs: KernelArray[] = cls ? [cls.q, cls.scales] : [weights.wcls];
  const stackBytes = packed.byteLength + params.byteLength;
  const classifierBytes = classifierArgs.reduce((n, a) => n + a.byteLength, 0);
  return {
    calls: 2,
    bytesPerToken: stackBytes + classifierBytes + 8 * c.dim,
    async decode(token, position, kCache, vCache) {
      if (!(Number.isInteger(token) && token >= 0 && token < c.vocab)) {
        throw new KernelShapeMismatch(
          'llama_decode',
          `token id ${token} is outside the vocabulary [0, ${c.vocab})`,
        );
      }
      const x = weights.tokenEmbedding.slice(token * c.dim, (token + 1) * c.dim);
      const hidden = new Float32Array(c.dim);
      const pos = Int32Array.of(position);
      await stack.run([x, packed, ...(quant ? [params] : []), weights.rmsFinal, pos, kCache, vCache, hidden]);
      const logits = new Float32Array(c.vocab);
      await classifier.run([...classifierArgs, hidden, logits]);
      return logits;
    },
  };
}
