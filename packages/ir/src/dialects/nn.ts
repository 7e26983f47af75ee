import { intAttr, strAttr } from '../attrs.js';
import type { Op } from '../graph.js';
import {
  constraint,
  type DemandContext,
  FLOAT_TENSOR,
  type OpSchema,
  TENSOR,
  TOKENS,
  tensorOfRank,
} from '../registry.js';
import { numElements, printType, type Type } from '../types.js';

const DTYPES = new Set(['f32', 'bf16', 'f16']);
const dtypeAttr = { dtype: { kind: 'any', required: true } } as const;

const shape = (t: Type) => (t.kind === 'tensor' ? t.shape : []);
const dims = (op: Op, i: number) => shape((i < 0 ? op.results[-i - 1] : op.operands[i])!.type);
const el = (op: Op) => op.results.reduce((n, r) => n + numElements(r.type), 0);

function checkDtype(op: Op): string[] {
  const a = op.attrs['dtype'];
  const name = a?.kind === 'type' ? printType(a.type) : a?.kind === 'str' ? a.value : undefined;
  return name !== undefined && DTYPES.has(name) ? [] : [`${op.name}: dtype must be f32, bf16 or f16`];
}

/** Builds a verifier from expected result dims; `dims` of -1 come from operand shapes. */
function expectShape(compute: (op: Op) => readonly (number | null | undefined)[]): (op: Op) => string[] {
  return (op) => {
    const want = compute(op);
    const got = dims(op, -1);
    const problems = checkDtype(op);
    if (want.some((d) => d === undefined) || want.join('x') !== got.join('x')) {
      const ins = op.operands.map((v) => printType(v.type)).join(', ');
      problems.push(
        `${op.name}: operands (${ins}) give result shape ${want.map((d) => d ?? '?').join('x')}, found ${got.join('x')}`,
      );
    }
    return problems;
  };
}

/** Reads all inputs and writes all outputs once; `flopsPerOut` FLOPs per output element unless given. */
function streaming(flops: (op: Op) => number) {
  return (op: Op, ctx: DemandContext) => {
    const read = op.operands.reduce((n, v) => n + ctx.bytesOf(v), 0);
    const written = op.results.reduce((n, v) => n + ctx.bytesOf(v), 0);
    return { flops: flops(op), bytesRead: read, bytesWritten: written, memoryBytes: read + written };
  };
}

const same = (op: Op) => dims(op, 0);
const d = (op: Op, i: number, k: number) => dims(op, i)[k] ?? 0;
const SCORES = constraint('a 1-d float tensor', (t) => FLOAT_TENSOR.accepts(t) && shape(t).length === 1);

function nn(
  name: string,
  summary: string,
  operands: OpSchema['operands'],
  resultShape: (op: Op) => readonly (number | null | undefined)[],
  flops: (op: Op) => number,
  extra: Partial<OpSchema> = {},
): OpSchema {
  return {
    name,
    summary,
    operands,
    results: [TENSOR],
    attrs: { ...dtypeAttr, ...(extra.attrs ?? {}) },
    verify: expectShape(resultShape),
    demand: streaming(flops),
    ...(extra.results ? { results: extra.results } : {}),
  };
}

const r2 = tensorOfRank(2);
const r3 = tensorOfRank(3);

export const nnDialect: readonly OpSchema[] = [
  nn(
    'nn.matmul',
    'M×K · K×N (B given as N×K with the transpose_b unit attribute)',
    [r2, r2],
    (op) => {
      const [k, n] = op.attrs['transpose_b'] ? [d(op, 1, 1), d(op, 1, 0)] : [d(op, 1, 0), d(op, 1, 1)];
      return [d(op, 0, 0), d(op, 0, 1) === k ? n : undefined];
    },
    (op) => 2 * d(op, 0, 0) * d(op, 0, 1) * d(op, -1, 1),
    { attrs: { transpose_b: { kind: 'unit' } } },
  ),
  nn(
    'nn.batch_matmul',
    'B×M×K · B×K×N',
    [r3, r3],
    (op) =>
      d(op, 0, 0) === d(op, 1, 0) && d(op, 0, 2) === d(op, 1, 1)
        ? [d(op, 0, 0), d(op, 0, 1), d(op, 1, 2)]
        : [undefined],
    (op) => 2 * d(op, 0, 0) * d(op, 0, 1) * d(op, 0, 2) * d(op, 1, 2),
  ),
  nn(
    'nn.matvec',
    'M×K · K',
    [r2, tensorOfRank(1)],
    (op) => (d(op, 0, 1) === d(op, 1, 0) ? [d(op, 0, 0)] : [undefined]),
    (op) => 2 * d(op, 0, 0) * d(op, 0, 1),
  ),
  nn(
    'nn.add',
    'elementwise a + b (also residual)',
    [FLOAT_TENSOR, FLOAT_TENSOR],
    (op) => (dims(op, 0).join() === dims(op, 1).join() ? same(op) : [undefined]),
    el,
  ),
  nn(
    'nn.rmsnorm',
    'rows×dim normalised by RMS, scaled by a dim weight',
    [r2, tensorOfRank(1)],
    (op) => (d(op, 0, 1) === d(op, 1, 0) ? same(op) : [undefined]),
    (op) => 4 * el(op),
    { attrs: { eps: { kind: 'number', required: true } } },
  ),
  nn('nn.softmax', 'rows×cols softmax over the last axis', [r2], same, (op) => 5 * el(op)),
  nn('nn.rope', 'rotary position embedding of seq×heads×headDim', [r3], same, (op) => 3 * el(op), {
    attrs: { theta: { kind: 'number', required: true }, position_offset: { kind: 'int' } },
  }),
  nn(
    'nn.swiglu',
    'silu(gate) ⊙ up, elementwise',
    [FLOAT_TENSOR, FLOAT_TENSOR],
    (op) => (dims(op, 0).join() === dims(op, 1).join() ? same(op) : [undefined]),
    (op) => 5 * el(op),
  ),
  nn(
    'nn.attention_prefill',
    'causal attention, q seq×heads×hd, k/v seq×kvHeads×hd (GQA)',
    [r3, r3, r3],
    (op) =>
      d(op, 0, 1) % Math.max(1, d(op, 1, 1)) === 0 &&
      dims(op, 1).join() === dims(op, 2).join() &&
      d(op, 0, 2) === d(op, 1, 2)
        ? same(op)
        : [undefined],
    (op) => 2 * d(op, 0, 0) ** 2 * d(op, 0, 1) * d(op, 0, 2),
  ),
  nn(
    'nn.attention_decode',
    'one query token (heads×hd) over a KV cache of length L (L×kvHeads×hd)',
    [r2, r3, r3],
    (op) =>
      d(op, 0, 1) === d(op, 1, 2) && dims(op, 1).join() === dims(op, 2).join() ? same(op) : [undefined],
    (op) => 4 * d(op, 1, 0) * d(op, 0, 0) * d(op, 0, 1),
  ),
  nn(
    'nn.embedding',
    'gathers rows of a vocab×dim table',
    [r2, TOKENS],
    (op) => [d(op, 1, 0), d(op, 0, 1)],
    () => 0,
  ),
  nn(
    'nn.topk',
    'top-k of dot/cosine scores of a query (dim) against N×dim vectors; operands in kernel order',
    [r2, tensorOfRank(1)],
    (op) => (d(op, 0, 1) === d(op, 1, 0) ? [intAttr(op.attrs, 'k') ?? undefined] : [undefined]),
    (op) => (strAttr(op.attrs, 'metric') === 'cosine' ? 3 : 2) * d(op, 0, 0) * d(op, 0, 1),
    { attrs: { k: { kind: 'int', required: true }, metric: { kind: 'str' } }, results: [SCORES, TOKENS] },
  ),
];

/** Elementwise ops the `fuse` pass may merge into one `nn.fused` op. */
export const ELEMENTWISE: ReadonlySet<string> = new Set(['nn.add', 'nn.swiglu']);

export const fusedSchema: OpSchema = {
  name: 'nn.fused',
  summary: 'A chain of elementwise ops fused into one kernel; the region holds them, `nn.yield` ends it',
  operands: [FLOAT_TENSOR],
  variadicOperands: FLOAT_TENSOR,
  results: [FLOAT_TENSOR],
  attrs: { ops: { kind: 'array', required: true } },
  regions: 1,
};

export const nnYield: OpSchema = {
  name: 'nn.yield',
  summary: 'Terminator of nn.fused',
  operands: [TENSOR],
  results: [],
};

const NN_BY_NAME = new Map(nnDialect.map((s) => [s.name, s]));

/** A fused op reads only its external inputs and writes only its final result: that is the saving. */
function fusedDemand(op: Op, ctx: DemandContext) {
  const inner = op.regions[0]?.blocks[0]?.ops ?? [];
  const flops = inner.reduce((n, o) => n + (NN_BY_NAME.get(o.name)?.demand?.(o, ctx).flops ?? 0), 0);
  return streaming(() => flops)(op, ctx);
}

export const fusedOp: OpSchema = { ...fusedSchema, demand: fusedDemand };
