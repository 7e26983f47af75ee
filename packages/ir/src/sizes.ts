import { findModel, kvBytesPerToken } from '@stitch/models';
import { intAttr } from './attrs.js';
import type { Op, Value } from './graph.js';
import { LLM_ELEM_BYTES } from './llm-cost.js';
import { elemBytes, numElements } from './types.js';

/** Text travels as UTF-8; four bytes per token is the usual English average. */
export const TEXT_BYTES_PER_TOKEN = 4;
/** Size assumed for text or JSON whose producer states neither `bytes` nor a token count. */
export const DEFAULT_TEXT_BYTES = 1024;
export const DEFAULT_JSON_BYTES = 2048;
/** The attributes `valueBytes` sizes a value by, read from whatever op produces it. */
export const SIZE_ATTRS: readonly string[] = ['bytes', 'max_tokens', 'tokens'];

/** Share of an LLM's layers and shards an op covers: (layer_end − layer_start)/layers / (tp·ep). */
export function llmShare(op: Op, layers: number): number {
  const start = intAttr(op.attrs, 'layer_start') ?? 0;
  const end = intAttr(op.attrs, 'layer_end') ?? layers;
  const shards = (intAttr(op.attrs, 'tp') ?? 1) * (intAttr(op.attrs, 'ep') ?? 1);
  return (end - start) / layers / shards;
}

function kvBytes(producer: Op | undefined): number {
  const model =
    producer &&
    findModel(String(producer.attrs['model']?.kind === 'str' ? producer.attrs['model'].value : ''));
  if (!producer || !model) return 0;
  const tokens = intAttr(producer.attrs, 'tokens') ?? 0;
  const share = producer.name === 'llm.prefill' ? llmShare(producer, model.layers) : 1;
  return kvBytesPerToken(model, LLM_ELEM_BYTES) * tokens * share;
}

/** Bytes a value occupies on an edge, from its type and the attributes of the op producing it. */
export function valueBytes(v: Value, producer: Op | undefined): number {
  const t = v.type;
  if (t.kind === 'tensor') return numElements(t) * elemBytes(t.elem);
  if (t.kind === 'scalar') return elemBytes(t.name);
  if (t.dialect === 'kv') return kvBytes(producer);
  const attrs = producer?.attrs ?? {};
  const bytes = intAttr(attrs, 'bytes');
  if (bytes !== undefined) return bytes;
  if (t.name === 'json') return DEFAULT_JSON_BYTES;
  const tokens = intAttr(attrs, 'max_tokens') ?? intAttr(attrs, 'tokens');
  return tokens !== undefined ? tokens * TEXT_BYTES_PER_TOKEN : DEFAULT_TEXT_BYTES;
}
