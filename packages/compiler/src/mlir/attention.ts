// Causal prefill and single-token decode attention with grouped-query heads: query head h reads
// KV head floor(h / (heads / kvHeads)), expressed as `floordiv` in the indexing maps.
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import { alloc, argType, f32, func, generic, map } from './common.js';
import { softmaxLines } from './rowwise.js';

type Prefill = Extract<KernelSpec, { op: 'nn.attention_prefill' }>;
type Decode = Extract<KernelSpec, { op: 'nn.attention_decode' }>;

export function attentionPrefill(spec: Prefill): string {
  const args = kernelArgs(spec);
  const qt = argType(args[0]!);
  const kt = argType(args[1]!);
  const g = spec.heads / spec.kvHeads;
  const dyn = spec.seq === null ? [{ of: 'q', ofType: qt, axis: 0 }] : [];
  const sc = alloc('sc', [spec.heads, spec.seq, spec.seq], [...dyn, ...dyn]);
  return func(entryName(spec), args, [
    ...sc.lines,
    '%zero = arith.constant 0.0 : f32',
    `linalg.fill ins(%zero : f32) outs(%sc : ${sc.type})`,
    // sc[h, i, j] = q[i, h, :] · k[j, h/g, :]
    ...mulAccumulate(
      [map(4, 'd1, d0, d3'), map(4, `d2, d0 floordiv ${g}, d3`), map(4, 'd0, d1, d2')],
      'pppr',
      { v: '%q', t: qt },
      { v: '%k', t: kt },
      { v: '%sc', t: sc.type },
    ),
    // Scale, and mask keys after the query position (causal).
    ...generic({
      maps: [map(3, 'd0, d1, d2')],
      iters: 'ppp',
      ins: [],
      outs: [{ v: '%sc', t: sc.type }],
      blockArgs: ['%s: f32'],
      body: [
        '%i = linalg.index 1 : index',
        '%j = linalg.index 2 : index',
        `%scale = arith.constant ${f32(1 / Math.sqrt(spec.headDim))} : f32`,
        '%ninf = arith.constant 0xFF800000 : f32',
        '%sv = arith.mulf %s, %scale : f32',
        '%future = arith.cmpi ugt, %j, %i : index',
        '%r = arith.select %future, %ninf, %sv : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...softmaxLines('p', '%sc', '%sc', sc.type, [spec.heads, spec.seq, spec.seq]),
    `linalg.fill ins(%zero : f32) outs(%out : ${qt})`,
    // out[i, h, d] = Σ_j p[h, i, j] · v[j, h/g, d]
    ...mulAccumulate(
      [map(4, 'd1, d0, d3'), map(4, `d3, d1 floordiv ${g}, d2`), map(4, 'd0, d1, d2')],
      'pppr',
      { v: '%sc', t: sc.type },
      { v: '%v', t: kt },
      { v: '%out', t: qt },
    ),
    `memref.dealloc %sc : ${sc.type}`,
  ]);
}

export function attentionDecode(spec: Decode): string {
  const args = kernelArgs(spec);
  const qt = argType(args[0]!);
  const kt = argType(args[1]!);
  const g = spec.heads / spec.kvHeads;
  const sc = alloc('sc', [spec.heads, spec.len], spec.len === null ? [{ of: 'k', ofType: kt, axis: 0 }] : []);
  return func(entryName(spec), args, [
    ...sc.lines,
    '%zero = arith.constant 0.0 : f32',
    `linalg.fill ins(%zero : f32) outs(%sc : ${sc.type})`,
    ...generic({
      maps: [map(3, 'd0, d2'), map(3, `d1, d0 floordiv ${g}, d2`), map(3, 'd0, d1')],
      iters: 'ppr',
      ins: [
        { v: '%q', t: qt },
        { v: '%k', t: kt },
      ],
      outs: [{ v: '%sc', t: sc.type }],
      blockArgs: ['%a: f32', '%b: f32', '%acc: f32'],
      body: [
        `%scale = arith.constant ${f32(1 / Math.sqrt(spec.headDim))} : f32`,
        '%m = arith.mulf %a, %b : f32',
        '%ms = arith.mulf %m, %scale : f32',
        '%r = arith.addf %acc, %ms fastmath<reassoc,contract> : f32',
        'linalg.yield %r : f32',
      ],
    }),
    ...softmaxLines('p', '%sc', '%sc', sc.type, [spec.heads, spec.len]),
    `linalg.fill ins(%zero : f32) outs(%out : ${qt})`,
    ...mulAccumulate(
      [map(3, 'd0, d2'), map(3, `d2, d0 floordiv ${g}, d1`), map(3, 'd0, d1')],
      'ppr',
      { v: '%sc', t: sc.type },
      { v: '%v', t: kt },
      { v: '%out', t: qt },
    ),
    `memref.dealloc %sc : ${sc.type}`,
  ]);
}

/**
 * out += a · b over the reduction axis of `maps` (the q·k scores, and the attention-weighted sum of the
 * value rows); reassociation lets LLVM vectorise the reduction.
 */
function mulAccumulate(
  maps: string[],
  iters: string,
  a: { v: string; t: string },
  b: { v: string; t: string },
  out: { v: string; t: string },
): string[] {
  return generic({
    maps,
    iters,
    ins: [a, b],
    outs: [out],
    blockArgs: ['%a: f32', '%b: f32', '%acc: f32'],
    body: [
      '%m = arith.mulf %a, %b fastmath<reassoc,contract> : f32',
      '%r = arith.addf %acc, %m fastmath<reassoc,contract> : f32',
      'linalg.yield %r : f32',
    ],
  });
}
