// RMSNorm and softmax over rows, written in the vector dialect: a reduction as a linalg.generic
// into a memref lowers to a loop that loads and stores its accumulator every element (LLVM cannot
// prove the row and the accumulator apart), so it neither vectorises nor pipelines. Here the
// accumulators are vector<16xf32> loop-carried values; a scalar loop takes the last cols % 16.
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import type { Target } from '../targets.js';
import { argType, f32, func } from './common.js';

type Spec<Op extends KernelSpec['op']> = Extract<KernelSpec, { op: Op }>;

const W = 16;
const V = `vector<${W}xf32>`;

/**
 * A loop over row %r's columns: `width` 16 (vector steps over the whole vectors) or 1 (the tail).
 * With one carried value the loop's result is `%${name}`, with more `%${name}#i`.
 */
function cols(
  width: 1 | 16,
  n: number,
  name: string,
  carried: { init: string; type: string }[],
  body: (j: string, accs: string[]) => string[],
): string[] {
  const main = Math.floor(n / W) * W;
  const [from, to] = width === W ? ['%c0', `%c${main}`] : [`%c${main}`, `%c${n}`];
  const step = width === W ? `%c${W}` : '%c1';
  const j = `%${name}j`;
  const accs = carried.map((_, i) => `%${name}acc${i}`);
  const result = carried.length > 1 ? `%${name}:${carried.length}` : `%${name}`;
  const head = carried.length
    ? `${result} = scf.for ${j} = ${from} to ${to} step ${step} iter_args(${carried.map((c, i) => `${accs[i]} = ${c.init}`).join(', ')}) -> (${carried.map((c) => c.type).join(', ')}) {`
    : `scf.for ${j} = ${from} to ${to} step ${step} {`;
  return [head, ...body(j, accs).map((l) => `  ${l}`), '}'];
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
 * Reduces row `row` of `x` into the f32 `%${name}`: four vector accumulators over steps of 64 columns
 * (four independent dependency chains: one stalls on the FMA or max latency), folded into one,
 * which takes the remaining whole vectors, then its lanes, then the scalar tail.
 */
function reduceRow(name: string, n: number, x: string, t: string, r: Reduction, row = '%r'): string[] {
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
      `  %${name}v${u} = vector.load ${x}[${row}, %${name}o${u}] : ${t}, ${V}`,
      ...r.vector(`%${name}v${u}`, accs[u]!, outs[u]!).map((l) => `  ${l}`),
    ]),
    `  scf.yield ${outs.join(', ')} : ${lanes.map(() => V).join(', ')}`,
    '}',
    ...r.combine(`%${name}4#0`, `%${name}4#1`, `%${name}f01`),
    ...r.combine(`%${name}4#2`, `%${name}4#3`, `%${name}f23`),
    ...r.combine(`%${name}f01`, `%${name}f23`, `%${name}f`),
    `%${name}w = scf.for %${name}k = %c${main4} to %c${main} step %c${W} iter_args(%${name}acc = %${name}f) -> (${V}) {`,
    `  %${name}v = vector.load ${x}[${row}, %${name}k] : ${t}, ${V}`,
    ...r.vector(`%${name}v`, `%${name}acc`, `%${name}n`).map((l) => `  ${l}`),
    `  scf.yield %${name}n : ${V}`,
    '}',
    `%${name}l = vector.reduction <${r.kind}>, %${name}w : ${V} into f32`,
    `%${name} = scf.for %${name}s = %c${main} to %c${n} step %c1 iter_args(%${name}sacc = %${name}l) -> (f32) {`,
    `  %${name}sv = memref.load ${x}[${row}, %${name}s] : ${t}`,
    ...r.scalar(`%${name}sv`, `%${name}sacc`, `%${name}sn`).map((l) => `  ${l}`),
    `  scf.yield %${name}sn : f32`,
    '}',
  ];
}

/** Index constants the loops use, and the number of rows (`bound`: fixed, or read from `x`). */
function rowBounds(rows: number | null, x: string, t: string, n: number): { lines: string[]; bound: string } {
  const main = Math.floor(n / W) * W;
  const consts = [...new Set([0, 1, W, 2 * W, 3 * W, 4 * W, Math.floor(n / (4 * W)) * 4 * W, main, n])].map(
    (c) => `%c${c} = arith.constant ${c} : index`,
  );
  const count = rows === null ? [`%rows = memref.dim ${x}, %c0 : ${t}`] : [];
  if (rows !== null && !consts.some((c) => c.startsWith(`%c${rows} `)))
    consts.push(`%c${rows} = arith.constant ${rows} : index`);
  return { lines: [...consts, ...count], bound: rows === null ? '%rows' : `%c${rows}` };
}

/** The row loop around `body` (rows dynamic or fixed). */
function rowLoop(rows: number | null, x: string, t: string, n: number, body: string[]): string[] {
  const { lines, bound } = rowBounds(rows, x, t, n);
  return [...lines, `scf.for %r = %c0 to ${bound} step %c1 {`, ...body.map((l) => `  ${l}`), '}'];
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
    ...cols(W, n, 'o', [], (j) => [
      `%v = ${vload('%x', t, j)}`,
      `%w = vector.load %weight[${j}] : ${wt}, ${V}`,
      `%a = arith.mulf %v, %vinv : ${V}`,
      `%b = arith.mulf %a, %w : ${V}`,
      `vector.store %b, %out[%r, ${j}] : ${t}, ${V}`,
    ]),
    ...cols(1, n, 'ot', [], (j) => [
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
 * Constants of `vexp`. `emagic` is 1.5·2^23: x·log2 e + emagic rounds to an integer n (the sum's
 * ulp is 1) held in its low mantissa bits, so its bits shifted left by 23 are n in an f32's
 * exponent field. ln 2 is one f32 (n·ln 2 is exact to n·2e−9, at most 2.5e−7 relative where n
 * reaches −126 and the value is below 1e−37). The polynomial is 1 + r·q(r), q of degree 4 fitted
 * for least relative error on |r| ≤ ln2 / 2 (1.9e−7, 4e−7 with the n·ln 2 error; e^0 is 1 exactly).
 */
const EXP_CONSTANTS = [
  splat('elo', '-8.7e+01'),
  splat('elog2e', '1.44269504e+00'),
  splat('emagic', '1.2582912e+07'),
  splat('enln2', '-6.93147182e-01'),
  splat('ec0', '1.0e+00'),
  splat('ec1', '9.999996424e-01'),
  splat('ec2', '4.999907911e-01'),
  splat('ec3', '1.666771621e-01'),
  splat('ec4', '4.190721735e-02'),
  splat('ec5', '8.288582787e-03'),
  splat('e23', '23', VI),
];
/** vscalefps's operands besides its vectors: every lane (mask), the current rounding mode. */
const SCALEF_CONSTANTS = ['%eall = arith.constant -1 : i16', '%eround = arith.constant 4 : i32'];

/**
 * e^x for x ≤ 0 on a whole vector: math.exp on vectors reaches LLVM as an intrinsic that it
 * scalarises into 16 expf calls, so the range reduction x = n·ln 2 + r, a polynomial for e^r and
 * the scaling by 2^n are written out. Softmax is bound by these instructions on the FMA ports
 * (seven: two for the reduction, five for the polynomial) as much as by its loads and stores;
 * 2^n is applied as an integer add of n to the polynomial's exponent field (shift, add), or on
 * AVX-512 by one vscalefps (`scalef`: 2.5 % less time per softmax call at 64×4096). x is clamped
 * at −87: e^−87 ≈ 1.6e−38, near the smallest normal f32, where the exponent field would
 * underflow, and x = −∞ would make the reduction's r NaN.
 */
function vexp(x: string, out: string, scalef: boolean): string[] {
  const p = `${out}_`;
  const poly = ['ec4', 'ec3', 'ec2', 'ec1', 'ec0'];
  return [
    `${p}x = arith.maximumf ${x}, %elo : ${V}`,
    `${p}t = vector.fma ${p}x, %elog2e, %emagic : ${V}`,
    `${p}n = arith.subf ${p}t, %emagic : ${V}`,
    `${p}r = vector.fma ${p}n, %enln2, ${p}x : ${V}`,
    ...poly.map(
      (c, i) => `${p}q${i} = vector.fma ${p}r, ${i === 0 ? '%ec5' : `${p}q${i - 1}`}, %${c} : ${V}`,
    ),
    ...(scalef
      ? [`${out} = x86vector.avx512.mask.scalef ${p}q4, ${p}n, ${p}q4, %eall, %eround : ${V}`]
      : [
          `${p}ti = arith.bitcast ${p}t : ${V} to ${VI}`,
          `${p}e = arith.shli ${p}ti, %e23 : ${VI}`,
          `${p}qi = arith.bitcast ${p}q4 : ${V} to ${VI}`,
          `${p}bits = arith.addi ${p}qi, ${p}e : ${VI}`,
          `${out} = arith.bitcast ${p}bits : ${VI} to ${V}`,
        ]),
  ];
}

const vmax = (v: string, acc: string, out: string) => [
  `${out}_g = arith.cmpf ogt, ${v}, ${acc} : ${V}`,
  `${out} = arith.select ${out}_g, ${v}, ${acc} : vector<${W}xi1>, ${V}`,
];

const mxReduction: Reduction = {
  init: '%vninf',
  vector: vmax,
  combine: vmax,
  scalar: (v, acc, out) => [`${out} = arith.maximumf ${acc}, ${v} : f32`],
  kind: 'maximumf',
};

/**
 * out = exp(x − max) / Σ exp(x − max), row by row. The exp pass also takes the next row's max
 * (loads of the next row overlap the exp arithmetic, and that row needs no pass of its own), so a
 * row is two passes: exp written with its sum and the next max, then a scale. Row 0's max comes
 * before the loop.
 */
export function softmaxVector(spec: Spec<'nn.softmax'>, target: Target): string {
  const scalef = target === 'x86-64-v4';
  const args = kernelArgs(spec);
  const t = argType(args[0]!);
  const n = spec.cols;
  const { lines, bound } = rowBounds(spec.rows, '%x', t, n);
  const body = [
    `%rlast = arith.subi ${bound}, %c1 : index`,
    '%rinc = arith.addi %r, %c1 : index',
    '%rnext = arith.minui %rinc, %rlast : index',
    `%vmx = vector.broadcast %mx : f32 to ${V}`,
    ...cols(
      W,
      n,
      'sv',
      [
        { init: '%vzero', type: V },
        { init: '%vninf', type: V },
      ],
      (j, [acc, nmx]) => [
        `%v = ${vload('%x', t, j)}`,
        `%d = arith.subf %v, %vmx : ${V}`,
        ...vexp('%d', '%e', scalef),
        `vector.store %e, %out[%r, ${j}] : ${t}, ${V}`,
        `%a = arith.addf ${acc}, %e : ${V}`,
        `%w = vector.load %x[%rnext, ${j}] : ${t}, ${V}`,
        ...vmax('%w', nmx!, '%m'),
        `scf.yield %a, %m : ${V}, ${V}`,
      ],
    ),
    // Lanes folded as a tree, not in order (the fold sits between the passes, on every row's
    // critical path); the max accumulators hold no NaN (the selects never pick one).
    `%svs = vector.reduction <add>, %sv#0 fastmath<reassoc> : ${V} into f32`,
    `%svm = vector.reduction <maxnumf>, %sv#1 fastmath<nnan> : ${V} into f32`,
    ...cols(
      1,
      n,
      'sum',
      [
        { init: '%svs', type: 'f32' },
        { init: '%svm', type: 'f32' },
      ],
      (j, [acc, nmx]) => [
        `%v = ${sload('%x', t, j)}`,
        '%d = arith.subf %v, %mx : f32',
        '%e = math.exp %d : f32',
        `memref.store %e, %out[%r, ${j}] : ${t}`,
        `%a = arith.addf ${acc}, %e : f32`,
        `%w = memref.load %x[%rnext, ${j}] : ${t}`,
        `%m = arith.maximumf ${nmx}, %w : f32`,
        'scf.yield %a, %m : f32, f32',
      ],
    ),
    // One division per row; the scale pass multiplies (the row is still in cache).
    '%inv = arith.divf %one, %sum#0 : f32',
    `%vinv = vector.broadcast %inv : f32 to ${V}`,
    ...cols(W, n, 'o', [], (j) => [
      `%v = ${vload('%out', t, j)}`,
      `%a = arith.mulf %v, %vinv : ${V}`,
      `vector.store %a, %out[%r, ${j}] : ${t}, ${V}`,
    ]),
    ...cols(1, n, 'ot', [], (j) => [
      `%v = ${sload('%out', t, j)}`,
      '%a = arith.mulf %v, %inv : f32',
      `memref.store %a, %out[%r, ${j}] : ${t}`,
    ]),
    'scf.yield %sum#1 : f32',
  ];
  return func(entryName(spec), args, [
    `%vzero = arith.constant dense<0.0> : ${V}`,
    `%vninf = arith.constant dense<0xFF800000> : ${V}`,
    '%ninf = arith.constant 0xFF800000 : f32',
    '%one = arith.constant 1.0 : f32',
    ...EXP_CONSTANTS,
    ...(scalef ? SCALEF_CONSTANTS : []),
    ...lines,
    // Selects, not arith.maximumf (NaN-propagating, so lowered to five dependent instructions): a
    // NaN in the row still makes its exp, the sum and so the whole row NaN.
    `%nonempty = arith.cmpi sgt, ${bound}, %c0 : index`,
    '%mx0 = scf.if %nonempty -> (f32) {',
    ...reduceRow('m0', n, '%x', t, mxReduction, '%c0').map((l) => `  ${l}`),
    '  scf.yield %m0 : f32',
    '} else {',
    '  scf.yield %ninf : f32',
    '}',
    `%last = scf.for %r = %c0 to ${bound} step %c1 iter_args(%mx = %mx0) -> (f32) {`,
    ...body.map((l) => `  ${l}`),
    '}',
  ]);
}
