import { compileKernel, llamaLayerLayout, type Target } from '@stitch/compiler';
import { KernelShapeMismatch } from '../errors.js';
import type { KernelRuntime } from '../runtime.js';
import { LAYER_KEYS, type LlamaWeights } from './weights.js';

/** One decode step in few native calls: the KV caches are [layers, seqLen, kvDim], shared with `Llama`. */
export interface FusedDecode {
  /** Native calls one `decode` makes. */
  readonly calls: number;
  decode(token: number, position: number, kCache: Float32Array, vCache: Float32Array): Promise<Float32Array>;
}

/**
 * Compiles the whole layer stack's decode step as one kernel (`nn.llama_decode`) and the classifier
 * as a second: two native calls per token, intermediates kept in the kernel's own buffers. The
 * layer weights are copied once into the packed layout the kernel reads.
 */
export async function fusedDecode(
  weights: LlamaWeights,
  runtime: KernelRuntime,
  options: { target: Target; cacheDir?: string },
): Promise<FusedDecode> {
  const c = weights.config;
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
  } as const;
  const [stackArtifact, classifierArtifact] = await Promise.all([
    compileKernel(spec, options),
    compileKernel({ op: 'nn.matvec', m: c.vocab, k: c.dim }, options),
  ]);
  const stack = runtime.load(stackArtifact);
  const classifier = runtime.load(classifierArtifact);
  const { offsets, floats } = llamaLayerLayout(c);
  const packed = new Float32Array(c.layers * floats);
  for (let l = 0; l < c.layers; l++) {
    for (const key of LAYER_KEYS) packed.set(weights[key][l]!, l * floats + offsets[key]);
  }
  return {
    calls: 2,
    async decode(token, position, kCache, vCache) {
      if (!(Number.isInteger(token) && token >= 0 && token < c.vocab)) {
        throw new KernelShapeMismatch(
          'llama_decode',
          `token id ${token} is outside the vocabulary [0, ${c.vocab})`,
        );
      }
      const x = weights.tokenEmbedding.slice(token * c.dim, (token + 1) * c.dim);
      const hidden = new Float32Array(c.dim);
      await stack.run([x, packed, weights.rmsFinal, Int32Array.of(position), kCache, vCache, hidden]);
      const logits = new Float32Array(c.vocab);
      await classifier.run([weights.wcls, hidden, logits]);
      return logits;
    },
  };
}
