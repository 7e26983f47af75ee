import type { ArgSpec } from '../spec.js';

/**
 * A matrix-vector product over a matrix larger than this many bytes reads its rows as a few long
 * streams, one row from each contiguous range at a time, rather than neighbouring rows together:
 * once the matrix is out of cache, short interleaved streams are what the prefetchers follow badly
 * (f32: contraction.ts's matvecInStreams; q8_0: quant.ts's row groups).
 */
export const STREAM_MIN_BYTES = 8 << 20;

/** `memref<?x4x8xf32>` for a shape where `null` is a dynamic size. */
export function memrefType(shape: (number | null)[], dtype: string): string {
  return `memref<${shape.map((d) => (d === null ? '?' : String(d))).join('x')}x${dtype}>`;
}

export function argType(arg: ArgSpec): string {
  return memrefType(arg.shape, arg.dtype);
}

/** An affine map over `dims` loop dimensions, e.g. map(3, 'd0, d2') → `affine_map<(d0, d1, d2) -> (d0, d2)>`. */
export function map(dims: number, results: string): string {
  const names = Array.from({ length: dims }, (_, i) => `d${i}`).join(', ');
  return `affine_map<(${names}) -> (${results})>`;
}

export function iterators(kinds: string): string {
  return `[${[...kinds].map((k) => (k === 'p' ? '"parallel"' : '"reduction"')).join(', ')}]`;
}

/** A float literal MLIR accepts (always has a decimal point or exponent). */
export function f32(value: number): string {
  if (value === Number.NEGATIVE_INFINITY) return '0xFF800000';
  const s = value.toExponential(9);
  return s;
}

/** Wraps body lines in a C-interface function over the spec's arguments. */
export function func(name: string, args: ArgSpec[], body: string[]): string {
  const params = args.map((a) => `%${a.name}: ${argType(a)}`).join(', ');
  return [
    `func.func @${name}(${params}) attributes {llvm.emit_c_interface} {`,
    ...body.map((l) => `  ${l}`),
    '  return',
    '}',
    '',
  ].join('\n');
}

/**
 * Allocates a scratch buffer whose dynamic sizes are read from `dims` (pairs of SSA memref and axis).
 * Returns the lines and the memref type.
 */
export function alloc(
  name: string,
  shape: (number | null)[],
  dims: { of: string; ofType: string; axis: number }[],
): { lines: string[]; type: string } {
  const type = memrefType(shape, 'f32');
  const lines: string[] = [];
  const operands: string[] = [];
  dims.forEach((d, i) => {
    lines.push(`%${name}_c${i} = arith.constant ${d.axis} : index`);
    lines.push(`%${name}_d${i} = memref.dim %${d.of}, %${name}_c${i} : ${d.ofType}`);
    operands.push(`%${name}_d${i}`);
  });
  lines.push(`%${name} = memref.alloc(${operands.join(', ')}) {alignment = 64 : i64} : ${type}`);
  return { lines, type };
}

/** A linalg.generic; `body` computes from block args named by `blockArgs` and ends with linalg.yield. */
export function generic(opts: {
  maps: string[];
  iters: string;
  ins: { v: string; t: string }[];
  outs: { v: string; t: string }[];
  blockArgs: string[];
  body: string[];
}): string[] {
  const ins = opts.ins.length
    ? ` ins(${opts.ins.map((x) => x.v).join(', ')} : ${opts.ins.map((x) => x.t).join(', ')})`
    : '';
  const outs = ` outs(${opts.outs.map((x) => x.v).join(', ')} : ${opts.outs.map((x) => x.t).join(', ')})`;
  return [
    `linalg.generic {indexing_maps = [${opts.maps.join(', ')}], iterator_types = ${iterators(opts.iters)}}${ins}${outs} {`,
    `^bb0(${opts.blockArgs.join(', ')}):`,
    ...opts.body.map((l) => `  ${l}`),
    '}',
  ];
}
