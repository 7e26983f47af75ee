/** The shape fields of an `nn.llama_decode` or `nn.llama_prefill` spec that fix its weight layout. */
export interface LlamaShape {
  dim: number;
  hiddenDim: number;
  heads: number;
  kvHeads: number;
  quant?: 'q8_0';
}

export const LLAMA_MATRICES = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const;
export type LlamaMatrix = (typeof LLAMA_MATRICES)[number];

/**
 * Where each of a layer's tensors sits in the packed per-layer blocks `nn.llama_decode` and `nn.llama_prefill` read,
 * in llama2.c's order. f32: everything in `weights`. q8_0: the matrices' int8 values in `weights`,
 * the two norms and the matrices' scales (one per 32 along a row) in `params`.
 */
export function llamaLayerLayout(s: LlamaShape) {
  const kv = (s.dim / s.heads) * s.kvHeads;
  const dims: Record<'rmsAtt' | 'rmsFfn' | LlamaMatrix, [number] | [number, number]> = {
    rmsAtt: [s.dim],
    wq: [s.dim, s.dim],
    wk: [kv, s.dim],
    wv: [kv, s.dim],
    wo: [s.dim, s.dim],
    rmsFfn: [s.dim],
    w1: [s.hiddenDim, s.dim],
    w2: [s.dim, s.hiddenDim],
    w3: [s.hiddenDim, s.dim],
  };
  const offsets = {} as Record<keyof typeof dims, number>;
  const scales = {} as Record<LlamaMatrix, number>;
  let weights = 0;
  let params = 0;
  for (const [name, shape] of Object.entries(dims) as [keyof typeof dims, number[]][]) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (s.quant === 'q8_0' && shape.length === 1) {
      offsets[name] = params;
      params += n;
    } else {
      offsets[name] = weights;
      weights += n;
    }
  }
  if (s.quant === 'q8_0') {
    for (const name of LLAMA_MATRICES) {
      scales[name] = params;
      params += (dims[name][0] * dims[name][1]!) / 32;
    }
  }
  return { dims, offsets, scales, weights, params };
}
