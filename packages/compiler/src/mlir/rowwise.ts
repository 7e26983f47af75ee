// Row-wise and elementwise kernels: linalg.generic on memrefs, lowered to loops and left for
// clang's vectoriser (they are memory-bound, so tiling buys little).
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import { alloc, argType, f32, func, generic, map } from './common.js';

type Spec<Op extends KernelSpec['op']> = Extract<KernelSpec, { op: Op }>;

export function elementwise(spec: Spec<'nn.add'> | Spec<'nn.swiglu'>): string {
  const args = kernelArgs(spec);
  const t = argType(args[0]!);
  const body =
    spec.op === 'nn.add'
      ? ['%r = arith.addf %x, %y : f32']
      : [
          '%one = arith.constant 1.0 : f32',
          '%ng = arith.negf %x : f32',
          '%e = math.exp %ng : f32',
          '%den = arith.addf %one, %e : f32',
          '%silu = arith.divf %x, %den : f32',
          '%r = arith.mulf %silu, %y : f32',
        ];
  const id = map(2, 'd0, d1');
  return func(entryName(spec), args, [
    ...generic({
      maps: [id, id, id],
      iters: 'pp',
      ins: [
        { v: '%a', t },
        { v: '%b', t },
      ],
      outs: [{ v: '%out', t }],
      blockArgs: ['%x: f32', '%y: f32', '%o: f32'],
      body: [...body, 'linalg.yield %r : f32'],
    }),
  ]);
}

/**
 * Softmax over the last axis of `x` into `out`, both of type `t` with `rank` dims. Shared by the
 * softmax kernel and attention. Lines use SSA names prefixed by `p`.
 */
export function softmaxLines(
  p: string,
  x: string,
  out: string,
  t: string,
  shape: (number | null)[],
): string[] {
  const rank = shape.length;
  const rowShape = shape.slice(0, -1);
  const dyn = rowShape.flatMap((d, axis) => (d === null ? [{ of: x.slice(1), ofType: t, axis }] : []));
  const mx = alloc(`${p}mx`, rowShape, dyn);
  const sum = alloc(`${p}sum`, rowShape, dyn);
  const dims = Array.from({ length: rank }, (_, i) => `d${i}`);
  const full = map(rank, dims.join(', '));
  const row = map(rank, dims.slice(0, -1).join(', '));
  const par = 'p'.repeat(rank - 1);
  return [
    ...mx.lines,
    ...sum.lines,
    `%${p}ninf = arith.constant 0xFF800000 : f32`,
    `%${p}zero = arith.constant 0.0 : f32`,
    `linalg.fill ins(%${p}ninf : f32) outs(%${p}mx : ${mx.type})`,
    `linalg.fill ins(%${p}zero : f32) outs(%${p}sum : ${sum.type})`,
    ...generic({
      maps: [full, row],
      iters: `${par}r`,
      ins: [{ v: x, t }],
      outs: [{ v: `%${p}mx`, t: mx.type }],
      blockArgs: ['%xv: f32', '%acc: f32'],
      body: ['%r = arith.maximumf %acc, %xv fastmath<reassoc> : f32', 'linalg.yield %r : f32'],
    }),
    ...generic({
      maps: [full, row, full],
      iters: `${par}p`,
      ins: [
        { v: x, t },
        { v: `%${p}mx`, t: mx.type },
      ],
      outs: [{ v: out, t }],
      blockArgs: ['%xv: f32', '%m: f32', '%o: f32'],
      body: ['%d = arith.subf %xv, %m : f32', '%r = math.exp %d : f32', 'linalg.yield %r : f32'],
    }),
    ...generic({
      maps: [full, row],
      iters: `${par}r`,
      ins: [{ v: out, t }],
      outs: [{ v: `%${p}sum`, t: sum.type }],
      blockArgs: ['%xv: f32', '%acc: f32'],
      body: ['%r = arith.addf %acc, %xv fastmath<reassoc> : f32', 'linalg.yield %r : f32'],
    }),
    ...generic({
      maps: [row, full],
      iters: `${par}p`,
      ins: [{ v: `%${p}sum`, t: sum.type }],
      outs: [{ v: out, t }],
      blockArgs: ['%s: f32', '%o: f32'],
      body: ['%r = arith.divf %o, %s : f32', 'linalg.yield %r : f32'],
    }),
    `memref.dealloc %${p}mx : ${mx.type}`,
    `memref.dealloc %${p}sum : ${sum.type}`,
  ];
}

/**
 * The body of a RoPE generic: rotates the pair (%x0, %x1) whose pair index is loop dimension
 * `pairAxis` (the element within the pair is the next one) by pos·theta^(−2p/headDim), `posf`
 * the position as f32. Shared by nn.rope and the fused decode step.
 */
export function ropeRotation(pairAxis: number, headDim: number, theta: number, posf: string): string[] {
  return [
    `%pi = linalg.index ${pairAxis} : index`,
    `%ci = linalg.index ${pairAxis + 1} : index`,
    '%pi32 = arith.index_cast %pi : index to i32',
    '%pf = arith.sitofp %pi32 : i32 to f32',
    `%k = arith.constant ${f32((-2 * Math.log(theta)) / headDim)} : f32`,
    '%ex = arith.mulf %pf, %k : f32',
    '%freq = math.exp %ex : f32',
    `%ang = arith.mulf ${posf}, %freq : f32`,
    '%cos = math.cos %ang : f32',
    '%sin = math.sin %ang : f32',
    '%a0 = arith.mulf %x0, %cos : f32',
    '%b0 = arith.mulf %x1, %sin : f32',
    '%r0 = arith.subf %a0, %b0 : f32',
    '%a1 = arith.mulf %x0, %sin : f32',
    '%b1 = arith.mulf %x1, %cos : f32',
    '%r1 = arith.addf %a1, %b1 : f32',
    '%c0i = arith.constant 0 : index',
    '%first = arith.cmpi eq, %ci, %c0i : index',
    '%r = arith.select %first, %r0, %r1 : f32',
    'linalg.yield %r : f32',
  ];
}

/** Interleaved-pair RoPE as in llama2.c: pair p of a head rotates by pos·theta^(−2p/headDim). */
export function rope(spec: Spec<'nn.rope'>): string {
  const args = kernelArgs(spec);
  const t = argType(args[0]!);
  const half = spec.headDim / 2;
  const t4 = `memref<${spec.seq ?? '?'}x${spec.heads}x${half}x2xf32>`;
  const seqDim =
    spec.seq === null ? ['%c0 = arith.constant 0 : index', `%s = memref.dim %x, %c0 : ${t}`] : [];
  const seqSize = spec.seq === null ? '%s' : String(spec.seq);
  const expand = (v: string) =>
    `%${v}4 = memref.expand_shape %${v} [[0], [1], [2, 3]] output_shape [${seqSize}, ${spec.heads}, ${half}, 2] : ${t} into ${t4}`;
  return func(entryName(spec), args, [
    ...seqDim,
    expand('x'),
    expand('out'),
    ...generic({
      maps: [map(4, 'd0, d1, d2, 0'), map(4, 'd0, d1, d2, 1'), map(4, 'd0'), map(4, 'd0, d1, d2, d3')],
      iters: 'pppp',
      ins: [
        { v: '%x4', t: t4 },
        { v: '%x4', t: t4 },
        { v: '%pos', t: argType(args[1]!) },
      ],
      outs: [{ v: '%out4', t: t4 }],
      blockArgs: ['%x0: f32', '%x1: f32', '%p: i32', '%o: f32'],
      body: ['%posf = arith.sitofp %p : i32 to f32', ...ropeRotation(2, spec.headDim, spec.theta, '%posf')],
    }),
  ]);
}

export function embedding(spec: Spec<'nn.embedding'>): string {
  const args = kernelArgs(spec);
  return func(entryName(spec), args, [
    ...generic({
      maps: [map(2, 'd0'), map(2, 'd0, d1')],
      iters: 'pp',
      ins: [{ v: '%ids', t: argType(args[1]!) }],
      outs: [{ v: '%out', t: argType(args[2]!) }],
      blockArgs: ['%id: i32', '%o: f32'],
      body: [
        '%row = arith.index_cast %id : i32 to index',
        '%col = linalg.index 1 : index',
        `%r = memref.load %table[%row, %col] : ${argType(args[0]!)}`,
        'linalg.yield %r : f32',
      ],
    }),
  ]);
}

/** Scores of every vector against the query; the top-k selection over them happens in TypeScript. */
export function topkScores(spec: Spec<'nn.topk'>): string {
  const args = kernelArgs(spec);
  const vt = argType(args[0]!);
  const qt = argType(args[1]!);
  const st = argType(args[2]!);
  const dot = (ins: { v: string; t: string }[], maps: string[], out: string, ot: string) =>
    generic({
      maps: [...maps, map(2, 'd0')],
      iters: 'pr',
      ins,
      outs: [{ v: out, t: ot }],
      blockArgs: [...ins.map((_, i) => `%i${i}: f32`), '%acc: f32'],
      body: [
        ins.length === 2
          ? '%m = arith.mulf %i0, %i1 fastmath<reassoc,contract> : f32'
          : '%m = arith.mulf %i0, %i0 fastmath<reassoc,contract> : f32',
        '%r = arith.addf %acc, %m fastmath<reassoc,contract> : f32',
        'linalg.yield %r : f32',
      ],
    });
  const lines = [
    '%zero = arith.constant 0.0 : f32',
    `linalg.fill ins(%zero : f32) outs(%scores : ${st})`,
    ...dot(
      [
        { v: '%vectors', t: vt },
        { v: '%query', t: qt },
      ],
      [map(2, 'd0, d1'), map(2, 'd1')],
      '%scores',
      st,
    ),
  ];
  if (spec.metric === 'dot') return func(entryName(spec), args, lines);
  const vn = alloc('vn', [spec.n], []);
  const qn = alloc('qn', [1], []);
  return func(entryName(spec), args, [
    ...lines,
    ...vn.lines,
    ...qn.lines,
    `linalg.fill ins(%zero : f32) outs(%vn : ${vn.type})`,
    `linalg.fill ins(%zero : f32) outs(%qn : ${qn.type})`,
    ...dot([{ v: '%vectors', t: vt }], [map(2, 'd0, d1')], '%vn', vn.type),
    ...generic({
      maps: [map(1, 'd0'), map(1, '0')],
      iters: 'r',
      ins: [{ v: '%query', t: qt }],
      outs: [{ v: '%qn', t: qn.type }],
      blockArgs: ['%q: f32', '%acc: f32'],
      body: ['%m = arith.mulf %q, %q : f32', '%r = arith.addf %acc, %m : f32', 'linalg.yield %r : f32'],
    }),
    // Cosine = dot / sqrt(|v|²·|q|² + 1e-12): the epsilon keeps zero vectors at score 0, not NaN.
    ...generic({
      maps: [map(1, 'd0'), map(1, '0'), map(1, 'd0')],
      iters: 'p',
      ins: [
        { v: '%vn', t: vn.type },
        { v: '%qn', t: qn.type },
      ],
      outs: [{ v: '%scores', t: st }],
      blockArgs: ['%a: f32', '%b: f32', '%s: f32'],
      body: [
        '%tiny = arith.constant 1.0e-12 : f32',
        '%ab = arith.mulf %a, %b : f32',
        '%abe = arith.addf %ab, %tiny : f32',
        '%den = math.sqrt %abe : f32',
        '%r = arith.divf %s, %den : f32',
        'linalg.yield %r : f32',
      ],
    }),
    `memref.dealloc %vn : ${vn.type}`,
    `memref.dealloc %qn : ${qn.type}`,
  ]);
}
