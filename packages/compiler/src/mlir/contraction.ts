// matmul, batch_matmul and matvec. When the shape divides the register tile of the target, the
// kernel is written on tensors with a transform-dialect schedule: cache tiling, a register tile
// sized for the vector width, vectorisation, accumulators hoisted into registers across k, then
// bufferisation in place into the output memref. Otherwise it is plain linalg lowered to loops.
import type { KernelSpec } from '../spec.js';
import { entryName, kernelArgs } from '../spec.js';
import type { Target } from '../targets.js';
import { argType, func } from './common.js';

type Spec<Op extends KernelSpec['op']> = Extract<KernelSpec, { op: Op }>;

/** Register tile [rows, cols] per target: accumulators fill about half the vector registers. */
const REGISTER_TILE: Record<Target, [number, number]> = {
  'x86-64': [4, 8],
  'x86-64-v3': [4, 16],
  'x86-64-v4': [8, 32],
};

/** Largest multiple of `step` that divides `n` and is ≤ `max` (at least `step`). */
function tileFor(n: number, step: number, max: number): number {
  let best = step;
  for (let t = step; t <= Math.min(n, max); t += step) if (n % t === 0) best = t;
  return best;
}

export interface Generated {
  mlir: string;
  /** Whether the MLIR carries a transform schedule (run by --transform-interpreter). */
  scheduled: boolean;
}

export function matmul(spec: Spec<'nn.matmul'>, target: Target): Generated {
  const [rm, rn] = REGISTER_TILE[target];
  const fast = spec.m !== null && !spec.transposeB && spec.m % rm === 0 && spec.n % rn === 0;
  const args = kernelArgs(spec);
  const op = spec.transposeB ? 'linalg.matmul_transpose_b' : 'linalg.matmul';
  if (!fast) return { mlir: plain(entryName(spec), args, op), scheduled: false };
  const m = spec.m as number;
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

export function matvec(spec: Spec<'nn.matvec'>, _target: Target): Generated {
  const args = kernelArgs(spec);
  if (spec.m % 8 !== 0 || spec.k % 64 !== 0) {
    return { mlir: plain(entryName(spec), args, 'linalg.matvec'), scheduled: false };
  }
  return {
    mlir: tensorKernel(
      entryName(spec),
      args,
      'linalg.matvec',
      schedule('linalg.matvec', [8, 64], null, null),
    ),
    scheduled: true,
  };
}

function plain(name: string, args: ReturnType<typeof kernelArgs>, op: string): string {
  const [a, b, c] = args.map(argType) as [string, string, string];
  return func(name, args, [
    '%zero = arith.constant 0.0 : f32',
    `linalg.fill ins(%zero : f32) outs(%${args[2]!.name} : ${c})`,
    `${op} ins(%${args[0]!.name}, %${args[1]!.name} : ${a}, ${b}) outs(%${args[2]!.name} : ${c})`,
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

function schedule(op: string, cache: number[], reg: number[] | null, interchange: number[] | null): string {
  const any = '!transform.any_op';
  const tileTypes = (n: number) =>
    `(${any}) -> (${Array(n + 1)
      .fill(any)
      .join(', ')})`;
  const loops = (n: number) => (n === 1 ? '' : `:${n}`);
  const outRank = reg ? reg.length - 1 : cache.length - 1;
  const fillTile = (reg ?? cache).slice(0, outRank);
  const lines = [
    `%mm = transform.structured.match ops{["${op}"]} in %root : (${any}) -> ${any}`,
    `%fill = transform.structured.match ops{["linalg.fill"]} in %root : (${any}) -> ${any}`,
    `%tf, %lf${loops(outRank)} = transform.structured.tile_using_for %fill tile_sizes [${fillTile.join(', ')}] : ${tileTypes(outRank)}`,
    `%t1, %l1${loops(cache.length)} = transform.structured.tile_using_for %mm tile_sizes [${cache.join(', ')}]` +
      `${interchange ? ` interchange = [${interchange.join(', ')}]` : ''} : ${tileTypes(cache.length)}`,
  ];
  if (reg) {
    lines.push(
      `%t2, %l2${loops(reg.length)} = transform.structured.tile_using_for %t1 tile_sizes [${reg.join(', ')}] : ${tileTypes(reg.length)}`,
    );
  }
  lines.push(
    `%f0 = transform.structured.match ops{["func.func"]} in %root : (${any}) -> ${any}`,
    `%f = transform.structured.vectorize_children_and_apply_patterns %f0 : (${any}) -> ${any}`,
    `transform.apply_patterns to %f { transform.apply_patterns.canonicalization } : ${any}`,
    `transform.apply_cse to %f : ${any}`,
    `%loops = transform.structured.match ops{["scf.for"]} in %f : (${any}) -> ${any}`,
    `transform.apply_licm to %loops : ${any}`,
    // Moves the accumulator's transfer_read/write out of the k loop: it stays in registers.
    `transform.loop.hoist_loop_invariant_subsets %loops : ${any}`,
    `transform.apply_patterns to %f { transform.apply_patterns.canonicalization } : ${any}`,
    `%b = transform.bufferization.one_shot_bufferize %root {bufferize_function_boundaries = true} : (${any}) -> ${any}`,
    `%f2 = transform.structured.match ops{["func.func"]} in %b : (${any}) -> ${any}`,
    'transform.apply_patterns to %f2 {',
    '  transform.apply_patterns.vector.lower_contraction lowering_strategy = "outerproduct"',
    '  transform.apply_patterns.vector.transfer_permutation_patterns',
    '  transform.apply_patterns.vector.lower_multi_reduction lowering_strategy = "innerreduction"',
    '  transform.apply_patterns.vector.lower_outerproduct',
    '  transform.apply_patterns.vector.lower_broadcast',
    '  transform.apply_patterns.vector.lower_transfer max_transfer_rank = 1',
    '  transform.apply_patterns.vector.lower_shape_cast',
    '  transform.apply_patterns.canonicalization',
    `} : ${any}`,
    'transform.yield',
  );
  return [
    'module attributes {transform.with_named_sequence} {',
    `  transform.named_sequence @__transform_main(%root: ${any} {transform.consumed}) {`,
    ...lines.map((l) => `    ${l}`),
    '  }',
    '}',
    '',
  ].join('\n');
}
