import { availableParallelism } from 'node:os';
import type { Target } from '@stitch/compiler';
import { KernelRuntime } from './runtime.js';
import { threadedKernel } from './threaded.js';

export interface Calibration {
  target: Target;
  /** Achieved single-thread matmul throughput (512³, tiled schedule). */
  matmulGflops: number;
  /** Achieved single-thread matvec streaming bandwidth over a 2048×2048 f32 matrix (16 MiB). */
  matvecGbps: number;
  /** Threads of the all-thread figures (the host's cores unless told otherwise). */
  threads: number;
  /** The same matmul with its rows split across `threads` threads. */
  matmulGflopsAllThreads: number;
  /** The same matvec with its rows split across `threads` threads. */
  matvecGbpsAllThreads: number;
}

/**
 * Short micro-benchmark of this host's compiled kernels for `target`, on one thread and on
 * `threads` (default: every core) (≈2 s once the kernels are cached; the first call compiles
 * them). The node actor puts the result in its capability record.
 */
export async function calibrate(
  target: Target,
  options: { cacheDir?: string; threads?: number } = {},
): Promise<Calibration> {
  const { threads = availableParallelism(), ...compile } = options;
  const runtime = new KernelRuntime({ threads });
  const n = 512;
  const mv = 2048;
  const a = new Float32Array(n * n).fill(0.5);
  const c = new Float32Array(n * n);
  const big = new Float32Array(mv * mv).fill(0.25);
  const x = new Float32Array(mv).fill(1);
  const y = new Float32Array(mv);
  const measure = async (t: number) => {
    const opts = { target, ...compile, threads: t };
    const [mm, vec] = await Promise.all([
      threadedKernel(runtime, { op: 'nn.matmul', m: n, k: n, n }, opts),
      threadedKernel(runtime, { op: 'nn.matvec', m: mv, k: mv }, opts),
    ]);
    const mmSeconds = await timeRuns(() => mm.run([a, a, c]), 0.4);
    const mvSeconds = await timeRuns(() => vec.run([big, x, y]), 0.4);
    return { gflops: (2 * n ** 3) / mmSeconds / 1e9, gbps: (4 * mv * mv) / mvSeconds / 1e9 };
  };
  const one = await measure(1);
  const all = threads === 1 ? one : await measure(threads);
  return {
    target,
    matmulGflops: one.gflops,
    matvecGbps: one.gbps,
    threads,
    matmulGflopsAllThreads: all.gflops,
    matvecGbpsAllThreads: all.gbps,
  };
}

/** Best time of repeated runs within a budget of `seconds` (best-of filters scheduler noise). */
export async function timeRuns(run: () => Promise<void>, seconds: number): Promise<number> {
  await run();
  let best = Number.POSITIVE_INFINITY;
  const end = performance.now() + seconds * 1000;
  do {
    const t0 = performance.now();
    await run();
    best = Math.min(best, (performance.now() - t0) / 1000);
  } while (performance.now() < end);
  return best;
}
