// RMSNorm and softmax over rows, written in the vector dialect: a reduction as a linalg.generic
// into a memref lowers to a loop that loads and stores its accumulator every element (LLVM cannot
// prove the row and the accumulator apart), so it neither vectorises nor pipelines. Here the
// accumulators are vector<16xf32> loop-carried values; a scalar loop takes the last cols % 16.
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import { argType, f32, func } from './common.js';

type Spec<Op extends KernelSpec['op']> = Extract<KernelSpec, { op: Op }>;

const W = 16;
const V = `vector<${W}xf32>`;

/** A loop over row %r's columns: `width` 16 (vector steps over the whole vectors) or 1 (the tail). */
function cols(
  width: 1 | 16,
  n: number,
  name: string,
  carried: { init: string; type: string } | null,
  body: (j: string, acc: string) => string[],
): string[] {
  const main = Math.floor(n / W) * W;
  const [from, to] = width === W ? ['%c0', `%c${main}`] : [`%c${main}`, `%c${n}`];
  const step = width === W ? `%c${W}` : '%c1';
  const j = `%${name}j`;
  const acc = `%${name}acc`;
  const head = carried
    ? `%${name} = scf.for ${j} = ${from} to ${to} step ${step} iter_args(${acc} = ${carried.init}) -> (${carried.type}) {`
    : `scf.for ${j} = ${from} to ${to} step ${step} {`;
  return [head, ...body(j, acc).map((l) => `  ${l}`), '}'];
}

/** How a row reduction steps: vector and scalar lines defining `out` from `v` and `acc`. */
interface Reduction {
  init: string;
  vector: (v: string, acc: string, out: string) => string[];
  scalar: (v: string, acc: string, out: string) => string[];
  /** Folds two vector accumulators into one. */
  combine: (a: string, b: string, out: string) => string[];
  /** vector.reduction kind folding the lanes. */
  kind: 'add' | 'maximumf';
}

/**
 * Reduces row %r of `x` into the f32 `%${name}`: four vector accumulators over steps of 64 columns
 * (four independent dependency chains: one stalls on the FMA or max latency), folded into one,
 * which takes the remaining whole vectors, then its lanes, then the scalar tail.
 */
function reduceRow(name: string, n: number, x: string, t: string, r: Reduction): string[] {
  const U = 4;
  const main4 = Math.floor(n / (U * W)) * U * W;
  const main = Math.floor(n / W) * W;
  const accs = Array.from({ length: U }, (_, u) => `%${name}a${u}`);
  const outs = Array.from({ length: U }, (_, u) => `%${name}u${u}`);
  const lanes = Array.from({ length: U }, (_, u) => u);
  return [
    `%${name}4:${U} = scf.for %${name}j = %c0 to %c${main4} step %c${U * W} iter_args(${accs.map((a) => `${a} = ${r.init}`).join(', ')}) -> (${lanes.map(() => V).join(', ')}) {`,
    ...lanes.flatMap((u) => [
      `  %${name}o${u} = arith.addi %${name}j, %c${u * W} : index`,
      `  %${name}v${u} = vector.load ${x}[%r, %${name}o${u}] : ${t}, ${V}`,
      ...r.vector(`%${name}v${u}`, accs[u]!, outs[u]!).map((l) => `  ${l}`),
    ]),
    `  scf.yield ${outs.join(', ')} : ${lanes.map(() => V).join(', ')}`,
    '}',
    ...r.combine(`%${name}4#0`, `%${name}4#1`, `%${name}f01`),
    ...r.combine(`%${name}4#2`, `%${name}4#3`, `%${name}f23`),
    ...r.combine(`%${name}f01`, `%${name}f23`, `%${name}f`),
    `%${name}w = scf.for %${name}k = %c${main4} to %c${main} step %c${W} iter_args(%${name}acc = %${name}f) -> (${V}) {`,
    `  %${name}v = vector.load ${x}[%r, %${name}k] : ${t}, ${V}`,
    ...r.vector(`%${name}v`, `%${name}acc`, `%${name}n`).map((l) => `  ${l}`),
    `  scf.yield %${name}n : ${V}`,
    '}',
    `%${name}l = vector.reduction <${r.kind}>, %${name}w : ${V} into f32`,
    `%${name} = scf.for %${name}s = %c${main} to %c${n} step %c1 iter_args(%${name}sacc = %${name}l) -> (f32) {`,
    `  %${name}sv = memref.load ${x}[%r, %${name}s] : ${t}`,
    ...r.scalar(`%${name}sv`, `%${name}sacc`, `%${name}sn`).map((l) => `  ${l}`),
    `  scf.yield %${name}sn : f32`,
    '}',
  ];
}

/** Index constants the loops use, and the row loop around `body` (rows dynamic or fixed). */
function rowLoop(rows: number | null, x: string, t: string, n: number, body: string[]): string[] {
  const main = Math.floor(n / W) * W;
  const consts = [...new Set([0, 1, W, 2 * W, 3 * W, 4 * W, Math.floor(n / (4 * W)) * 4 * W, main, n])].map(
    (c) => `%c${c} = arith.constant ${c} : index`,
  );
  const count = rows === null ? [`%rows = memref.dim ${x}, %c0 : ${t}`] : [];
  const bound = rows === null ? '%rows' : `%c${rows}`;
  if (rows !== null && !consts.some((c) => c.startsWith(`%c${rows} `)))
    consts.push(`%c${rows} = arith.constant ${rows} : index`);
  return [...consts, ...count, `scf.for %r = %c0 to ${bound} step %c1 {`, ...body.map((l) => `  ${l}`), '}'];
}

const vload = (m: string, t: string, j: string) => `vector.load ${m}[%r, ${j}] : ${t}, ${V}`;
const sload = (m: string, t: string, j: string) => `memref.load ${m}[%r, ${j}] : ${t}`;

/** out = x · rsqrt(mean(x²) + eps) · weight, row by row. */
export function rmsnormVector(spec: Spec<'nn.rmsnorm'>): string {
  const args = kernelArgs(spec);
  const t = argType(args[0]!);
  const wt = argType(args[1]!);
  const n = spec.dim;
  const body = [
    ...reduceRow('ss', n, '%x', t, {
      init: '%vzero',
      vector: (v, acc, out) => [`${out} = vector.fma ${v}, ${v}, ${acc} : ${V}`],
      scalar: (v, acc, out) => [
        `${out}_p = arith.mulf ${v}, ${v} : f32`,
        `${out} = arith.addf ${acc}, ${out}_p : f32`,
      ],
      combine: (a, b, out) => [`${out} = arith.addf ${a}, ${b} : ${V}`],
      kind: 'add',
    }),
    '%mean = arith.divf %ss, %n : f32',
    '%me = arith.addf %mean, %eps : f32',
    '%inv = math.rsqrt %me : f32',
    `%vinv = vector.broadcast %inv : f32 to ${V}`,
    ...cols(W, n, 'o', null, (j) => [
      `%v = ${vload('%x', t, j)}`,
      `%w = vector.load %weight[${j}] : ${wt}, ${V}`,
      `%a = arith.mulf %v, %vinv : ${V}`,
      `%b = arith.mulf %a, %w : ${V}`,
      `vector.store %b, %out[%r, ${j}] : ${t}, ${V}`,
    ]),
    ...cols(1, n, 'ot', null, (j) => [
      `%v = ${sload('%x', t, j)}`,
      `%w = memref.load %weight[${j}] : ${wt}`,
      '%a = arith.mulf %v, %inv : f32',
      '%b = arith.mulf %a, %w : f32',
      `memref.store %b, %out[%r, ${j}] : ${t}`,
    ]),
  ];
  return func(entryName(spec), args, [
    `%vzero = arith.constant dense<0.0> : ${V}`,
    `%n = arith.constant ${f32(n)} : f32`,
    `%eps = arith.constant ${f32(spec.eps)} : f32`,
    ...rowLoop(spec.rows, '%x', t, n, body),
  ]);
}

const VI = `vector<${W}xi32>`;
const splat = (name: string, value: string, type = V) =>
  `%${name} = arith.constant dense<${value}> : ${type}`;
/**
 * Constants of `vexp`. `emagic` is 1.5·2^23 + 127: x·log2 e + emagic rounds to an integer n (the
 * sum's ulp is 1) and leaves n + 127 in the low mantissa bits, so shifting its bits left by 23
 * gives 2^n as an f32 directly (no floor, no conversion). ln 2 is split (Cody–Waite) so n·ln 2
 * subtracts exactly; Taylor coefficients to 1/6! (|r| ≤ ln2 / 2: error r^7/7! ≈ 1e−7 relative).
 */
const EXP_CONSTANTS = [
  splat('elo', '-8.7e+01'),
  splat('elog2e', '1.44269504e+00'),
  splat('emagic', '1.2583039e+07'),
  splat('enln2hi', '-6.93145752e-01'),
  splat('enln2lo', '-1.42860677e-06'),
  splat('eone', '1.0e+00'),
  splat('ec2', '5.0e-01'),
  splat('ec3', '1.66666667e-01'),
  splat('ec4', '4.16666667e-02'),
  splat('ec5', '8.33333333e-03'),
  splat('ec6', '1.38888889e-03'),
  splat('e23', '23', VI),
];

/**
 * e^x for x ≤ 0 on a whole vector: math.exp on vectors reaches LLVM as an intrinsic that it
 * scalarises into 16 expf calls, so the range reduction x = n·ln 2 + r, a polynomial for e^r and
 * 2^n built in the exponent bits are written out (13 vector instructions). x is clamped at −87
 * (e^−87 ≈ 1.6e−38, about the smallest normal f32, below which 2^n would not be one).
 */
function vexp(x: string, out: string): string[] {
  const p = `${out}_`;
  const poly = ['ec5', 'ec4', 'ec3', 'ec2', 'eone', 'eone'];
  return [
    `${p}x = arith.maximumf ${x}, %elo : ${V}`,
    `${p}t = vector.fma ${p}x, %elog2e, %emagic : ${V}`,
    `${p}n = arith.subf ${p}t, %emagic : ${V}`,
    `${p}r1 = vector.fma ${p}n, %enln2hi, ${p}x : ${V}`,
    `${p}r = vector.fma ${p}n, %enln2lo, ${p}r1 : ${V}`,
    ...poly.map(
      (c, i) => `${p}q${i} = vector.fma ${p}r, ${i === 0 ? '%ec6' : `${p}q${i - 1}`}, %${c} : ${V}`,
    ),
    `${p}ti = arith.bitcast ${p}t : ${V} to ${VI}`,
    `${p}bits = arith.shli ${p}ti, %e23 : ${VI}`,
    `${p}pow = arith.bitcast ${p}bits : ${VI} to ${V}`,
    `${out} = arith.mulf ${p}q5, ${p}pow : ${V}`,
  ];
}

const vmax = (v: string, acc: string, out: string) => [
  `${out}_g = arith.cmpf ogt, ${v}, ${acc} : ${V}`,
  `${out} = arith.select ${out}_g, ${v}, ${acc} : vector<${W}xi1>, ${V}`,
];

/** out = exp(x − max) / Σ exp(x − max), row by row: max, then exp written with its sum, then a scale. */
export function softmaxVector(spec: Spec<'nn.softmax'>): string {
  const args = kernelArgs(spec);
  const t = argType(args[0]!);
  const n = spec.cols;
  const body = [
    // Selects, not arith.maximumf (NaN-propagating, so lowered to five dependent instructions): a
    // NaN in the row still makes its exp, the sum and so the whole row NaN.
    ...reduceRow('mx', n, '%x', t, {
      init: '%vninf',
      vector: vmax,
      combine: vmax,
      scalar: (v, acc, out) => [`${out} = arith.maximumf ${acc}, ${v} : f32`],
      kind: 'maximumf',
    }),
    `%vmx = vector.broadcast %mx : f32 to ${V}`,
    ...cols(W, n, 'sv', { init: '%vzero', type: V }, (j, acc) => [
      `%v = ${vload('%x', t, j)}`,
      `%d = arith.subf %v, %vmx : ${V}`,
      ...vexp('%d', '%e'),
      `vector.store %e, %out[%r, ${j}] : ${t}, ${V}`,
      `%a = arith.addf ${acc}, %e : ${V}`,
      `scf.yield %a : ${V}`,
    ]),
    `%svs = vector.reduction <add>, %sv : ${V} into f32`,
    ...cols(1, n, 'sum', { init: '%svs', type: 'f32' }, (j, acc) => [
      `%v = ${sload('%x', t, j)}`,
      '%d = arith.subf %v, %mx : f32',
      '%e = math.exp %d : f32',
      `memref.store %e, %out[%r, ${j}] : ${t}`,
      `%a = arith.addf ${acc}, %e : f32`,
      'scf.yield %a : f32',
    ]),
    // One division per row; the scale pass multiplies (the row is still in cache).
    '%inv = arith.divf %one, %sum : f32',
    `%vinv = vector.broadcast %inv : f32 to ${V}`,
    ...cols(W, n, 'o', null, (j) => [
      `%v = ${vload('%out', t, j)}`,
      `%a = arith.mulf %v, %vinv : ${V}`,
      `vector.store %a, %out[%r, ${j}] : ${t}, ${V}`,
    ]),
    ...cols(1, n, 'ot', null, (j) => [
      `%v = ${sload('%out', t, j)}`,
      '%a = arith.mulf %v, %inv : f32',
      `memref.store %a, %out[%r, ${j}] : ${t}`,
    ]),
  ];
  return func(entryName(spec), args, [
    `%vzero = arith.constant dense<0.0> : ${V}`,
    `%vninf = arith.constant dense<0xFF800000> : ${V}`,
    '%one = arith.constant 1.0 : f32',
    ...EXP_CONSTANTS,
    ...rowLoop(spec.rows, '%x', t, n, body),
  ]);
}
