// The tail every contraction schedule shares: hoisting, in-place bufferization, vector lowering.

/** Largest multiple of `step` that divides `n` and is ≤ `max` (at least `step`). */
export function tileFor(n: number, step: number, max: number): number {
  let best = step;
  for (let t = step; t <= Math.min(n, max); t += step) if (n % t === 0) best = t;
  return best;
}

const vector = (p: string) => `transform.apply_patterns.vector.${p}`;
const CANONICALIZE = 'transform.apply_patterns.canonicalization';
/** Vector lowering patterns, applied as one set. */
const LOWERING = [
  'lower_contraction lowering_strategy = "outerproduct"',
  'transfer_permutation_patterns',
  'lower_multi_reduction lowering_strategy = "innerparallel"',
  'lower_outerproduct',
  'lower_broadcast',
  'lower_transfer max_transfer_rank = 1',
  'lower_shape_cast',
].map(vector);
/**
 * The packed matmul's, as sets applied one after another: unit dimensions cast away first; on its
 * 4-d contraction the patterns applied together never reach a fixed point; n-d transfers fully
 * unrolled (lowered through scratch buffers they would be stack allocations inside the loops).
 */
const PACKED_LOWERING = [
  [vector('cast_away_vector_leading_one_dim'), CANONICALIZE],
  ...LOWERING.slice(0, 5).map((p) => [p]),
  [vector('transfer_to_scf max_transfer_rank = 1 full_unroll = true')],
  ...LOWERING.slice(5).map((p) => [p]),
  [vector('lower_transpose')],
  [CANONICALIZE],
];

/** Common tail of the schedules: hoisting, in-place bufferization, lowering of vector ops. `%f` is the func. */
export function wrapSchedule(head: string[], options: { packed?: boolean } = {}): string {
  const any = '!transform.any_op';
  const lines = [
    ...head,
    `transform.apply_patterns to %f { transform.apply_patterns.canonicalization } : ${any}`,
    `transform.apply_cse to %f : ${any}`,
    `%loops = transform.structured.match ops{["scf.for"]} in %f : (${any}) -> ${any}`,
    `transform.apply_licm to %loops : ${any}`,
    // Moves the accumulator's transfer_read/write out of the k loop: it stays in registers.
    `transform.loop.hoist_loop_invariant_subsets %loops : ${any}`,
    `transform.apply_patterns to %f { transform.apply_patterns.canonicalization } : ${any}`,
    `%b = transform.bufferization.one_shot_bufferize %root {bufferize_function_boundaries = true} : (${any}) -> ${any}`,
    `%f2 = transform.structured.match ops{["func.func"]} in %b : (${any}) -> ${any}`,
    ...(options.packed ? PACKED_LOWERING : [[...LOWERING, CANONICALIZE]]).flatMap((set) => [
      'transform.apply_patterns to %f2 {',
      ...set.map((p) => `  ${p}`),
      `} : ${any}`,
    ]),
    'transform.yield',
  ];
  return [
    'module attributes {transform.with_named_sequence} {',
    `  transform.named_sequence @__transform_main(%root: ${any} {transform.consumed}) {`,
    ...lines.map((l) => `    ${l}`),
    '  }',
    '}',
    '',
  ].join('\n');
}
