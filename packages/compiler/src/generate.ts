import { attentionDecode, attentionPrefill } from './mlir/attention.js';
import { batchMatmul, type Generated, matmul, matvec } from './mlir/contraction.js';
import { llamaStack } from './mlir/llama.js';
import { matvecQ8 } from './mlir/quant.js';
import { rmsnormVector, softmaxVector } from './mlir/rowvec.js';
import { elementwise, embedding, rope, topkScores } from './mlir/rowwise.js';
import type { KernelSpec } from './spec.js';
import { validateSpec } from './spec.js';
import type { Target } from './targets.js';

/** MLIR text (linalg/arith/math on memrefs, plus a transform schedule for contractions) of a spec. */
export function generateKernel(spec: KernelSpec, target: Target): Generated {
  validateSpec(spec);
  const plain = (mlir: string): Generated => ({ mlir, scheduled: false });
  switch (spec.op) {
    case 'nn.matmul':
      return matmul(spec, target);
    case 'nn.batch_matmul':
      return batchMatmul(spec);
    case 'nn.matvec':
      return matvec(spec, target);
    case 'nn.matvec_q8':
      return plain(matvecQ8(spec));
    case 'nn.add':
    case 'nn.swiglu':
      return plain(elementwise(spec));
    case 'nn.rmsnorm':
      return plain(rmsnormVector(spec));
    case 'nn.softmax':
      return plain(softmaxVector(spec, target));
    case 'nn.rope':
      return plain(rope(spec));
    case 'nn.attention_prefill':
      return plain(attentionPrefill(spec));
    case 'nn.attention_decode':
      return plain(attentionDecode(spec));
    case 'nn.embedding':
      return plain(embedding(spec));
    case 'nn.topk':
      return plain(topkScores(spec));
    case 'nn.llama_decode':
    case 'nn.llama_prefill':
      return plain(llamaStack(spec));
  }
}
