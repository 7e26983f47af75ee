// matmul, batch_matmul and matvec. When the shape divides the register tile of the target, the
// kernel is written on tensors with a transform-dialect schedule: cache tiling, a register tile
// sized for the vector width, vectorisation, accumulators hoisted into registers across k, then
// bufferisation in place into the output memref. Otherwise it is plain linalg lowered to loops.
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import type { Target } from '../targets.js';
import { argType, func, generic, map, STREAM_MIN_BYTES } from './common.js';
import { PACK_B_BYTES, packedMatmul } from './packed.js';
import { tileFor, wrapSchedule } from './schedule.js';

type Spec<Op extends KernelSpec['op']> = Extract<KernelSpec, { op: Op }>;

/**
 * Register tiles [rows, cols] per target, best first; the first that divides the shape is used.
 * The accumulators take 12–16 of the 16 (AVX2) or 32 (AVX-512) vector registers. On AVX2, 6×16
 * measured ~1.5× faster than 4×16 (12 accumulators instead of 8), but needs rows % 6 == 0.
 */
const REGISTER_TILES: Record<Target, [number, number][]> = {
  'x86-64': [[4, 8]],
  'x86-64-v3': [
    [6, 16],
    [4, 16],
  ],
  'x86-64-v4': [[8, 32]],
};

export interface Generated {
  mlir: string;
  /** Whether the MLIR carries a transform schedule (run by --transform-interpreter). */
  scheduled: boolean;
}

export function matmul(spec: Spec<'nn.matmul'>, target: Target): Generated {
  const { m, n } = spec;
  const tile = REGISTER_TILES[target].find(([r, c]) => m !== null && m % r === 0 && n % c === 0);
  const args = kernelArgs(spec);
  const op = spec.transposeB ? ('linalg.matmul_transpose_b' as const) : ('linalg.matmul' as const);
  if (!tile || m === null || spec.transposeB)
    return { mlir: plain(entryName(spec), args, op), scheduled: false };
  const [rm, rn] = tile;
  if (4 * spec.k * spec.n > PACK_B_BYTES)
    return { mlir: packedMatmul({ ...spec, m }, tile), scheduled: true };
  // Measured on AVX-512 at 1024³: a k block of 128 with wide n blocks beat 64×256×256 by ~10%.
  const cache = [tileFor(m, rm, 128), tileFor(spec.n, rn, 512), tileFor(spec.k, 1, 128)];
  return {
    mlir: tensorKernel(
      entryName(spec),
      args,
      'linalg.matmul',
      schedule('linalg.matmul', cache, [rm, rn, 1], [1, 2, 0]),
    ),
    scheduled: true,
  };
}

/** Loops only: the tiled schedule sends mlir-opt 19 into a non-terminating rewrite on batch_matmul. */
export function batchMatmul(spec: Spec<'nn.batch_matmul'>): Generated {
  return { mlir: plain(entryName(spec), kernelArgs(spec), 'linalg.batch_matmul'), scheduled: false };
}

/** Partial-sum width of the tiled matvec: 8 rows × 8 lanes measured best on all three targets. */
const MATVEC_ROWS = 8;
const MATVEC_LANES = 8;

/**
 * y = A·x as two generics: 8-lane partial sums p[m, j] = Σ_kb A[m, kb·8 + j]·x[kb·8 + j] (the
 * accumulator tile stays in registers across kb, no horizontal reduction inside the k loop), then
 * y[m] = Σ_j p[m, j]. A row-wise contraction would reduce horizontally at every k step instead.
 */
export function matvec(spec: Spec<'nn.matvec'>, _target: Target): Generated {
  const args = kernelArgs(spec);
  const { m, k } = spec;
  if (m % MATVEC_ROWS !== 0 || k % MATVEC_LANES !== 0) {
    return { mlir: plain(entryName(spec), args, 'linalg.matvec'), scheduled: false };
  }
  if (k <= STREAM_MAX_K && 4 * m * k > STREAM_MIN_BYTES)
    return { mlir: matvecInStreams(spec), scheduled: false };
  const w = MATVEC_LANES;
  const kb = k / w;
  const [ta, tx, ty] = [`tensor<${m}x${k}xf32>`, `tensor<${k}xf32>`, `tensor<${m}xf32>`];
  const [t3, x2, tp] = [`tensor<${m}x${kb}x${w}xf32>`, `tensor<${kb}x${w}xf32>`, `tensor<${m}x${w}xf32>`];
  const [ma, mx, my] = args.map(argType) as [string, string, string];
  const body = [
    `%ta = bufferization.to_tensor %a restrict : ${ma}`,
    `%tx = bufferization.to_tensor %x restrict : ${mx}`,
    `%a3 = tensor.expand_shape %ta [[0], [1, 2]] output_shape [${m}, ${kb}, ${w}] : ${ta} into ${t3}`,
    `%x2 = tensor.expand_shape %tx [[0, 1]] output_shape [${kb}, ${w}] : ${tx} into ${x2}`,
    '%zero = arith.constant 0.0 : f32',
    `%pe = tensor.empty() : ${tp}`,
    `%p0 = linalg.fill ins(%zero : f32) outs(%pe : ${tp}) -> ${tp}`,
    ...genericOnTensors(
      '%p',
      [map(3, 'd0, d1, d2'), map(3, 'd1, d2'), map(3, 'd0, d2')],
      '"parallel", "reduction", "parallel"',
      `ins(%a3, %x2 : ${t3}, ${x2}) outs(%p0 : ${tp})`,
      ['%ea: f32', '%ex: f32', '%acc: f32'],
      ['%mul = arith.mulf %ea, %ex : f32', '%sum = arith.addf %acc, %mul : f32', 'linalg.yield %sum : f32'],
      tp,
    ),
    `%ty = bufferization.to_tensor %y restrict writable : ${my}`,
    `%y0 = linalg.fill ins(%zero : f32) outs(%ty : ${ty}) -> ${ty}`,
    ...genericOnTensors(
      '%res',
      [map(2, 'd0, d1'), map(2, 'd0')],
      '"parallel", "reduction"',
      `ins(%p : ${tp}) outs(%y0 : ${ty})`,
      ['%ep: f32', '%acc: f32'],
      ['%sum = arith.addf %acc, %ep : f32', 'linalg.yield %sum : f32'],
      ty,
    ),
    `bufferization.materialize_in_destination %res in restrict writable %y : (${ty}, ${my}) -> ()`,
  ];
  return { mlir: func(entryName(spec), args, body) + matvecSchedule(MATVEC_ROWS, w), scheduled: true };
}

/**
 * A matrix of short rows (at most this many columns, 4 KiB) and larger than STREAM_MIN_BYTES is
 * read as a few long streams (`matvecInStreams`): the 8-row tile reads eight rows of a few cache lines
 * each at once, eight short streams that the hardware prefetchers follow badly once the matrix is
 * out of cache (on a Zen 4: 32 000 × 288 at 10.8 GB/s tiled, 27.5 in streams; 8 192 × 1 024 24 and
 * 32–36). A matrix that stays in cache is faster tiled; with longer rows the two were within 7 %.
 */
const STREAM_MAX_K = 1024;
/** Row streams read at once: four measured best of 1, 2, 4 and 8 in a C harness on a Zen 4. */
const STREAMS = 4;

/**
 * y = A·x with the rows cut in `STREAMS` contiguous ranges walked in step, one row of each at a
 * time and one 8-lane accumulator per row: long sequential streams, and independent sums. Each row
 * gets the same sums in the same order as in the tiled kernel (lane j adds A[m, kb·8 + j]·x[kb·8 +
 * j] in kb order, multiply then add, and the lanes fold in order from 0), so the two give the same
 * bits and a matrix split across threads does not depend on which of them each slice took.
 */
function matvecInStreams(spec: Spec<'nn.matvec'>): string {
  const args = kernelArgs(spec);
  const [ma, mx, my] = args.map(argType) as [string, string, string];
  const V = `vector<${MATVEC_LANES}xf32>`;
  const streams = Array.from({ length: STREAMS }, (_, i) => i);
  const types = streams.map(() => V).join(', ');
  return func(entryName(spec), args, [
    '%c0 = arith.constant 0 : index',
    '%c1 = arith.constant 1 : index',
    `%cw = arith.constant ${MATVEC_LANES} : index`,
    `%ch = arith.constant ${spec.m / STREAMS} : index`,
    `%ck = arith.constant ${spec.k} : index`,
    '%zero = arith.constant 0.0 : f32',
    `%vzero = arith.constant dense<0.0> : ${V}`,
    ...streams.slice(1).map((i) => `%o${i} = arith.constant ${(i * spec.m) / STREAMS} : index`),
    'scf.for %r = %c0 to %ch step %c1 {',
    '  %r0 = arith.addi %r, %c0 : index',
    ...streams.slice(1).map((i) => `  %r${i} = arith.addi %r, %o${i} : index`),
    `  %acc:${STREAMS} = scf.for %j = %c0 to %ck step %cw iter_args(${streams.map((i) => `%s${i} = %vzero`).join(', ')}) -> (${types}) {`,
    `    %vx = vector.load %x[%j] : ${mx}, ${V}`,
    ...streams.flatMap((i) => [
      `    %va${i} = vector.load %a[%r${i}, %j] : ${ma}, ${V}`,
      `    %p${i} = arith.mulf %va${i}, %vx : ${V}`,
      `    %n${i} = arith.addf %s${i}, %p${i} : ${V}`,
    ]),
    `    scf.yield ${streams.map((i) => `%n${i}`).join(', ')} : ${types}`,
    '  }',
    ...streams.flatMap((i) => [
      `  %y${i} = vector.reduction <add>, %acc#${i}, %zero : ${V} into f32`,
      `  memref.store %y${i}, %y[%r${i}] : ${my}`,
    ]),
    '}',
  ]);
}

function genericOnTensors(
  result: string,
  maps: string[],
  iters: string,
  operands: string,
  blockArgs: string[],
  body: string[],
  type: string,
): string[] {
  return [
    `${result} = linalg.generic {indexing_maps = [${maps.join(', ')}], iterator_types = [${iters}]} ${operands} {`,
    `^bb0(${blockArgs.join(', ')}):`,
    ...body.map((l) => `  ${l}`),
    `} -> ${type}`,
  ];
}

/**
 * Tiles the row sums by `rows` and fuses the partial sums (and their fill) into that loop, so each
 * tile's partial sums stay in registers rather than going through an [m, lanes] buffer in memory
 * (written, then read back: 1 MB for a 32 000-row classifier, 24 → 28 GB/s there on an AVX-512
 * Xeon, 4096² unchanged); then vectorises. No contraction folding: it scalarises this shape.
 */
function matvecSchedule(rows: number, lanes: number): string {
  const any = '!transform.any_op';
  const pair = `(${any}, ${any})`;
  return wrapSchedule([
    `%gs = transform.structured.match ops{["linalg.generic"]} in %root : (${any}) -> ${any}`,
    `%g1, %g2 = transform.split_handle %gs : (${any}) -> ${pair}`,
    `%fills = transform.structured.match ops{["linalg.fill"]} in %root : (${any}) -> ${any}`,
    `%fill1, %fill2 = transform.split_handle %fills : (${any}) -> ${pair}`,
    `%t2, %l2 = transform.structured.tile_using_for %g2 tile_sizes [${rows}] : (${any}) -> ${pair}`,
    `%g1f, %l2b = transform.structured.fuse_into_containing_op %g1 into %l2 : ${pair} -> ${pair}`,
    `%tf1, %l2c = transform.structured.fuse_into_containing_op %fill1 into %l2b : ${pair} -> ${pair}`,
    `%t1, %l1 = transform.structured.tile_using_for %g1f tile_sizes [0, 1] : (${any}) -> ${pair}`,
    // The output's fill is the row loop's initial value: it cannot be fused, only tiled.
    `%tf2, %lf2 = transform.structured.tile_using_for %fill2 tile_sizes [${lanes}] : (${any}) -> ${pair}`,
    `transform.structured.vectorize %t1 : ${any}`,
    `transform.structured.vectorize %t2 : ${any}`,
    `transform.structured.vectorize %tf1 : ${any}`,
    `transform.structured.vectorize %tf2 : ${any}`,
    `%f = transform.structured.match ops{["func.func"]} in %root : (${any}) -> ${any}`,
  ]);
}

/** Loop orders for the plain path: the innermost loop walks contiguous memory (axpy over n, or a dot over k). */
const PLAIN_MAPS = {
  'linalg.matmul': { maps: ['d0, d1', 'd1, d2', 'd0, d2'], dims: 3, iters: 'prp' },
  'linalg.matmul_transpose_b': { maps: ['d0, d2', 'd1, d2', 'd0, d1'], dims: 3, iters: 'ppr' },
  'linalg.batch_matmul': { maps: ['d0, d1, d2', 'd0, d2, d3', 'd0, d1, d3'], dims: 4, iters: 'pprp' },
  'linalg.matvec': { maps: ['d0, d1', 'd1', 'd0'], dims: 2, iters: 'pr' },
} as const;

/**
 * The contraction as a linalg.generic lowered to loops. `reassoc`/`contract` let LLVM vectorise the
 * k reduction and fuse multiply-add; the sum order then differs from a sequential loop (still f32).
 */
function plain(name: string, args: ReturnType<typeof kernelArgs>, op: keyof typeof PLAIN_MAPS): string {
  const [a, b, c] = args.map(argType) as [string, string, string];
  const { maps, dims, iters } = PLAIN_MAPS[op];
  return func(name, args, [
    '%zero = arith.constant 0.0 : f32',
    `linalg.fill ins(%zero : f32) outs(%${args[2]!.name} : ${c})`,
    ...generic({
      maps: maps.map((m) => map(dims, m)),
      iters,
      ins: [
        { v: `%${args[0]!.name}`, t: a },
        { v: `%${args[1]!.name}`, t: b },
      ],
      outs: [{ v: `%${args[2]!.name}`, t: c }],
      blockArgs: ['%ea: f32', '%eb: f32', '%acc: f32'],
      body: [
        '%mul = arith.mulf %ea, %eb fastmath<reassoc,contract> : f32',
        '%sum = arith.addf %acc, %mul fastmath<reassoc,contract> : f32',
        'linalg.yield %sum : f32',
      ],
    }),
  ]);
}

/** The op on tensors views of the memref arguments, written back in place (no copy, no alloc). */
function tensorKernel(name: string, args: ReturnType<typeof kernelArgs>, op: string, sched: string): string {
  const [a, b, c] = args as [(typeof args)[0], (typeof args)[0], (typeof args)[0]];
  const tt = (x: typeof a) => argType(x).replace('memref<', 'tensor<');
  return (
    func(name, args, [
      `%ta = bufferization.to_tensor %${a.name} restrict : ${argType(a)}`,
      `%tb = bufferization.to_tensor %${b.name} restrict : ${argType(b)}`,
      `%tc = bufferization.to_tensor %${c.name} restrict writable : ${argType(c)}`,
      '%zero = arith.constant 0.0 : f32',
      `%init = linalg.fill ins(%zero : f32) outs(%tc : ${tt(c)}) -> ${tt(c)}`,
      `%res = ${op} ins(%ta, %tb : ${tt(a)}, ${tt(b)}) outs(%init : ${tt(c)}) -> ${tt(c)}`,
      `bufferization.materialize_in_destination %res in restrict writable %${c.name} : (${tt(c)}, ${argType(c)}) -> ()`,
    ]) + sched
  );
}

function schedule(op: string, cache: number[], reg: number[], interchange: number[]): string {
  const any = '!transform.any_op';
  const tileTypes = (n: number) =>
    `(${any}) -> (${Array(n + 1)
      .fill(any)
      .join(', ')})`;
  const loops = (n: number) => (n === 1 ? '' : `:${n}`);
  const outRank = reg.length - 1;
  const fillTile = reg.slice(0, outRank);
  const lines = [
    `%mm = transform.structured.match ops{["${op}"]} in %root : (${any}) -> ${any}`,
    `%fill = transform.structured.match ops{["linalg.fill"]} in %root : (${any}) -> ${any}`,
    `%tf, %lf${loops(outRank)} = transform.structured.tile_using_for %fill tile_sizes [${fillTile.join(', ')}] : ${tileTypes(outRank)}`,
    `%t1, %l1${loops(cache.length)} = transform.structured.tile_using_for %mm tile_sizes [${cache.join(', ')}]` +
      ` interchange = [${interchange.join(', ')}] : ${tileTypes(cache.length)}`,
    `%t2, %l2${loops(reg.length)} = transform.structured.tile_using_for %t1 tile_sizes [${reg.join(', ')}] : ${tileTypes(reg.length)}`,
  ];
  lines.push(
    `%f0 = transform.structured.match ops{["func.func"]} in %root : (${any}) -> ${any}`,
    `%f = transform.structured.vectorize_children_and_apply_patterns %f0 : (${any}) -> ${any}`,
  );
  return wrapSchedule(lines);
}
