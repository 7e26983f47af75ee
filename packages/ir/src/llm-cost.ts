import { kvBytesPerToken, type ModelFacts, weightBytes } from '@stitch/models';
import type { OpDemand } from './registry.js';
import { elemBytes } from './types.js';

/** Weights, activations and KV cache are sized as bf16, the dtype decompose gives hidden states. */
export const LLM_DTYPE = 'bf16';
export const LLM_ELEM_BYTES = elemBytes(LLM_DTYPE);

/**
 * Prefill of T tokens over a share s of the model (layer fraction / shards):
 *   FLOPs = s · (2·params·T + 2·layers·T²·d_model)   (causal attention: QKᵀ and AV over T²/2 pairs)
 *   read  = s · weights,  written = s · KV(T),  held = s · (weights + KV(T))
 */
export function prefillDemand(m: ModelFacts, tokens: number, share = 1): Omit<OpDemand, 'networkBytes'> {
  const kv = kvBytesPerToken(m, LLM_ELEM_BYTES) * tokens;
  const w = weightBytes(m, LLM_ELEM_BYTES);
  return {
    flops: share * (2 * m.params * tokens + 2 * m.layers * tokens * tokens * m.dModel),
    bytesRead: share * w,
    bytesWritten: share * kv,
    memoryBytes: share * (w + kv),
  };
}

/**
 * Decode of n tokens after a context of c tokens; token i attends over c + i keys:
 *   FLOPs = n·2·params + 4·layers·d_model·P,  P = n·c + n(n−1)/2 (key positions summed)
 *   read  = n·weights + KVtok·P,  written = KVtok·n,  held = weights + KVtok·(c + n)
 */
export function decodeDemand(
  m: ModelFacts,
  context: number,
  n: number,
  share = 1,
): Omit<OpDemand, 'networkBytes'> {
  const positions = n * context + (n * (n - 1)) / 2;
  const kvTok = kvBytesPerToken(m, LLM_ELEM_BYTES);
  const w = weightBytes(m, LLM_ELEM_BYTES);
  return {
    flops: share * (n * 2 * m.params + 4 * m.layers * m.dModel * positions),
    bytesRead: share * (n * w + kvTok * positions),
    bytesWritten: share * kvTok * n,
    memoryBytes: share * (w + kvTok * (context + n)),
  };
}

/**
 * Ring all-reduce of the hidden state across tp shards, twice per layer (after attention and after
 * the MLP), for `layers` layers and `tokens` tokens: each op stands for all of those reductions.
 *   network = 2·layers · 2·(tp−1) · T·d_model·bytes,  FLOPs = 2·layers · (tp−1) · T·d_model
 */
export function allreduceDemand(
  m: ModelFacts,
  tp: number,
  tokens: number,
  layers: number,
): Partial<OpDemand> {
  const elems = tokens * m.dModel;
  const reductions = 2 * layers;
  return {
    flops: reductions * (tp - 1) * elems,
    bytesRead: reductions * tp * elems * LLM_ELEM_BYTES,
    bytesWritten: reductions * elems * LLM_ELEM_BYTES,
    networkBytes: reductions * 2 * (tp - 1) * elems * LLM_ELEM_BYTES,
  };
}
