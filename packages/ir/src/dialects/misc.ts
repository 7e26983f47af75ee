import { intAttr, numAttr } from '../attrs.js';
import type { Op } from '../graph.js';
import {
  ANY,
  type DemandContext,
  JSON_C,
  KV_C,
  type OpSchema,
  TENSOR,
  TEXT_C,
  TEXT_OR_JSON,
} from '../registry.js';
import { TEXT_BYTES_PER_TOKEN } from '../sizes.js';
import { checkPartitions, decomposeSearch } from './vector-partitions.js';

const inBytes = (op: Op, ctx: DemandContext) => op.operands.reduce((n, v) => n + ctx.bytesOf(v), 0);
const outBytes = (op: Op, ctx: DemandContext) => op.results.reduce((n, v) => n + ctx.bytesOf(v), 0);

/** Moves bytes, computes nothing: read its inputs, write its outputs. */
function io(op: Op, ctx: DemandContext) {
  return { bytesRead: inBytes(op, ctx), bytesWritten: outBytes(op, ctx) };
}

/** A model-backed text engine: 2·params FLOPs per token processed, weights resident. */
function engine(op: Op, ctx: DemandContext, tokens: number) {
  const params = numAttr(op.attrs, 'model_params') ?? 0;
  const weights = params * 2;
  return {
    ...io(op, ctx),
    flops: 2 * params * tokens,
    bytesRead: inBytes(op, ctx) + weights,
    memoryBytes: weights,
  };
}

const engineAttrs = { engine: { kind: 'str' }, model_params: { kind: 'number', min: 0 } } as const;
/** A size or count (bytes, tokens, vectors): zero is a size like any other, a negative one is not. */
const count = { kind: 'int', min: 0 } as const;

export const kvDialect: readonly OpSchema[] = [
  {
    name: 'kv.cache',
    summary: 'A KV-cache allocation for `tokens` tokens of `model`',
    operands: [],
    results: [KV_C],
    attrs: { model: { kind: 'str', required: true }, tokens: { ...count, required: true } },
    demand: (op, ctx) => ({ memoryBytes: outBytes(op, ctx) }),
  },
  {
    name: 'kv.transfer',
    summary: 'Moves (and gathers shards of) a KV cache from the prefill device to the decode device',
    operands: [KV_C],
    variadicOperands: KV_C,
    results: [KV_C],
    attrs: { model: { kind: 'str', required: true }, tokens: { ...count, required: true } },
    demand: io,
  },
];

export const toolDialect: readonly OpSchema[] = [
  {
    name: 'tool.invoke',
    summary: 'Calls an external tool (web search, calculator, …); `latency_ms` is its static latency',
    operands: [],
    variadicOperands: TEXT_OR_JSON,
    results: [TEXT_OR_JSON],
    attrs: {
      tool: { kind: 'str', required: true },
      latency_ms: { kind: 'number', min: 0 },
      bytes: count,
    },
    demand: io,
  },
];

export const memoryDialect: readonly OpSchema[] = [
  {
    name: 'memory.load',
    summary: 'Reads agent memory under `key`',
    operands: [],
    variadicOperands: TEXT_OR_JSON,
    results: [JSON_C],
    attrs: { key: { kind: 'str', required: true }, bytes: count },
    demand: io,
  },
  {
    name: 'memory.store',
    summary: 'Writes agent memory under `key`',
    operands: [ANY],
    variadicOperands: ANY,
    results: [],
    attrs: { key: { kind: 'str', required: true } },
    demand: (op, ctx) => ({ bytesRead: inBytes(op, ctx), bytesWritten: inBytes(op, ctx) }),
  },
  {
    name: 'memory.vector_search',
    summary:
      'Top-k search of a query against `n_vectors` × `dim` stored embeddings; `partitions = P` splits the keys over P operators',
    operands: [ANY],
    results: [JSON_C],
    attrs: {
      index: { kind: 'str', required: true },
      n_vectors: { ...count, required: true },
      dim: { ...count, required: true },
      k: { ...count, required: true },
      partitions: { kind: 'int' },
      partition: { kind: 'int' },
    },
    verify: checkPartitions,
    demand: (op, ctx) => {
      const table = (intAttr(op.attrs, 'n_vectors') ?? 0) * (intAttr(op.attrs, 'dim') ?? 0);
      return {
        flops: 2 * table,
        bytesRead: 4 * table + inBytes(op, ctx),
        bytesWritten: outBytes(op, ctx),
        memoryBytes: 4 * table,
      };
    },
    decompose: decomposeSearch,
  },
  {
    name: 'memory.vector_merge',
    summary: 'The k nearest of the top-k lists of a partitioned vector search (one operand per partition)',
    operands: [JSON_C],
    variadicOperands: JSON_C,
    results: [JSON_C],
    attrs: { k: { kind: 'int', required: true }, partitions: { kind: 'int', required: true } },
    demand: io,
  },
];

export const textDialect: readonly OpSchema[] = [
  {
    name: 'text.privacy_filter',
    summary: 'Redacts personal data from text (a small classifier model)',
    operands: [TEXT_C],
    results: [TEXT_C],
    attrs: engineAttrs,
    demand: (op, ctx) => engine(op, ctx, inBytes(op, ctx) / TEXT_BYTES_PER_TOKEN),
  },
  {
    name: 'text.stt',
    summary: 'Speech to text by an external engine; the operand is audio samples',
    operands: [TENSOR],
    results: [TEXT_C],
    // The rate divides the sample count: zero would make the audio endless.
    attrs: { ...engineAttrs, sample_rate: { kind: 'int', min: 1 } },
    // Whisper-style encoders see 50 frames per second of audio.
    demand: (op, ctx) => {
      const audio = op.operands[0]!.type;
      const samples = audio.kind === 'tensor' ? audio.shape.reduce<number>((n, d) => n * (d ?? 1), 1) : 0;
      return engine(op, ctx, (50 * samples) / (intAttr(op.attrs, 'sample_rate') ?? 16000));
    },
  },
  {
    name: 'text.embed',
    summary: 'Text to a `dim`-vector by an encoder (compiled kernels or an embeddings endpoint)',
    operands: [TEXT_OR_JSON],
    results: [TENSOR],
    attrs: { ...engineAttrs, dim: { ...count, required: true } },
    demand: (op, ctx) => engine(op, ctx, inBytes(op, ctx) / TEXT_BYTES_PER_TOKEN),
  },
  {
    name: 'text.tts',
    summary: 'Text to speech by an external engine; the result is audio samples',
    operands: [TEXT_C],
    results: [TENSOR],
    attrs: engineAttrs,
    demand: (op, ctx) => engine(op, ctx, inBytes(op, ctx) / TEXT_BYTES_PER_TOKEN),
  },
];
