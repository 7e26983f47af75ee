// q8_0 matrix-vector products for decode: int8 weights read once (¼ of f32's bytes, plus one f32
// scale per 32), widened to f32 in registers. Written directly in the vector dialect: a linalg
// form (block sums, then scales) lowered to scalar loops and ran at ≈3 GB/s.
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import { argType, func, STREAM_MIN_BYTES } from './common.js';

type Spec = Extract<KernelSpec, { op: 'nn.matvec_q8' }>;

export interface Q8Operands {
  /** Prefix of every SSA name the lines define (unique per use within a region). */
  p: string;
  q: string;
  qT: string;
  scales: string;
  scalesT: string;
  x: string;
  xT: string;
  y: string;
  yT: string;
  m: number;
  k: number;
  /** y += A·x instead of y = A·x. */
  accumulate: boolean;
}

/**
 * y[i] (+)= Σ_b scales[i, b] · (q[i, 32b:32b+32] · x[32b:32b+32]). Rows go in groups of up to 4,
 * each with its own 32-lane accumulator, so a block of x is loaded once per group and the FMA
 * chains are independent; one horizontal sum per row at the end.
 */
export function q8MatvecLines(o: Q8Operands): string[] {
  const { p } = o;
  const rows = [4, 2, 1].find((r) => o.m % r === 0)!;
  const V = 'vector<32xf32>';
  const R = Array.from({ length: rows }, (_, r) => r);
  const block = [
    `%${p}off = arith.muli %${p}b, %${p}c32 : index`,
    `%${p}xv = vector.load ${o.x}[%${p}off] : ${o.xT}, ${V}`,
    ...R.flatMap((r) => [
      `%${p}qv${r} = vector.load ${o.q}[%${p}i${r}, %${p}off] : ${o.qT}, vector<32xi8>`,
      `%${p}qf${r} = arith.sitofp %${p}qv${r} : vector<32xi8> to ${V}`,
      `%${p}s${r} = memref.load ${o.scales}[%${p}i${r}, %${p}b] : ${o.scalesT}`,
      `%${p}sv${r} = vector.broadcast %${p}s${r} : f32 to ${V}`,
      `%${p}m${r} = arith.mulf %${p}qf${r}, %${p}xv : ${V}`,
      `%${p}n${r} = vector.fma %${p}m${r}, %${p}sv${r}, %${p}a${r} : ${V}`,
    ]),
    `scf.yield ${R.map((r) => `%${p}n${r}`).join(', ')} : ${R.map(() => V).join(', ')}`,
  ];
  const store = (r: number) =>
    o.accumulate
      ? [
          `%${p}old${r} = memref.load ${o.y}[%${p}i${r}] : ${o.yT}`,
          `%${p}new${r} = arith.addf %${p}old${r}, %${p}r${r} : f32`,
          `memref.store %${p}new${r}, ${o.y}[%${p}i${r}] : ${o.yT}`,
        ]
      : [`memref.store %${p}r${r}, ${o.y}[%${p}i${r}] : ${o.yT}`];
  // Above STREAM_MIN_BYTES of int8 a group's four rows are one from each quarter of the matrix
  // (offsets %h), not four neighbours (%c): 32 000 × 4096 on a Zen 4 12.0 → 14.6 GB/s, the same bits.
  const streams = rows === 4 && o.m * o.k > STREAM_MIN_BYTES;
  const offset = streams ? 'h' : 'c';
  const group = [
    ...R.map((r) => `%${p}i${r} = arith.addi %${p}i, %${p}${offset}${r} : index`),
    `%${p}acc:${rows} = scf.for %${p}b = %${p}c0 to %${p}cnb step %${p}c1 iter_args(${R.map((r) => `%${p}a${r} = %${p}zv`).join(', ')}) -> (${R.map(() => V).join(', ')}) {`,
    ...block.map((l) => `  ${l}`),
    '}',
    ...R.flatMap((r) => [
      `%${p}r${r} = vector.reduction <add>, %${p}acc#${r} fastmath<reassoc> : ${V} into f32`,
      ...store(r),
    ]),
  ];
  return [
    ...[0, 1, 2, 3].map((c) => `%${p}c${c} = arith.constant ${c} : index`),
    `%${p}c32 = arith.constant 32 : index`,
    `%${p}cm = arith.constant ${o.m} : index`,
    `%${p}cnb = arith.constant ${o.k / 32} : index`,
    `%${p}crows = arith.constant ${rows} : index`,
    `%${p}zv = arith.constant dense<0.0> : ${V}`,
    ...(streams
      ? [
          ...R.map((r) => `%${p}h${r} = arith.constant ${(r * o.m) / rows} : index`),
          `scf.for %${p}i = %${p}c0 to %${p}h1 step %${p}c1 {`,
        ]
      : [`scf.for %${p}i = %${p}c0 to %${p}cm step %${p}crows {`]),
    ...group.map((l) => `  ${l}`),
    '}',
  ];
}

export function matvecQ8(spec: Spec): string {
  const args = kernelArgs(spec);
  const [qT, scalesT, xT, yT] = args.map(argType) as [string, string, string, string];
  return func(
    entryName(spec),
    args,
    q8MatvecLines({
      p: '',
      q: '%q',
      qT,
      scales: '%scales',
      scalesT,
      x: '%x',
      xT,
      y: '%y',
      yT,
      m: spec.m,
      k: spec.k,
      accumulate: false,
    }),
  );
}
