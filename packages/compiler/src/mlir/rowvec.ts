// RMSNorm and softmax over rows, written in the vector dialect: a reduction as a linalg.generic
// into a memref lowers to a loop that loads and stores its accumulator every element (LLVM cannot
// prove the row and the accumulator apart), so it neither vectorises nor pipelines. Here the
// accumulators are vector loop-carried values, and masked vectors take the columns before a row's
// first 64-byte boundary and after its last whole vector (`split`).
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import type { Target } from '../targets.js';
import { argType, f32, func } from './common.js';

type Spec<Op extends KernelSpec['op']> = Extract<KernelSpec, { op: Op }>;

/** A vector width: `w` f32 lanes, its type and its mask type. */
interface Lanes {
  w: number;
  v: string;
  mask: string;
}
const lanes = (w: number): Lanes => ({ w, v: `vector<${w}xf32>`, mask: `vector<${w}xi1>` });
/**
 * Softmax's width: its exp is arithmetic-bound, and 16 lanes (one zmm on AVX-512) halve the
 * instructions. RMSNorm's two multiplies and one FMA per element leave it bound by loads and stores,
 * where 8 lanes took about 10 % less time than 16 through the addon on a 2-core AMD EPYC (64×4096).
 */
const L16 = lanes(16);
const L8 = lanes(8);
const V = L16.v;
const MASK = L16.mask;

/**
 * Splits row `row` of `m` (n columns) at vector-size boundaries: `%${p}h` columns before the first one
 * (a masked head at column 0, mask `%${p}hm`), whole vectors from there to `%${p}e` (`%${p}e4` ends
 * the whole steps of four vectors), and `%${p}t` columns after them (a masked tail at `%${p}e`, mask
 * `%${p}tm`). Typed arrays of a megabyte come from malloc 16 bytes past a page boundary: unsplit,
 * every 16-lane load and store there spans two cache lines, which made softmax and rmsnorm take
 * 1.2–1.5× as long through the addon on a 2-core AMD EPYC (64×4096).
 */
function split(L: Lanes, p: string, m: string, t: string, row: string, n: number): string[] {
  return [
    `%${p}ptr = memref.extract_aligned_pointer_as_index ${m} : ${t} -> index`,
    `%${p}base = arith.divui %${p}ptr, %c4 : index`,
    `%${p}rn = arith.muli ${row}, %c${n} : index`,
    `%${p}at = arith.addi %${p}base, %${p}rn : index`,
    `%${p}mis = arith.remui %${p}at, %c${L.w} : index`,
    `%${p}gap = arith.subi %c${L.w}, %${p}mis : index`,
    `%${p}hw = arith.remui %${p}gap, %c${L.w} : index`,
    `%${p}h = arith.minui %${p}hw, %c${n} : index`,
    `%${p}rest = arith.subi %c${n}, %${p}h : index`,
    `%${p}whole = arith.andi %${p}rest, %cwhole${L.w} : index`,
    `%${p}e = arith.addi %${p}h, %${p}whole : index`,
    `%${p}whole4 = arith.andi %${p}rest, %cwhole4x${L.w} : index`,
    `%${p}e4 = arith.addi %${p}h, %${p}whole4 : index`,
    `%${p}t = arith.subi %c${n}, %${p}e : index`,
    `%${p}hm = vector.create_mask %${p}h : ${L.mask}`,
    `%${p}tm = vector.create_mask %${p}t : ${L.mask}`,
  ];
}

/**
 * A loop over whole vectors from `from` to `to`. With one carried value the loop's result is
 * `%${name}`, with more `%${name}#i`.
 */
function vectors(
  L: Lanes,
  from: string,
  to: string,
  name: string,
  carried: { init: string; type: string }[],
  body: (j: string, accs: string[]) => string[],
): string[] {
  const j = `%${name}j`;
  const accs = carried.map((_, i) => `%${name}acc${i}`);
  const result = carried.length > 1 ? `%${name}:${carried.length}` : `%${name}`;
  const head = carried.length
    ? `${result} = scf.for ${j} = ${from} to ${to} step %c${L.w} iter_args(${carried.map((c, i) => `${accs[i]} = ${c.init}`).join(', ')}) -> (${carried.map((c) => c.type).join(', ')}) {`
    : `scf.for ${j} = ${from} to ${to} step %c${L.w} {`;
  return [head, ...body(j, accs).map((l) => `  ${l}`), '}'];
}

/** A load of row `row` of `m` at column `j`: masked by `mask` (off lanes read `pass`) or whole. */
function load(L: Lanes, m: string, t: string, row: string, j: string, mask?: string, pass = '') {
  return mask
    ? `vector.maskedload ${m}[${row}, ${j}], ${mask}, ${pass} : ${t}, ${L.mask}, ${L.v} into ${L.v}`
    : `vector.load ${m}[${row}, ${j}] : ${t}, ${L.v}`;
}
function store(L: Lanes, v: string, m: string, t: string, row: string, j: string, mask?: string) {
  return mask
    ? `vector.maskedstore ${m}[${row}, ${j}], ${mask}, ${v} : ${t}, ${L.mask}, ${L.v}`
    : `vector.store ${v}, ${m}[${row}, ${j}] : ${t}, ${L.v}`;
}

/**
 * Sums must not depend on where the arrays lie (a row split across threads, or the same rows in
 * another buffer, give the same bits), but `split` shifts which lane holds which column by the
 * head length h: across the run of `vs.length` vectors carried from column h, lane l holds the
 * columns ≡ h + l. These lines rotate the run through the scratch `%rot` so that lane l holds the
 * columns ≡ l, as when h is 0, defining `%${p}0`, `%${p}1`, …; with `back`, the other way (a head
 * read at column 0 moves into the carried lanes). A row's columns then meet in the same order
 * whatever h is.
 */
function rotate(L: Lanes, p: string, vs: string[], h: string, back = false): string[] {
  const at = (i: number) => `%${p}k${i}`;
  const from = back ? h : `%${p}at`;
  return [
    ...Array.from({ length: 2 * vs.length }, (_, i) => `${at(i)} = arith.constant ${i * L.w} : index`),
    ...vs.flatMap((v, q) => [
      `vector.store ${v}, %rot[${at(q)}] : memref<${ROT}xf32>, ${L.v}`,
      `vector.store ${v}, %rot[${at(vs.length + q)}] : memref<${ROT}xf32>, ${L.v}`,
    ]),
    ...(back ? [] : [`${from} = arith.subi ${at(vs.length)}, ${h} : index`]),
    ...vs.flatMap((_, q) => [
      `%${p}o${q} = arith.addi ${from}, ${at(q)} : index`,
      `%${p}${q} = vector.load %rot[%${p}o${q}] : memref<${ROT}xf32>, ${L.v}`,
    ]),
  ];
}
/** `%rot`'s floats: two copies of four 16-lane vectors. */
const ROT = 128;

/** How a row reduction steps: vector lines defining `out` from `v` and `acc`. */
interface Reduction {
  /** The accumulators' start, and what masked-off lanes read: a value the step leaves `acc` at. */
  init: string;
  vector: (v: string, acc: string, out: string) => string[];
  /** Folds two vector accumulators into one. */
  combine: (a: string, b: string, out: string) => string[];
  /** vector.reduction kind folding the lanes, and its fastmath flag. */
  kind: 'add' | 'maximumf';
  fastmath?: string;
}

/**
 * Reduces row `row` of `x` into the f32 `%${name}`: four vector accumulators over steps of four
 * vectors (four independent dependency chains: one stalls on the FMA or max latency) from the
 * split's head on, the head itself (in the last accumulator's lanes), the last partial step masked,
 * then the accumulators rotated back (`rotate`), folded into one and its lanes.
 */
function reduceRow(
  L: Lanes,
  name: string,
  n: number,
  x: string,
  t: string,
  r: Reduction,
  row = '%r',
): string[] {
  const U = 4;
  const s = `${name}_`;
  const accs = Array.from({ length: U }, (_, u) => `%${name}a${u}`);
  const outs = Array.from({ length: U }, (_, u) => `%${name}u${u}`);
  const us = Array.from({ length: U }, (_, u) => u);
  const types = us.map(() => L.v).join(', ');
  return [
    ...split(L, s, x, t, row, n),
    `%${name}hv = ${load(L, x, t, row, '%c0', `%${s}hm`, r.init)}`,
    ...r.vector(`%${name}hv`, r.init, `%${name}hr`),
    ...rotate(L, `${name}h`, [`%${name}hr`], `%${s}h`, true),
    `%${name}4:${U} = scf.for %${name}j = %${s}h to %${s}e4 step %c${U * L.w} iter_args(${accs.map((a, u) => `${a} = ${u === U - 1 ? `%${name}h0` : r.init}`).join(', ')}) -> (${types}) {`,
    ...us.flatMap((u) => [
      `  %${name}o${u} = arith.addi %${name}j, %c${u * L.w} : index`,
      `  %${name}v${u} = ${load(L, x, t, row, `%${name}o${u}`)}`,
      ...r.vector(`%${name}v${u}`, accs[u]!, outs[u]!).map((l) => `  ${l}`),
    ]),
    `  scf.yield ${outs.join(', ')} : ${types}`,
    '}',
    // The last partial step: lanes past the row read `r.init`, and a start past it is clamped.
    ...us.flatMap((u) => [
      `%${name}p${u} = arith.addi %${s}e4, %c${u * L.w} : index`,
      `%${name}q${u} = arith.minui %${name}p${u}, %c${n} : index`,
      `%${name}k${u} = arith.subi %c${n}, %${name}q${u} : index`,
      `%${name}m${u} = vector.create_mask %${name}k${u} : ${L.mask}`,
      `%${name}t${u} = ${load(L, x, t, row, `%${name}q${u}`, `%${name}m${u}`, r.init)}`,
      ...r.vector(`%${name}t${u}`, `%${name}4#${u}`, `%${name}l${u}`),
    ]),
    ...rotate(
      L,
      `${name}r`,
      us.map((u) => `%${name}l${u}`),
      `%${s}h`,
    ),
    ...r.combine(`%${name}r0`, `%${name}r1`, `%${name}f01`),
    ...r.combine(`%${name}r2`, `%${name}r3`, `%${name}f23`),
    ...r.combine(`%${name}f01`, `%${name}f23`, `%${name}f`),
    `%${name} = vector.reduction <${r.kind}>, %${name}f${r.fastmath ? ` fastmath<${r.fastmath}>` : ''} : ${L.v} into f32`,
  ];
}

/** Index constants the loops use, and the number of rows (`bound`: fixed, or read from `x`). */
function rowBounds(
  L: Lanes,
  rows: number | null,
  x: string,
  t: string,
  n: number,
): { lines: string[]; bound: string } {
  const consts = [...new Set([0, 1, 4, L.w, 2 * L.w, 3 * L.w, 4 * L.w, n])].map(
    (c) => `%c${c} = arith.constant ${c} : index`,
  );
  // Masks rounding a column count down to whole vectors and to whole steps of four.
  consts.push(
    `%cwhole${L.w} = arith.constant ${-L.w} : index`,
    `%cwhole4x${L.w} = arith.constant ${-4 * L.w} : index`,
  );
  const count = rows === null ? [`%rows = memref.dim ${x}, %c0 : ${t}`] : [];
  if (rows !== null && !consts.some((c) => c.startsWith(`%c${rows} `)))
    consts.push(`%c${rows} = arith.constant ${rows} : index`);
  return { lines: [...consts, ...count], bound: rows === null ? '%rows' : `%c${rows}` };
}

/** out = x · rsqrt(mean(x²) + eps) · weight, row by row: a sum-of-squares pass, then a scale pass. */
export function rmsnormVector(spec: Spec<'nn.rmsnorm'>): string {
  const L = L8;
  const args = kernelArgs(spec);
  const t = argType(args[0]!);
  const wt = argType(args[1]!);
  const n = spec.dim;
  const { lines, bound } = rowBounds(L, spec.rows, '%x', t, n);
  // One scaled vector at column `j` (masked by `mask`, or whole).
  const scale = (p: string, j: string, mask?: string) => [
    `%${p}v = ${load(L, '%x', t, '%r', j, mask, '%vzero')}`,
    mask
      ? `%${p}w = vector.maskedload %weight[${j}], ${mask}, %vzero : ${wt}, ${L.mask}, ${L.v} into ${L.v}`
      : `%${p}w = vector.load %weight[${j}] : ${wt}, ${L.v}`,
    `%${p}a = arith.mulf %${p}v, %vinv : ${L.v}`,
    `%${p}b = arith.mulf %${p}a, %${p}w : ${L.v}`,
    store(L, `%${p}b`, '%out', t, '%r', j, mask),
  ];
  const body = [
    ...reduceRow(L, 'ss', n, '%x', t, {
      init: '%vzero',
      vector: (v, acc, out) => [`${out} = vector.fma ${v}, ${v}, ${acc} : ${L.v}`],
      combine: (a, b, out) => [`${out} = arith.addf ${a}, ${b} : ${L.v}`],
      kind: 'add',
      fastmath: 'reassoc',
    }),
    '%mean = arith.divf %ss, %n : f32',
    '%me = arith.addf %mean, %eps : f32',
    '%inv = math.rsqrt %me : f32',
    `%vinv = vector.broadcast %inv : f32 to ${L.v}`,
    // Split at out's boundaries: a store across two lines costs more than such a load.
    ...split(L, 'o_', '%out', t, '%r', n),
    ...scale('h', '%c0', '%o_hm'),
    ...vectors(L, '%o_h', '%o_e', 'o', [], (j) => scale('', j)),
    ...scale('t', '%o_e', '%o_tm'),
  ];
  return func(entryName(spec), args, [
    `%vzero = arith.constant dense<0.0> : ${L.v}`,
    `%rot = memref.alloca() : memref<${ROT}xf32>`,
    `%n = arith.constant ${f32(n)} : f32`,
    `%eps = arith.constant ${f32(spec.eps)} : f32`,
    ...lines,
    `scf.for %r = %c0 to ${bound} step %c1 {`,
    ...body.map((l) => `  ${l}`),
    '}',
  ]);
}

const VI = `vector<${L16.w}xi32>`;
const splat = (name: string, value: string, type = V) =>
  `%${name} = arith.constant dense<${value}> : ${type}`;
/** log2 e as an f32 literal, for both exps' vector constants and the AVX-512 row max's scaling. */
const LOG2E = '1.44269504e+00';
/**
 * Constants of `vexp` without AVX-512. `emagic` is 1.5·2^23: x·log2 e + emagic rounds to an integer
 * n (the sum's ulp is 1) held in its low mantissa bits, so its bits shifted left by 23 are n in an
 * f32's exponent field. ln 2 is one f32 (n·ln 2 is exact to n·2e−9, at most 2.5e−7 relative where n
 * reaches −126 and the value is below 1e−37). The polynomial is 1 + r·q(r), q of degree 4 fitted
 * for least relative error on |r| ≤ ln2 / 2 (1.9e−7, 4e−7 with the n·ln 2 error; e^0 is 1 exactly).
 */
const EXP_CONSTANTS = [
  splat('elo', '-8.7e+01'),
  splat('elog2e', LOG2E),
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
/**
 * Constants of the AVX-512 `vexp`: 2^f = 1 + f·q(f) on 0 ≤ f ≤ 1, q of degree 4 fitted for least
 * relative error (1.4e−7 evaluated in f32; e^0 is 1 exactly), vscalefps's mask (every lane) and
 * rounding (the current mode), and vreduceps's immediate: f = y − ⌊y⌋ (round down, to integers).
 */
const EXP2_CONSTANTS = [
  splat('elog2e', LOG2E),
  splat('ec0', '1.0e+00'),
  splat('eb1', '6.931512952e-01'),
  splat('eb2', '2.401644439e-01'),
  splat('eb3', '5.579991266e-02'),
  splat('eb4', '9.017030708e-03'),
  splat('eb5', '1.867130050e-03'),
  '%eall = arith.constant -1 : i16',
  '%eround = arith.constant 4 : i32',
  '%efloor = arith.constant 1 : i32',
  `%slog2e = arith.constant ${LOG2E} : f32`,
];

/**
 * e^x for x ≤ 0 on a whole vector, without AVX-512: math.exp on vectors reaches LLVM as an intrinsic
 * that it scalarises into 16 expf calls, so the range reduction x = n·ln 2 + r, a polynomial for e^r
 * and the scaling by 2^n are written out; 2^n is applied as an integer add of n to the polynomial's
 * exponent field (shift, add). x is clamped at −87 (e^−87 ≈ 1.6e−38, near the smallest normal
 * f32), where the exponent field would underflow, and x = −∞ would make r NaN.
 */
function vexp(x: string, out: string): string[] {
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
    `${p}ti = arith.bitcast ${p}t : ${V} to ${VI}`,
    `${p}e = arith.shli ${p}ti, %e23 : ${VI}`,
    `${p}qi = arith.bitcast ${p}q4 : ${V} to ${VI}`,
    `${p}bits = arith.addi ${p}qi, ${p}e : ${VI}`,
    `${out} = arith.bitcast ${p}bits : ${VI} to ${V}`,
  ];
}

/**
 * 2^y on a whole vector with AVX-512: f = y − ⌊y⌋ by one vreduceps (no op for it in the vector or
 * x86vector dialects, hence the LLVM intrinsic), 2^f by the polynomial, then one vscalefps
 * multiplies that by 2^⌊y⌋ (it floors its exponent operand itself). Softmax is bound by its
 * instructions on the vector ports: this is seven a vector against `vexp`'s eleven, with no clamp —
 * vreduceps gives 0 for −∞ and vscalefps scales by 2^−∞ = 0, so e^−∞ is 0, and results past the
 * smallest normal f32 fall to subnormals and 0 as expf's do.
 */
function vexp2(y: string, out: string): string[] {
  const p = `${out}_`;
  const poly = ['eb4', 'eb3', 'eb2', 'eb1', 'ec0'];
  return [
    `${p}f = llvm.call_intrinsic "llvm.x86.avx512.mask.reduce.ps.512"(${y}, %efloor, ${y}, %eall, %eround) : (${V}, i32, ${V}, i16, i32) -> ${V}`,
    ...poly.map(
      (c, i) => `${p}q${i} = vector.fma ${p}f, ${i === 0 ? '%eb5' : `${p}q${i - 1}`}, %${c} : ${V}`,
    ),
    `${out} = x86vector.avx512.mask.scalef ${p}q4, ${y}, ${p}q4, %eall, %eround : ${V}`,
  ];
}

const vmax = (v: string, acc: string, out: string) => [
  `${out}_g = arith.cmpf ogt, ${v}, ${acc} : ${V}`,
  `${out} = arith.select ${out}_g, ${v}, ${acc} : ${MASK}, ${V}`,
];

const mxReduction: Reduction = {
  init: '%vninf',
  vector: vmax,
  combine: vmax,
  kind: 'maximumf',
};

/**
 * out = exp(x − max) / Σ exp(x − max), row by row. The exp pass also takes the next row's max
 * (loads of the next row overlap the exp arithmetic, and that row needs no pass of its own), so a
 * row is two passes: exp written with its sum and the next max, then a scale. Row 0's max comes
 * before the loop. Both passes are split at out's 64-byte boundaries (`split`); the masked head
 * and tail take their exp as whole vectors too, and the sum is rotated back (`rotate`).
 */
export function softmaxVector(spec: Spec<'nn.softmax'>, target: Target): string {
  const L = L16;
  const scalef = target === 'x86-64-v4';
  const args = kernelArgs(spec);
  const t = argType(args[0]!);
  const n = spec.cols;
  const { lines, bound } = rowBounds(L, spec.rows, '%x', t, n);
  // One exp vector at column `j`: lines defining `%${p}s` (its sum lanes) and `%${p}m` (the next
  // max), masked by `mask` (off lanes add 0 to the sum and read −∞ for the max) or whole.
  const expStep = (p: string, j: string, sum: string, nmx: string, mask?: string) => [
    `%${p}v = ${load(L, '%x', t, '%r', j, mask, '%vninf')}`,
    ...(scalef
      ? [`%${p}y = vector.fma %${p}v, %elog2e, %vnmx : ${V}`, ...vexp2(`%${p}y`, `%${p}e`)]
      : [`%${p}d = arith.subf %${p}v, %vmx : ${V}`, ...vexp(`%${p}d`, `%${p}e`)]),
    store(L, `%${p}e`, '%out', t, '%r', j, mask),
    ...(mask
      ? [
          `%${p}z = arith.select ${mask}, %${p}e, %vzero : ${MASK}, ${V}`,
          `%${p}s = arith.addf ${sum}, %${p}z : ${V}`,
        ]
      : [`%${p}s = arith.addf ${sum}, %${p}e : ${V}`]),
    `%${p}w = ${load(L, '%x', t, '%rnext', j, mask, '%vninf')}`,
    ...vmax(`%${p}w`, nmx, `%${p}m`),
  ];
  const scale = (p: string, j: string, mask?: string) => [
    `%${p}o = ${load(L, '%out', t, '%r', j, mask, '%vzero')}`,
    `%${p}q = arith.mulf %${p}o, %vinv : ${V}`,
    store(L, `%${p}q`, '%out', t, '%r', j, mask),
  ];
  const body = [
    `%rlast = arith.subi ${bound}, %c1 : index`,
    '%rinc = arith.addi %r, %c1 : index',
    '%rnext = arith.minui %rinc, %rlast : index',
    ...(scalef
      ? [
          // (x − max)·log2 e as one FMA, x·log2 e − max·log2 e: the rounding of max·log2 e is the
          // same for the whole row, so it scales every exp and their sum alike and cancels.
          '%mxl = arith.mulf %mx, %slog2e : f32',
          '%nmx = arith.negf %mxl : f32',
          `%vnmx = vector.broadcast %nmx : f32 to ${V}`,
        ]
      : [`%vmx = vector.broadcast %mx : f32 to ${V}`]),
    ...split(L, 'o_', '%out', t, '%r', n),
    ...expStep('h', '%c0', '%vzero', '%vninf', '%o_hm'),
    ...rotate(L, 'hr', ['%hs'], '%o_h', true),
    ...vectors(
      L,
      '%o_h',
      '%o_e',
      'sv',
      [
        { init: '%hr0', type: V },
        { init: '%hm', type: V },
      ],
      (j, [acc, nmx]) => [...expStep('', j, acc!, nmx!), `scf.yield %s, %m : ${V}, ${V}`],
    ),
    ...expStep('t', '%o_e', '%sv#0', '%sv#1', '%o_tm'),
    // Lanes folded as a tree, not in order (the fold sits between the passes, on every row's
    // critical path); the max accumulators hold no NaN (the selects never pick one).
    ...rotate(L, 'sr', ['%ts'], '%o_h'),
    `%sum = vector.reduction <add>, %sr0 fastmath<reassoc> : ${V} into f32`,
    `%nextmx = vector.reduction <maxnumf>, %tm fastmath<nnan> : ${V} into f32`,
    // One division per row; the scale pass multiplies (the row is still in cache).
    '%inv = arith.divf %one, %sum : f32',
    `%vinv = vector.broadcast %inv : f32 to ${V}`,
    ...scale('h', '%c0', '%o_hm'),
    ...vectors(L, '%o_h', '%o_e', 'o', [], (j) => scale('', j)),
    ...scale('t', '%o_e', '%o_tm'),
    'scf.yield %nextmx : f32',
  ];
  return func(entryName(spec), args, [
    `%vzero = arith.constant dense<0.0> : ${V}`,
    `%vninf = arith.constant dense<0xFF800000> : ${V}`,
    `%rot = memref.alloca() : memref<${ROT}xf32>`,
    '%ninf = arith.constant 0xFF800000 : f32',
    '%one = arith.constant 1.0 : f32',
    ...(scalef ? EXP2_CONSTANTS : EXP_CONSTANTS),
    ...lines,
    // Selects, not arith.maximumf (NaN-propagating, so lowered to five dependent instructions): a
    // NaN in the row still makes its exp, the sum and so the whole row NaN.
    `%nonempty = arith.cmpi sgt, ${bound}, %c0 : index`,
    '%mx0 = scf.if %nonempty -> (f32) {',
    ...reduceRow(L, 'm0', n, '%x', t, mxReduction, '%c0').map((l) => `  ${l}`),
    '  scf.yield %m0 : f32',
    '} else {',
    '  scf.yield %ninf : f32',
    '}',
    `%last = scf.for %r = %c0 to ${bound} step %c1 iter_args(%mx = %mx0) -> (f32) {`,
    ...body.map((l) => `  ${l}`),
    '}',
  ]);
}
