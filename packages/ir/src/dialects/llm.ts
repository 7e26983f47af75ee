import { findModel, type ModelFacts, modelIds } from '@stitch/models';
import { intAttr, strAttr } from '../attrs.js';
import type { Op } from '../graph.js';
import { allreduceDemand, decodeDemand, LLM_ELEM_BYTES, prefillDemand } from '../llm-cost.js';
import { KV_C, type OpSchema, TENSOR, TEXT_C, TEXT_OR_JSON, TOKENS } from '../registry.js';
import { llmShare } from '../sizes.js';
import { decomposeCall, splitProblems } from './llm-decompose.js';

const modelAttrs = {
  model: { kind: 'str', required: true },
  tokens: { kind: 'int', required: true, min: 0 },
} as const;
/** A layer index or count, or a shard index: a position, so never negative. */
const position = { kind: 'int', min: 0 } as const;
/** A tensor- or expert-parallel degree on a granular op: one shard at least. */
const degree = { kind: 'int', min: 1 } as const;

function modelOf(op: Op): ModelFacts {
  // verify() has checked the model exists before any demand function runs.
  return findModel(strAttr(op.attrs, 'model') ?? '')!;
}

function checkModel(op: Op): string[] {
  const id = strAttr(op.attrs, 'model');
  if (id === undefined || findModel(id)) return [];
  return [`unknown model '${id}'; known models: ${modelIds().join(', ')}`];
}

const n = (op: Op, key: string) => intAttr(op.attrs, key) ?? 0;

function checkSplit(op: Op): string[] {
  const split = {
    tp: intAttr(op.attrs, 'tp'),
    ep: intAttr(op.attrs, 'ep'),
    layerGroups: intAttr(op.attrs, 'layer_groups'),
  };
  const model = findModel(strAttr(op.attrs, 'model') ?? '');
  return splitProblems(split, model, (key) => (key === 'layerGroups' ? 'layer_groups' : key));
}

export const llmDialect: readonly OpSchema[] = [
  {
    name: 'llm.call',
    summary: 'A whole LLM call (prompt in, completion out); `decompose` splits it into granular ops',
    operands: [TEXT_OR_JSON],
    variadicOperands: TEXT_OR_JSON,
    results: [TEXT_C],
    attrs: {
      model: { kind: 'str', required: true },
      prompt_tokens: { kind: 'int', required: true, min: 0 },
      max_tokens: { kind: 'int', required: true, min: 0 },
      // This call's split, over the pass options: tensor- or expert-parallel degree, and layer groups.
      tp: { kind: 'int' },
      ep: { kind: 'int' },
      layer_groups: { kind: 'int' },
    },
    verify: (op) => [...checkModel(op), ...checkSplit(op)],
    demand: (op) => {
      const m = modelOf(op);
      const p = prefillDemand(m, n(op, 'prompt_tokens'));
      const d = decodeDemand(m, n(op, 'prompt_tokens'), n(op, 'max_tokens'));
      return {
        flops: p.flops + d.flops,
        bytesRead: p.bytesRead + d.bytesRead,
        bytesWritten: p.bytesWritten + d.bytesWritten,
        memoryBytes: d.memoryBytes,
      };
    },
    decompose: decomposeCall,
  },
  {
    name: 'llm.tokenize',
    summary: 'Text → token ids',
    operands: [TEXT_OR_JSON],
    variadicOperands: TEXT_OR_JSON,
    results: [TOKENS],
    attrs: modelAttrs,
    verify: checkModel,
    demand: (op) => ({ bytesRead: n(op, 'tokens') * 4, bytesWritten: n(op, 'tokens') * 4 }),
  },
  {
    name: 'llm.prefill',
    summary: 'Prompt processing; fills the KV cache (optionally a layer range / shard of it)',
    operands: [TENSOR],
    results: [KV_C],
    variadicResults: TENSOR,
    attrs: {
      ...modelAttrs,
      layer_start: position,
      layer_end: position,
      tp: degree,
      ep: degree,
      shard: position,
    },
    verify: checkModel,
    demand: (op) => {
      const m = modelOf(op);
      return prefillDemand(m, n(op, 'tokens'), llmShare(op, m.layers));
    },
  },
  {
    name: 'llm.decode',
    summary: 'Generates `tokens` tokens after `context_tokens` of context (one op for the whole loop)',
    operands: [KV_C],
    variadicOperands: TENSOR,
    results: [TOKENS],
    attrs: { ...modelAttrs, context_tokens: { kind: 'int', required: true, min: 0 }, tp: degree },
    verify: checkModel,
    demand: (op) => {
      const m = modelOf(op);
      const d = decodeDemand(m, n(op, 'context_tokens'), n(op, 'tokens'));
      const tp = intAttr(op.attrs, 'tp') ?? 1;
      const net = tp > 1 ? (allreduceDemand(m, tp, n(op, 'tokens'), m.layers).networkBytes ?? 0) : 0;
      return { ...d, networkBytes: net };
    },
  },
  {
    name: 'llm.detokenize',
    summary: 'Token ids → text',
    operands: [TOKENS],
    results: [TEXT_C],
    attrs: modelAttrs,
    verify: checkModel,
    demand: (op) => ({ bytesRead: n(op, 'tokens') * 4, bytesWritten: n(op, 'tokens') * 4 }),
  },
  {
    name: 'llm.allreduce',
    summary:
      "Tensor-parallel all-reduces of a layer group's partial hidden states (after each layer's attention and FFN)",
    operands: [TENSOR],
    variadicOperands: TENSOR,
    results: [TENSOR],
    attrs: { ...modelAttrs, tp: { ...degree, required: true }, layers: { ...position, required: true } },
    verify: checkModel,
    demand: (op) => allreduceDemand(modelOf(op), n(op, 'tp'), n(op, 'tokens'), n(op, 'layers')),
  },
  {
    name: 'llm.merge',
    summary: 'Expert-parallel merge of expert-shard outputs after a layer group',
    operands: [TENSOR],
    variadicOperands: TENSOR,
    results: [TENSOR],
    attrs: { ...modelAttrs, ep: { ...degree, required: true }, layers: { ...position, required: true } },
    verify: checkModel,
    // Per layer one dispatch and one combine all-to-all of the hidden state: 2·layers·(ep−1)·T·d·bytes.
    demand: (op) => {
      const m = modelOf(op);
      const elems = n(op, 'tokens') * m.dModel;
      const ep = n(op, 'ep');
      return {
        flops: (ep - 1) * elems,
        bytesRead: ep * elems * LLM_ELEM_BYTES,
        bytesWritten: elems * LLM_ELEM_BYTES,
        networkBytes: 2 * n(op, 'layers') * (ep - 1) * elems * LLM_ELEM_BYTES,
      };
    },
  },
];
