import {
  entryName,
  type KernelOp,
  type KernelSpec,
  kernelArgs,
  obtainKernel,
  type Target,
} from '@stitch/compiler';
import type { RawKernelPart } from '@stitch/native';
import { KernelOptionsInvalid } from './errors.js';
import { checkArrays, type Kernel, type KernelArray, type KernelRuntime } from './runtime.js';

/**
 * Ops whose output rows depend only on the same rows of some inputs: the spec key counting rows,
 * the arguments sliced by rows (the others are read whole by every thread), and the multiple a
 * slice's rows are rounded to (the register tile of matmul and matvec, so every slice keeps the
 * tiled schedule).
 */
const ROW_SPLIT: Partial<Record<KernelOp, { rows: string; split: string[]; align: number }>> = {
  'nn.matmul': { rows: 'm', split: ['a', 'c'], align: 8 },
  'nn.matvec': { rows: 'm', split: ['a', 'y'], align: 8 },
  'nn.matvec_q8': { rows: 'm', split: ['q', 'scales', 'y'], align: 8 },
  'nn.add': { rows: 'rows', split: ['a', 'b', 'out'], align: 1 },
  'nn.swiglu': { rows: 'rows', split: ['a', 'b', 'out'], align: 1 },
  'nn.rmsnorm': { rows: 'rows', split: ['x', 'out'], align: 1 },
  'nn.softmax': { rows: 'rows', split: ['x', 'out'], align: 1 },
  'nn.embedding': { rows: 'count', split: ['ids', 'out'], align: 1 },
  'nn.topk': { rows: 'n', split: ['vectors', 'scores'], align: 8 },
};

/** Whether `threadedKernel` can split an op's rows across threads. */
export function splittable(op: KernelOp): boolean {
  return Object.hasOwn(ROW_SPLIT, op);
}

/** [first row, row count] of each slice: at most `parts` slices, sizes a multiple of `align` but the last. */
export function splitRows(total: number, parts: number, align: number): [number, number][] {
  const chunk = Math.max(align, Math.ceil(total / parts / align) * align);
  const out: [number, number][] = [];
  for (let start = 0; start < total; start += chunk) out.push([start, Math.min(chunk, total - start)]);
  return out;
}

/** A kernel whose rows are split across threads; `run` takes the same arrays as the whole kernel's. */
export interface ThreadedKernel {
  /** Threads one run uses (at most the number asked for; fewer when there are fewer row slices). */
  readonly threads: number;
  run(arrays: KernelArray[]): Promise<void>;
}

/**
 * Obtains `spec`'s kernel for row slices and runs the slices at once, one per thread (a libuv pool
 * thread and the native addon's own pool), resolving when all are written: each thread computes
 * whole output rows with the same code as one thread, so the result equals the single-threaded
 * one. A run holds `threads` of the runtime's thread budget, which must allow that many.
 */
export async function threadedKernel(
  runtime: KernelRuntime,
  spec: KernelSpec,
  options: { target: Target; cacheDir?: string; threads: number },
): Promise<ThreadedKernel> {
  const { threads, ...compile } = options;
  if (!Number.isInteger(threads) || threads < 1 || threads > runtime.threads) {
    throw new KernelOptionsInvalid(
      `threads must be an integer from 1 to the runtime's budget (${runtime.threads}), got ${String(threads)}; ` +
        'raise KernelRuntime({ threads }) to use more',
    );
  }
  const split = ROW_SPLIT[spec.op];
  if (!split) {
    if (threads === 1) return { threads: 1, run: await loadWhole(runtime, spec, compile) };
    throw new KernelOptionsInvalid(`${spec.op} cannot be split by rows; run it with threads: 1`);
  }
  const args = kernelArgs(spec);
  const symbol = entryName(spec);
  const sliced = args.map((a) => split.split.includes(a.name));
  const fixedRows = (spec as unknown as Record<string, number | null>)[split.rows]!;
  // Fixed row counts compile one kernel per distinct slice size (at most two); dynamic ones share one.
  const kernels = new Map<number | null, Kernel>();
  const load = async (rows: number | null) => {
    if (kernels.has(rows)) return;
    const sliceSpec = { ...spec, [split.rows]: rows } as KernelSpec;
    kernels.set(rows, runtime.load(await obtainKernel(sliceSpec, compile)));
  };
  const fixedSlices = fixedRows === null ? null : splitRows(fixedRows, threads, split.align);
  if (fixedSlices) for (const [, n] of fixedSlices) await load(n);
  else await load(null);
  return {
    threads: fixedSlices ? fixedSlices.length : threads,
    run(arrays) {
      const whole = checkArrays(symbol, args, spec, arrays);
      const total = whole[sliced.indexOf(true)]!.shape[0]!;
      const slices = fixedSlices ?? splitRows(total, threads, split.align);
      const parts: RawKernelPart[] = slices.map(([start, rows]) => ({
        handle: kernels.get(fixedSlices ? rows : null)!.handle,
        args: whole.map((a, i) => {
          if (!sliced[i]) return a;
          const rowElems = a.shape.slice(1).reduce((p, d) => p * d, 1);
          return { data: a.data, shape: [rows, ...a.shape.slice(1)], offset: start * rowElems };
        }),
      }));
      return runtime.schedule(parts);
    },
  };
}

async function loadWhole(
  runtime: KernelRuntime,
  spec: KernelSpec,
  compile: { target: Target; cacheDir?: string },
): Promise<(arrays: KernelArray[]) => Promise<void>> {
  const kernel = runtime.load(await obtainKernel(spec, compile));
  return (arrays) => kernel.run(arrays);
}
